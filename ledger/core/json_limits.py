"""JSON from outside, parsed within a nesting bound.

Deeply nested JSON overflows the C stack of `json.loads` once a library has raised
Python's recursion limit (py-evm and py_ecc raise it to 100,000 when they are imported),
killing the process instead of failing one input; with the limit as Python sets it, the
parser raises RecursionError instead. `json_depth` measures a UTF-8 text's nesting in
linear time at C speed; `loads` refuses what is not UTF-8, and what nests deeper than
MAX_JSON_DEPTH, with an InvalidInput (422).
"""

from __future__ import annotations

import json
import sys
from itertools import accumulate
from typing import Any

from ledger.core.errors import InvalidInput
from ledger.core.settings import MAX_JSON_DEPTH

_NOT_MARKS = bytes(range(256)).translate(None, b'[]{}"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_ALWAYS_MEASURED = 1 << 20  # bytes: measuring costs about as much as parsing
_PARSER_SAFE = 10_000  # a recursion limit under which the C parser cannot overflow the stack


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, in linear time (strings,
    which may hold brackets, are removed first).

    Escape pairs go first (`\\\\`, then `\\"`), so every quote left opens or closes a
    string, and what lies outside strings is every other piece between quotes: all C-speed
    byte operations. Text after a backslash outside any string may be miscounted, but a
    parser stops there with an error, so it never nests deeper than counted."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in body else body
    # only quotes and brackets matter: splitting what is left makes far fewer, smaller pieces
    marks = unescaped.translate(None, _NOT_MARKS)
    brackets = b"".join(marks.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(text: bytes | str, what: str) -> Any:
    """`json.loads(text)`, refused past MAX_JSON_DEPTH levels of nesting with an
    InvalidInput naming `what`. A large text is measured first only when the parser could
    overflow the stack (the recursion limit raised); otherwise its RecursionError is the
    refusal, at no cost to the texts that are fine."""
    if isinstance(text, str):
        raw, decoded = text.encode("utf-8", "surrogatepass"), text
    else:
        raw = text
        try:  # JSON is UTF-8 (RFC 8259); json.loads would also read UTF-16 and UTF-32,
            decoded = raw.decode("utf-8")  # where a bracket is not the byte measured
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{what} is not UTF-8 text: {exc.reason}") from None
    if len(raw) <= _ALWAYS_MEASURED or sys.getrecursionlimit() > _PARSER_SAFE:
        depth = json_depth(raw)
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(
                f"{what} nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted"
            )
    try:
        return json.loads(decoded)
    except RecursionError:
        raise InvalidInput(
            f"{what} nests more than {sys.getrecursionlimit()} levels deep"
        ) from None
