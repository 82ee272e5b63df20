"""keccak-256 with low per-call overhead (safe-pysha3): the hot path of steps and audits."""

from __future__ import annotations

import sha3

keccak_256 = sha3.keccak_256
"""The hasher itself, for loops that call it millions of times: `keccak_256(data).digest()`
saves `keccak`'s own call."""


def keccak(data: bytes) -> bytes:
    """~2.5x less call overhead than pycryptodome's, which eth_utils.keccak wraps."""
    digest: bytes = sha3.keccak_256(data).digest()  # safe-pysha3 ships no type hints
    return digest
