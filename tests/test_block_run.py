"""A compact block read straight into a Run (`checker.block_run`) gives exactly the Run the
general path (decode the block, examine its steps' JSON objects, `_run_of`) gives, and
leaves every other block to the general path: over valid, odd and damaged blocks."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.hashing import keccak
from ledger.steps import compact
from ledger.steps.bundle import BundleStep
from ledger.steps.record import ZERO, Domain, _struct_hash
from ledger.steps.signatures import Signer
from ledger.verify import checker

DOMAIN = Domain(31337, "0x" + "ab" * 20)
SIGNERS = [Signer(b"\x11" * 32), Signer(b"\x22" * 32)]
JOB, SPLIT = 7, 1
PAYLOADS = [
    '{"bizStep":"assembling","type":"ObjectEvent"}',
    '{"bizStep":"assembling","type":"ObjectEvent"}',
    '{"cofab:handover":{"lot":"L1","toSplit":3}}',
    '{"cofab:handover":{"toSplit":"three"}}',
    '{"note":"\\u0068andover"}',
    '{"note":"café"}',
    "not json at all",
    "",
]
BIZ = ["assembling", "assembling", "inspecting", "https://example.com/steps/x", "no such step"]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the refusal is what is compared
        return ("refused", type(exc), str(exc))


def _general(block: bytes, job: int, split: int, ranges: list[tuple[int, int]]) -> Any:
    """`examine_block` as it was before the direct reading: through the JSON objects."""
    steps = [BundleStep.load(s) for s in compact.decode_block(block)[1]]
    raws = checker._raws(enumerate(steps))
    return checker.examine_chunk(DOMAIN, raws, job, split, ranges)


def _digest(rec: dict[str, Any]) -> bytes:
    member = bytes.fromhex(rec["member"][2:])
    struct_hash = _struct_hash(
        int(rec["jobId"]),
        int(rec["splitId"]),
        int(rec["seq"]),
        bytes.fromhex(rec["prevHash"][2:]),
        rec["bizStep"],
        bytes.fromhex(rec["payloadHash"][2:]),
        bytes.fromhex(rec["evidenceHash"][2:]),
        int(rec["time"]),
        member,
    )
    return keccak(DOMAIN.prefix + struct_hash)


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A split's steps in a row, each now and then odd in one or more ways."""
    n = draw(st.integers(1, 6))
    start = draw(st.sampled_from([0, 0, 5, 2**64 - 3]))
    text = draw(st.booleans()) and draw(st.booleans())  # numbers as decimal text
    prev = draw(st.sampled_from([ZERO, b"\x12" * 32]))
    out = []
    for i in range(n):
        odd = draw(st.integers(0, 4)) == 0
        pick = (lambda xs: draw(st.sampled_from(xs))) if odd else (lambda xs: xs[0])
        signer = pick(SIGNERS)
        payload = draw(st.sampled_from(PAYLOADS)) if odd else PAYLOADS[0]
        seq = min(start + i + pick([0, 1, -1]), 2**64 - 1)
        seq = max(seq, 0)
        rec = {
            "jobId": pick([JOB, JOB + 1]),
            "splitId": pick([SPLIT, 0]),
            "seq": seq,
            "prevHash": "0x" + pick([prev, b"\x34" * 32]).hex(),
            "bizStep": pick(BIZ),
            "payloadHash": "0x"
            + pick([hashlib.sha256(payload.encode()).digest(), b"\x56" * 32]).hex(),
            "evidenceHash": "0x" + pick([ZERO, b"\x78" * 32]).hex(),
            "time": pick([1_800_000_000, 1_800_000_001, 0, 2**64 - 1]),
            "member": pick([SIGNERS[0].address, SIGNERS[1].address, SIGNERS[0].address.lower()]),
        }
        if text:
            for k in ("jobId", "splitId", "seq", "time"):
                rec[k] = str(rec[k])
        digest = _digest(rec)
        sig = signer.sign(digest)
        signature = pick(
            [
                sig,
                sig[:64] + bytes([sig[64] - 27]),
                sig[:64] + bytes([sig[64] ^ 1]),
                sig[:64] + bytes([sig[64] + 10]),
                sig[:64] + bytes([sig[64] + 8]),
                bytes(32) + sig[32:],
                bytes(65),
            ]
        )
        out.append(
            {
                "record": rec,
                "step_hash": pick(["0x" + digest.hex(), None, "0x" + "9a" * 32]),
                "signature": "0x" + signature.hex(),
                "signer": pick([rec["member"], None, SIGNERS[1].address]),
                "payload": pick([payload, None]),
                "anchor_index": pick([None, 0, 3]),
                "proof": pick([None, ["0x" + "cd" * 32], []]),
            }
        )
        prev = digest
    return out


