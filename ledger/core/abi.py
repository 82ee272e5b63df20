"""The values cofab exchanges with its contracts, defined once: addresses, 32-byte words,
their hex forms, and the Python side of the contracts' Solidity enums.

Every contract client parses user input with these (a bad value is an `InvalidInput`
naming the field) and declares its enums with `solidity_enum`, which is how revert
messages name an enum argument and how tests/test_vocabulary.py checks each Python enum
against the compiled contracts.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from functools import lru_cache
from typing import TypeVar

from eth_typing import ChecksumAddress
from eth_utils import is_address, to_checksum_address

from ledger.core.errors import InvalidInput, field_name
from ledger.core.hashing import keccak

ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
PPM_SCALE = 1_000_000  # Solidity `Ppm.SCALE`: shares of a price are parts per million
MAX_SPLITS = 64  # Solidity `JobBoard.MAX_SPLITS`: the splits of one order at most


def hex32(raw: bytes) -> str:
    """`0x`-prefixed lowercase hex of a byte string (a hash, a design id, a root)."""
    return "0x" + raw.hex()


def checksum(value: str, what: str = "address") -> ChecksumAddress:
    """The EIP-55 form of an address typed by a user; anything else is refused, naming
    `what` (the field) in the problem."""
    if not isinstance(value, str) or not is_address(value):
        raise InvalidInput(
            f"{what} {value!r} is not an Ethereum address (0x + 40 hex digits)",
            field=field_name(what),
        )
    return to_checksum_address(value)


@lru_cache(maxsize=4096)
def address_from_bytes(raw: bytes) -> str:
    """EIP-55 form of a 20-byte address, e.g. one recovered from a signature.

    Cached and without input checks: a node sees the same signers again and again, and
    eth_utils' version costs more than the signature recovery itself."""
    hex_ = raw.hex()
    digest = keccak(hex_.encode()).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_, digest[:40], strict=True)
    )


@lru_cache(maxsize=4096)
def checksummed(address: str) -> str:
    """The EIP-55 form of a `0x` address however it is spelt (a contract's answer, a record
    naming its member in lower case); anything else is returned as it is. Cached: a node
    meets the same few dozen addresses again and again."""
    try:
        raw = bytes.fromhex(address[2:]) if address[:2] in ("0x", "0X") else b""
    except ValueError:
        return address
    return address_from_bytes(raw) if len(raw) == 20 else address


def bytes32(value: str | bytes | None, what: str, *, optional: bool = True) -> bytes:
    """A 32-byte word from bytes or `0x` hex. None or "" is the zero word when `optional`,
    else refused like any other value that is not 32 bytes."""
    if optional and (value is None or value == ""):
        return ZERO32
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidInput(f"{what} must be 32 bytes of hex", field=field_name(what)) from None
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes, got {len(raw)}", field=field_name(what))
    return raw


class Role(IntFlag):
    """The role bits of a member, as Solidity's `library Roles` declares them."""

    COUNCIL = 1
    FACTORY = 2
    DESIGNER = 4
    AUDITOR = 8
    BUYER = 16


ALL_ROLES = int(Role.COUNCIL | Role.FACTORY | Role.DESIGNER | Role.AUDITOR | Role.BUYER)


def role_names(mask: int) -> list[str]:
    """`factory`, `designer`, ... for the bits set in `mask`."""
    return [r.name.lower() for r in Role if r.name and mask & r]


# ---------------------------------------------------------------------------------------
# Solidity enums
# ---------------------------------------------------------------------------------------


class SolidityEnum(IntEnum):
    """A Solidity enum on the Python side: member i is the contract's member i, named in
    UPPER_SNAKE_CASE (`InProduction` -> `IN_PRODUCTION`)."""

    @property
    def label(self) -> str:
        """How users see the value: `in_production`."""
        return self.name.lower()


E = TypeVar("E", bound=type[SolidityEnum])

# Solidity enum name (unqualified, e.g. "JobStatus") -> its Python enum.
SOLIDITY_ENUMS: dict[str, type[SolidityEnum]] = {}


def solidity_enum(cls: E) -> E:
    """Class decorator: `cls` mirrors the Solidity enum of the same name. Revert messages
    show its arguments by label, and the vocabulary test compares it with the contracts."""
    if cls.__name__ in SOLIDITY_ENUMS and SOLIDITY_ENUMS[cls.__name__] is not cls:
        raise TypeError(f"Solidity enum {cls.__name__} is defined twice")
    SOLIDITY_ENUMS[cls.__name__] = cls
    return cls


def enum_label(solidity_type: str, value: int) -> str | None:
    """The label of `value` of the enum named by an ABI `internalType` such as
    `enum IJobBoard.JobStatus`; None if that enum has no Python side or no such member."""
    name = solidity_type.removeprefix("enum ").rsplit(".", 1)[-1]
    cls = SOLIDITY_ENUMS.get(name)
    if cls is None:
        return None
    try:
        return cls(value).label
    except ValueError:
        return None
