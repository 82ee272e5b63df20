"""The EIP-4361 reader: the same fields as the `siwe` package's ABNF parser on valid
messages, and refusal of what the grammar refuses (its speed: bench/signin.py)."""

from __future__ import annotations

import contextlib
import itertools
import warnings

import pytest
from siwe import SiweMessage

from api.eip4361 import MAX_MESSAGE_BYTES, MessageError, MessageTooLarge, parse

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BASE = {
    "domain": "node.example:8443",
    "address": ADDRESS,
    "uri": "https://node.example:8443/auth/login",
    "version": "1",
    "chain_id": 31337,
    "nonce": "abcdEFGH1234",
    "issued_at": "2026-01-02T03:04:05.678Z",
}
OPTIONAL = {
    "scheme": "https",
    "statement": "Sign in to the cofab node.",
    "expiration_time": "2026-01-02T04:04:05+01:00",
    "not_before": "2026-01-02T03:00:00Z",
    "request_id": "req-42_~!$&'()*+,;=:@%20",
    "resources": [
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq",
        "https://a.example/x?y=1#z",
    ],
}


def _abnf(text: str) -> SiweMessage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SiweMessage.from_message(message=text, abnf=True)


def _combinations() -> list[dict[str, object]]:
    keys = list(OPTIONAL)
    found = []
    for n in range(len(keys) + 1):
        for chosen in itertools.combinations(keys, n):
            found.append({**BASE, **{k: OPTIONAL[k] for k in chosen}})
    return found


@pytest.mark.parametrize(
    "fields", _combinations(), ids=lambda f: "+".join(sorted(set(f) - set(BASE))) or "required"
)
def test_reads_what_the_abnf_parser_reads(fields: dict[str, object]) -> None:
    text = SiweMessage(**fields).prepare_message()
    assert parse(text).model_dump() == _abnf(text).model_dump()


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t + "\n",  # trailing newline
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("Version: 1", "Version: 2"),
        lambda t: t.replace("Chain ID: 31337", "Chain ID: +31337"),
        lambda t: t.replace("Chain ID: 31337", "Chain ID: ³¹"),
        lambda t: t.replace("Nonce: abcdEFGH1234", "Nonce: short"),
        lambda t: t.replace("Nonce: abcdEFGH1234", "Nonce: abcd-EFGH-1234"),
        lambda t: t.replace(ADDRESS, ADDRESS.lower()),  # not EIP-55
        lambda t: t.replace(ADDRESS, ADDRESS[:-1]),
        lambda t: t.replace("2026-01-02T03:04:05.678Z", "2026-01-02"),
        lambda t: t.replace("URI: https", "URI: not a uri"),
        lambda t: t.replace("Issued At", "Issued at"),
        lambda t: t.replace("\nVersion: 1", ""),
        lambda t: t.replace("Version: 1\nChain ID: 31337", "Chain ID: 31337\nVersion: 1"),
        lambda t: t + "\nSurprise: field",
        lambda t: t.replace(" wants you", " wants  you"),
        lambda t: "\n" + t,
        lambda t: t + "\nRequest ID: 100%",  # a bare % is no pchar
    ],
    ids=lambda _: "",
)
def test_refuses_what_the_grammar_refuses(edit) -> None:
    text = edit(SiweMessage(**BASE).prepare_message())
    with pytest.raises(MessageError):
        parse(text)
    with pytest.raises(Exception):  # noqa: B017 - the ABNF parser agrees
        _abnf(text)


def test_refuses_what_is_too_long_before_reading_it() -> None:
    text = SiweMessage(**{**BASE, "statement": "x" * MAX_MESSAGE_BYTES}).prepare_message()
    with pytest.raises(MessageTooLarge):
        parse(text)


@pytest.mark.parametrize("shape", ["domain", "statement", "resources", "junk"])
def test_the_largest_messages_of_any_shape_are_read(shape: str) -> None:
    """The ABNF parser needs ~1.4 s for 2 KiB (and grows faster than the square); this
    reader handles 4 KiB of any shape in milliseconds."""
    text = SiweMessage(**BASE).prepare_message()
    pad = "a" * (MAX_MESSAGE_BYTES - len(text) - 64)
    text = {
        "domain": text.replace("node.example:8443 ", "node.example" + pad + " ", 1),
        "statement": text.replace("\n\nURI", "\n" + pad + "\n\nURI", 1),
        "resources": text + "\nResources:" + "\n- x:a" * (len(pad) // 6),
        "junk": pad + "\n" * 64,
    }[shape]
    assert len(text.encode()) <= MAX_MESSAGE_BYTES
    with contextlib.suppress(MessageError):  # read or refused; its time: bench/signin.py
        parse(text)