def _damaged(draw: st.DrawFn, frame: bytes) -> bytes:
    """The block's body, now and then damaged before or after compression."""
    body = frame[5:]
    split_id, count = struct.unpack_from(">QI", body)
    data = zlib.decompress(body[12:])
    how = draw(st.sampled_from(["none"] * 6 + ["flip", "cut", "extra", "flag", "count", "zlib"]))
    if how == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif how == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "extra":
        data += draw(st.binary(min_size=1, max_size=4))
    elif how == "flag":
        data = bytes([data[0] | draw(st.sampled_from([0x20, 0x40, 0x80]))]) + data[1:]
    elif how == "count":
        count = max(0, count + draw(st.sampled_from([-1, 1])))
    packed = zlib.compress(data)
    if how == "zlib":
        packed = packed[:-3]
    return struct.pack(">QI", split_id, count) + packed


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_block_run_equals_the_general_path(data: st.DataObject) -> None:
    given_steps = data.draw(steps())
    derived = data.draw(st.sets(st.integers(0, len(given_steps) - 1)))
    block = _damaged(data.draw, compact.block_frame(SPLIT, given_steps, derived))
    job = data.draw(st.sampled_from([JOB, JOB, JOB + 1]))
    first = given_steps[0]["record"]["seq"]
    lo = int(first)
    ranges = data.draw(
        st.lists(st.tuples(st.integers(lo - 1, lo + 6), st.integers(lo - 1, lo + 6)), max_size=3)
    )
    general = _outcome(_general, block, job, SPLIT, ranges)
    fast = checker.block_run(DOMAIN, block, job, SPLIT, ranges)
    if fast is not None:
        assert general == ("ok", fast)
    assert _outcome(checker.examine_block, DOMAIN, block, job, SPLIT, ranges) == general


def _signed_chain(
    payloads: list[str], *, text: bool = False, stated: bool = True, anchored: bool = True
) -> list[dict[str, Any]]:
    """Steps 0, 1, ... of one split signed by SIGNERS[0], each naming the one before; numbers
    as decimal text when `text`, step hashes stated when `stated`, each step in anchor
    `seq // 16` (with a placeholder proof) when `anchored`."""
    signer = SIGNERS[0]
    prev, out = ZERO, []
    for seq, payload in enumerate(payloads):
        rec: dict[str, Any] = {
            "jobId": JOB,
            "splitId": SPLIT,
            "seq": seq,
            "prevHash": "0x" + prev.hex(),
            "bizStep": "assembling",
            "payloadHash": "0x" + hashlib.sha256(payload.encode()).hexdigest(),
            "evidenceHash": "0x" + ZERO.hex(),
            "time": 1_800_000_000 + seq // 3,
            "member": signer.address,
        }
        if text:
            rec = {k: str(v) if isinstance(v, int) else v for k, v in rec.items()}
        digest = _digest(rec)
        out.append(
            {
                "record": rec,
                "step_hash": "0x" + digest.hex() if stated else None,
                "signature": "0x" + signer.sign(digest).hex(),
                "signer": signer.address,
                "payload": payload,
                "anchor_index": seq // 16 if anchored else None,
                "proof": ["0x" + "ef" * 32] if anchored else None,
            }
        )
        prev = digest
    return out


def test_a_plain_block_is_read_directly_and_equals_the_general_path() -> None:
    """Steps as a node writes them (payload hashes, links and proofs left out) take the
    direct reading, in both number forms, hand-overs included."""
    payloads = [PAYLOADS[2] if seq == 7 else PAYLOADS[0] for seq in range(40)]
    for text in (False, True):
        out = _signed_chain(payloads, text=text)
        block = compact.block_frame(SPLIT, out, range(0, 40, 2))[5:]
        ranges = [(0, 15), (16, 31), (32, 47)]
        run = checker.block_run(DOMAIN, block, JOB, SPLIT, ranges)
        assert isinstance(run, checker.Run)
        assert run == _general(block, JOB, SPLIT, ranges)
        assert run.handovers == [(7, (3, "L1"))] and sorted(run.roots) == [(0, 15), (16, 31)]
        assert json.dumps(run.edges[0]) == json.dumps(compact.decode_block(block)[1][0]["record"])


def test_leading_empty_payloads_are_hashed_as_the_general_path_hashes_them() -> None:
    """A block whose first steps carry the empty payload and no stated step hash: the
    direct reading hashes `""` like any other text (its SHA-256, not nothing)."""
    for payloads in ([""], ["", "", "x"], ["", "x", ""]):
        out = _signed_chain(payloads, stated=False, anchored=False)
        block = compact.block_frame(SPLIT, out)[5:]
        ranges = [(0, len(payloads) - 1)]
        general = _general(block, JOB, SPLIT, ranges)
        assert isinstance(general, checker.Run)
        assert general.signer == bytes.fromhex(SIGNERS[0].address[2:])
        assert checker.block_run(DOMAIN, block, JOB, SPLIT, ranges) == general


def test_a_chunk_is_given_only_the_claimed_ranges_within_its_steps() -> None:
    ranges = [(0, 3), (4, 4), (5, 9), (10, 20), (21, 21), (30, 40)]
    assert checker._inside(ranges, 0, 9) == [(0, 3), (4, 4), (5, 9)]
    assert checker._inside(ranges, 4, 20) == [(4, 4), (5, 9), (10, 20)]
    assert checker._inside(ranges, 1, 25) == [(4, 4), (5, 9), (10, 20), (21, 21)]
    assert checker._inside(ranges, 22, 29) == [] == checker._inside([], 0, 9)
    many = [(k, k) for k in range(200_000)]
    assert checker._inside(many, 4096, 8191) == many[4096:8192]
