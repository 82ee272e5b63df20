"""A strict, linear-time reader of EIP-4361 (Sign-In with Ethereum) messages.

The `siwe` package's ABNF parser takes time and memory that grow much faster than the
message (seconds for 2 KiB), which lets one anonymous request tie up the node. This reader
walks the message line by line in the order EIP-4361 fixes, checks each value with a
bounded pattern, and hands the fields to `siwe.SiweMessage` for its validation and
signature semantics. It only accepts a message that `SiweMessage.prepare_message`
reproduces byte for byte, so the text the signer saw is the text that is verified.
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from siwe import SiweMessage


@functools.cache
def siwe() -> ModuleType:
    """The `siwe` package, imported on the first sign-in: building its ABNF grammars takes
    about 0.6 s of CPU, which every node process and command would pay at start-up."""
    with warnings.catch_warnings():
        # siwe's grammar redefines core ABNF rules when imported: a warning for its
        # authors, noise in every node's log
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module("siwe")


MAX_MESSAGE_BYTES = 4096  # a sign-in message is well under 1 KiB

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DIGITS = re.compile(r"[0-9]+")
_NONCE = re.compile(r"[a-zA-Z0-9]{8,}")
_DATETIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
_REQUEST_ID = re.compile(r"(?:[-._~!$&'()*+,;=:@a-zA-Z0-9]|%[0-9a-fA-F]{2})*")  # *pchar
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*")


class MessageError(ValueError):
    """The text is not a well-formed EIP-4361 message; the message says what is wrong."""


class MessageTooLarge(MessageError):
    """The text is longer than any sign-in message needs to be."""


def _field(lines: list[str], index: int, name: str) -> str:
    prefix = f"{name}: "
    if index >= len(lines) or not lines[index].startswith(prefix):
        raise MessageError(f"line {index + 1} must be '{prefix}…'")
    return lines[index][len(prefix) :]


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise MessageError(f"{what} {value[:80]!r} is malformed")
    return value


def parse(message: str) -> SiweMessage:
    """The message's fields, validated; MessageError if it is not exactly EIP-4361."""
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"the message is longer than {MAX_MESSAGE_BYTES} bytes")
    if "\r" in message:
        raise MessageError("lines end with LF only")
    lines = message.split("\n")
    if len(lines) < 9 or not lines[0].endswith(HEADER_SUFFIX):
        raise MessageError(f"the first line must end with '{HEADER_SUFFIX.strip()}'")
    authority = lines[0][: -len(HEADER_SUFFIX)]
    scheme, sep, domain = authority.partition("://")
    if not sep:
        scheme, domain = "", authority
    elif not _SCHEME.fullmatch(scheme):
        raise MessageError(f"scheme {scheme[:40]!r} is malformed")
    address = _check(_ADDRESS, lines[1], "address")
    if lines[2] != "":
        raise MessageError("the address must be followed by an empty line")
    if lines[3] == "":
        statement, i = None, 4
    else:
        statement, i = lines[3], 5
        if lines[4] != "":
            raise MessageError("the statement must be followed by an empty line")
    fields: dict[str, object] = {
        "scheme": scheme or None,
        "domain": domain,
        "address": address,
        "statement": statement,
        "uri": _field(lines, i, "URI"),
        "version": _field(lines, i + 1, "Version"),
        "chain_id": int(_check(_DIGITS, _field(lines, i + 2, "Chain ID"), "chain id")),
        "nonce": _check(_NONCE, _field(lines, i + 3, "Nonce"), "nonce"),
        "issued_at": _check(_DATETIME, _field(lines, i + 4, "Issued At"), "issued-at time"),
    }
    i += 5
    for key, name, pattern in (
        ("expiration_time", "Expiration Time", _DATETIME),
        ("not_before", "Not Before", _DATETIME),
        ("request_id", "Request ID", _REQUEST_ID),
    ):
        if i < len(lines) and lines[i].startswith(f"{name}: "):
            fields[key] = _check(pattern, _field(lines, i, name), name.lower())
            i += 1
    if i < len(lines) and lines[i] == "Resources:":
        resources = []
        for line in lines[i + 1 :]:
            if not line.startswith("- "):
                raise MessageError("every line after 'Resources:' must be '- <uri>'")
            resources.append(line[2:])
        fields["resources"] = resources
        i = len(lines)
    if i != len(lines):
        raise MessageError(f"line {i + 1} is not an EIP-4361 field")
    try:
        parsed: SiweMessage = siwe().SiweMessage(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise MessageError(f"{where}: {first['msg']}") from None
    if parsed.prepare_message() != message:
        raise MessageError("the message is not in EIP-4361's exact layout")
    return parsed
