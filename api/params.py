"""Integers bounded to the Solidity type they end up as, checked at the API edge.

A number outside its contract type cannot be encoded into a call or a signature; bounding
it here answers 422 naming the field instead of failing deep in the ABI encoder. Each name
is the Solidity type (`Uint256` for ids, nonces and signature deadlines, `Uint48` for
timestamps stored packed, ...). Body fields are strict: a JSON number with a fraction or
an exponent (`1e80`, `5.0`) is refused rather than silently rounded. Path and query values
arrive as text, so they are parsed, then bounded alike.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator, Field, Strict

from ledger.core.abi import MAX_SPLITS

MAX_UINT8 = 2**8 - 1
MAX_UINT16 = 2**16 - 1
MAX_UINT32 = 2**32 - 1
MAX_UINT48 = 2**48 - 1
MAX_UINT64 = 2**64 - 1
MAX_UINT128 = 2**128 - 1
MAX_UINT256 = 2**256 - 1

# --- body fields (JSON integers only) -----------------------------------------------------
Uint16 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT16)]
Uint32 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT32)]
Uint48 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT48)]
Uint64 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT64)]
Uint128 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT128)]
Uint256 = Annotated[int, Strict(), Field(ge=0, le=MAX_UINT256)]
SplitIndex = Annotated[int, Strict(), Field(ge=0, lt=MAX_SPLITS)]


def _decimal(value: object) -> object:
    """A decimal string ("42", as EIP-712 messages are served) read as its integer; any
    other string is left for the strict check to refuse."""
    return int(value) if isinstance(value, str) and DECIMAL.fullmatch(value) else value


DECIMAL = re.compile(r"0|[1-9][0-9]{0,77}")
# fields of a served EIP-712 message, taken back as a JSON integer or its decimal string
SignedUint64 = Annotated[int, BeforeValidator(_decimal), Strict(), Field(ge=0, le=MAX_UINT64)]
SignedUint256 = Annotated[int, BeforeValidator(_decimal), Strict(), Field(ge=0, le=MAX_UINT256)]

# --- path parameters ----------------------------------------------------------------------
# (an id of the right type that names nothing is a 404, not a 422)
JobId = Annotated[int, Path(ge=0, le=MAX_UINT256, description="order id (uint256)")]
SplitId = Annotated[int, Path(ge=0, le=MAX_UINT256, description="split index (uint256)")]
ProposalId = Annotated[int, Path(ge=0, le=MAX_UINT256, description="proposal id (uint256)")]
DisputeId = Annotated[int, Path(ge=0, le=MAX_UINT256, description="dispute id (uint256)")]

# --- query parameters ---------------------------------------------------------------------
Uint48Query = Annotated[int, Query(ge=0, le=MAX_UINT48)]
Uint256Query = Annotated[int, Query(ge=0, le=MAX_UINT256)]
