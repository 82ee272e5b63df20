"""cofab ledger: the domain layer over an EVM chain (no brownie imports here)."""

__version__ = "0.1.0"
