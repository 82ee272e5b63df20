"""What domain records are made of, and their JSON form, defined once.

A record (a member, a dispute, …) is a `Record`: a frozen pydantic model that the API
declares as its `response_model` and the CLI prints with `--json`, so the two cannot
drift apart. Bytes go out as 0x-hex, Solidity enums as their label.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from ledger.core.abi import SolidityEnum

E = TypeVar("E", bound=SolidityEnum)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _from_hex(value: object) -> object:
    """A 0x-hex string (as `_hex` writes it) read back into its bytes; bytes as given."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def _label(value: SolidityEnum) -> str:
    return value.label


Hex = Annotated[bytes, BeforeValidator(_from_hex), PlainSerializer(_hex, return_type=str)]
"""Bytes (a bytes32 hash, a key) written as 0x-prefixed lowercase hex, and read back."""

Label = Annotated[E, PlainSerializer(_label, return_type=str)]
"""A Solidity enum value written as its label (`in_production`)."""


class Record(BaseModel):
    """A domain record: immutable, typed, one JSON form for the API and the CLI."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True)
