"""The verifier's fast reading of a step record (`read_record`) and its per-step work
(`examine`) equal the library path (`Step.from_message`, `Step.digest`, a full hash of
every payload) on everyday and malformed records alike."""

from __future__ import annotations

import hashlib
from typing import Any

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.steps.anchoring import step_leaf
from ledger.steps.record import ZERO, Domain, Step, read_record
from ledger.steps.signatures import Signer, recover_address
from ledger.verify import checker

DOMAIN = Domain(31337, "0x" + "ab" * 20)
ACCOUNT = Account.from_key(b"\x11" * 32)
SIGNER = Signer(bytes(ACCOUNT.key))
PAYLOAD = '{"bizStep":"assembling","eventTime":"2026-01-01T00:00:00Z","type":"ObjectEvent"}'
PAYLOAD_HASH = "0x" + hashlib.sha256(PAYLOAD.encode()).hexdigest()

BASE: dict[str, Any] = {
    "jobId": 7,
    "splitId": 1,
    "seq": 3,
    "prevHash": "0x" + "12" * 32,
    "bizStep": "assembling",
    "payloadHash": PAYLOAD_HASH,
    "evidenceHash": "0x" + "00" * 32,
    "time": 1_800_000_000,
    "member": ACCOUNT.address,
}
ODD_NUMBERS = [
    0, 1, "0", "7", "01", "0x1", " 1", "1 ", "-1", -1, 1.0, 2.5, True, False, None, "", "٣",
    "²", 2**64 - 1, 2**64, str(2**64), 2**256 - 1, 2**256, str(2**256), [1], {"a": 1},
]  # fmt: skip
ODD_HASHES = [
    "0x" + "ab" * 32, "0x" + "AB" * 32, "ab" * 32, "0X" + "ab" * 32, "0x" + "ab" * 31,
    "0x" + "ab" * 33, "0x" + "ab " * 31 + "abab", "0x" + "zz" * 32, b"\x01" * 32, b"\x01",
    None, "", 0, 12, "0x",
]  # fmt: skip
ODD_MEMBERS = [
    ACCOUNT.address, ACCOUNT.address.lower(), ACCOUNT.address.upper().replace("0X", "0x"),
    ACCOUNT.address[2:], "0X" + ACCOUNT.address[2:], ACCOUNT.address[:-1], "0x" + "00" * 20,
    "0x" + "zz" * 20, None, 12, b"\x01" * 20, " " + ACCOUNT.address,
]  # fmt: skip
ODD_BIZ = [
    "assembling", "shipping", "https://example.com/steps/anodizing", "urn:epcglobal:cbv:bizstep:x",
    "", "not a step", None, 3, "x" * 3000,
]  # fmt: skip
FIELDS = {
    "jobId": ODD_NUMBERS,
    "splitId": ODD_NUMBERS,
    "seq": ODD_NUMBERS,
    "time": ODD_NUMBERS,
    "prevHash": ODD_HASHES,
    "payloadHash": ODD_HASHES,
    "evidenceHash": ODD_HASHES,
    "member": ODD_MEMBERS,
    "bizStep": ODD_BIZ,
}
MISSING = object()


def library(record: Any) -> tuple[Any, ...] | str:
    """The library path: a Step read field by field, then Step.digest."""
    try:
        step = Step._read(record)
    except Exception as exc:  # noqa: BLE001 - compared as text
        return f"refused: {exc}"
    d = step.digest(DOMAIN)
    return (
        step.job_id,
        step.split_id,
        step.seq,
        step.prev_hash,
        step.payload_hash,
        step.time,
        step.member,
        d,
    )


def reference_examine(raws: list[checker.Raw]) -> list[Any]:
    """`examine` as the library path gives it: every payload hashed in full."""
    out: list[Any] = []
    for record, signature, payload, stated in raws:
        got = library(record)
        if isinstance(got, str):
            out.append("unreadable step record: " + got.removeprefix("refused: "))
            continue
        job, split, seq, prev, signed_payload, when, member, digest = got
        if payload is None:
            state, handover = checker.PAYLOAD_MISSING, None
        elif isinstance(payload, str):
            ok = hashlib.sha256(payload.encode()).digest() == signed_payload
            state = checker.PAYLOAD_OK if ok else checker.PAYLOAD_MISMATCH
            handover = checker._handover(payload)
        else:
            state, handover = checker.PAYLOAD_MISMATCH, None
        out.append(
            (
                seq,
                job,
                split,
                prev,
                member,
                when,
                digest,
                step_leaf(seq, digest),
                recover_address(digest, checker._signature(signature)),
                state,
                handover,
                stated is None or stated == "0x" + digest.hex(),
            )
        )
    return out


EVERYDAY = {
    "jobId": [0, 1, "0", "7", 2**256 - 1],
    "seq": [0, "0", 2**64 - 1, str(2**64 - 1)],
    "prevHash": ["0x" + "ab" * 32, "0x" + "AB" * 32],
    "evidenceHash": [None, "0x" + "ab" * 32],
    "member": [ACCOUNT.address, ACCOUNT.address.lower()],
    "bizStep": ["shipping", "https://example.com/steps/anodizing"],
}


def _from_message(record: Any) -> Step | str:
    try:
        return Step.from_message(record)
    except Exception as exc:  # noqa: BLE001 - compared as text
        return f"refused: {exc}"


def _slow_step(record: Any) -> Step | str:
    try:
        return Step._read(record)
    except Exception as exc:  # noqa: BLE001 - compared as text
        return f"refused: {exc}"


def _agree(record: Any, everyday: bool = False) -> None:
    fast = read_record(record, DOMAIN)
    slow = library(record)
    if fast is not None:  # the fast path reads only what the library reads, identically
        assert fast == slow
    step, slow_step = _from_message(record), _slow_step(record)
    assert step == slow_step  # Step.from_message: the same Step, or the same refusal
    if isinstance(step, Step):
        assert step.digest(DOMAIN) == slow_step.digest(DOMAIN)  # type: ignore[union-attr]
        assert vars(step) == vars(slow_step)
    if everyday:
        assert fast is not None and not isinstance(slow, str)


def test_every_odd_field_value_reads_as_the_library_reads_it() -> None:
    _agree(BASE, everyday=True)
    for name, values in EVERYDAY.items():
        for value in values:
            _agree({**BASE, name: value}, everyday=True)
    for name, values in FIELDS.items():
        for value in [*values, MISSING]:
            record = dict(BASE)
            if value is MISSING:
                del record[name]
            else:
                record[name] = value
            _agree(record)
    for odd in (None, [], "record", 12, [BASE]):
        _agree(odd)
        assert read_record(odd, DOMAIN) is None


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={name: st.sampled_from(values) for name, values in FIELDS.items()},
    )
)
def test_generated_records_read_as_the_library_reads_them(changes: dict[str, Any]) -> None:
    _agree({**BASE, **changes})


def test_examine_equals_the_library_path_step_for_step() -> None:
    raws: list[checker.Raw] = []
    prev = ZERO
    for seq in range(6):
        record = {**BASE, "seq": str(seq), "prevHash": "0x" + prev.hex()}
        digest = library(record)[-1]
        assert isinstance(digest, bytes)
        sig = "0x" + SIGNER.sign(digest).hex()
        raws.append((record, sig, PAYLOAD, "0x" + digest.hex()))
        prev = digest
    handover = '{"cofab:handover":{"toSplit":2,"lot":"L1"},"type":"ObjectEvent"}'
    raws += [
        (raws[0][0], raws[0][1], PAYLOAD + " ", None),  # edited payload right after a good one
        (raws[0][0], raws[0][1], PAYLOAD, None),  # and the good one again
        (raws[1][0], raws[1][1], None, None),
        (raws[1][0], raws[1][1], {"type": "ObjectEvent"}, None),
        (raws[1][0], raws[1][1], handover, None),
        (raws[1][0], raws[1][1], handover.replace("h", "\\u0068", 1), None),
        (raws[2][0], "0x" + "00" * 65, PAYLOAD, "0x" + "11" * 32),
        (raws[2][0], "nothex", PAYLOAD, None),
        (raws[2][0], None, PAYLOAD, None),
        ({**BASE, "seq": 1.5}, raws[2][1], PAYLOAD, None),
        ({**BASE, "member": ACCOUNT.address.lower()}, raws[2][1], PAYLOAD, None),
        ("not a record", None, None, None),
        ({**BASE, "bizStep": "urn:epcglobal:cbv:bizstep:assembling"}, None, PAYLOAD, None),
    ]
    got = checker.examine(DOMAIN, raws)
    assert got == reference_examine(raws)
    assert sum(isinstance(r, str) for r in got) == 3
