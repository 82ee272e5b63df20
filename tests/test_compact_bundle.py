"""The compact bundle encoding gives back exactly what its JSON form holds, refuses a
damaged file with a clear 422, and is small. (That it gets the same verdict as the JSON
form for every tampered bundle is in test_audit_entrypoints.py.)"""

from __future__ import annotations

import copy
import json
import os
import time
import zlib
from typing import Any

import pytest

from kit import bundle_of, exported_steps
from ledger.core.errors import InvalidInput
from ledger.steps import compact
from ledger.steps.anchoring import anchor_tree
from ledger.steps.bundle import Bundle, Encoding, encoded
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer

DOMAIN = Domain(31337, "0x" + "ab" * 20)


def _bundle(n: int = 40, anchored: int = 32) -> dict[str, Any]:
    """A two-split bundle as a node exports it: the first `anchored` steps of split 0
    anchored 16 at a time with their proofs, the rest pending."""
    signer = Signer(os.urandom(32))
    splits = []
    for sid in (0, 1):
        steps = exported_steps(signer, DOMAIN, 7, sid, n, int(time.time()))
        anchors = []
        for index, lo in enumerate(range(0, anchored if sid == 0 else 0, 16)):
            rng = [(q, bytes.fromhex(steps[q]["step_hash"][2:])) for q in range(lo, lo + 16)]
            tree = anchor_tree(rng)
            for i, q in enumerate(range(lo, lo + 16)):
                steps[q]["anchor_index"] = index
                steps[q]["proof"] = ["0x" + p.hex() for p in tree.proof(i)]
            anchors.append(
                {
                    "index": index,
                    "from_seq": lo,
                    "to_seq": lo + 15,
                    "root": "0x" + tree.root.hex(),
                    "previous_head": "0x" + "00" * 32,
                    "head": steps[lo + 15]["step_hash"],
                    "anchored_by": signer.address,
                    "tx_hash": "0x" + "11" * 32,
                    "block_number": 5 + index,
                    "timestamp": 1_700_000_000 + index,
                }
            )
        splits.append({"split_id": sid, "anchors": anchors, "steps": steps})
    return bundle_of(DOMAIN, 7, splits)


def _same(bundle: dict[str, Any]) -> None:
    raw = compact.encode(bundle)
    assert compact.is_compact(raw)
    assert Bundle.load(raw).export() == Bundle.load(json.dumps(bundle)).export()


def test_a_node_bundle_round_trips_and_is_small() -> None:
    bundle = _bundle()
    _same(bundle)
    raw = compact.encode(bundle)
    steps = 80
    assert len(raw) / steps <= 400, len(raw) / steps
    assert len(raw) * 4 < len(json.dumps(bundle))
    loaded = Bundle.load(raw)
    assert loaded.steps() == steps and loaded.digest() != Bundle.load(bundle).digest()
    # the encoding is chosen by name or by asking; reading needs neither
    assert encoded(bundle, Encoding.COMPACT) == raw
    assert Bundle.load(encoded(bundle, Encoding.JSON)).export() == Bundle.load(raw).export()


def _odd(steps: list[Any]) -> None:
    steps[0]["record"]["member"] = steps[0]["record"]["member"].lower()  # not checksummed
    steps[1]["record"]["extra"] = 1  # a field no typed record has
    steps[2]["payload"] = None  # payload left out
    steps[3]["proof"] = steps[3]["proof"][:-1]  # a proof no tree gives
    steps[4]["signature"] = steps[4]["signature"].upper().replace("0X", "0x")  # upper-case hex
    steps[5]["record"]["seq"] = True  # JSON true where an integer belongs
    steps[6]["signer"] = None
    steps[7]["step_hash"] = None
    steps[8] = "not a step"
    steps[9]["payload"] = {"parsed": "object"}
    steps[10]["record"]["payloadHash"] = "0x" + "00" * 32  # a hash no payload has
    steps[11]["record"]["evidenceHash"] = "0x" + "12" * 32
    steps[12]["anchor_index"] = 99
    steps[13]["record"]["jobId"] = 2**200  # beyond 64 bits
    steps[20]["record"]["prevHash"] = "0x" + "34" * 32  # not linked to the step before
    steps[21]["record"]["seq"] = "021"  # decimal text, but not as a number is written
    steps[22]["record"]["jobId"] = "7"  # text beside numbers in one record


def test_anything_the_typed_form_cannot_carry_round_trips_as_json() -> None:
    bundle = _bundle()
    _odd(bundle["splits"][0]["steps"])
    _same(bundle)


def _as_exported(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with its records' numbers as decimal text, as a node's export has them."""
    out = copy.deepcopy(bundle)
    for split in out["splits"]:
        for step in split["steps"]:
            for key in ("jobId", "splitId", "seq", "time"):
                step["record"][key] = str(step["record"][key])
    return out


def test_a_node_export_with_numbers_as_text_is_typed_too() -> None:
    numbers = _bundle()
    text = _as_exported(numbers)
    _same(text)
    assert (
        Bundle.load(compact.encode(text)).export()["splits"][0]["steps"][5]["record"]["seq"] == "5"
    )
    # typed, proofs derived: hardly larger than the same bundle with numbers
    assert len(compact.encode(text)) <= len(compact.encode(numbers)) + 80
    _odd(text["splits"][0]["steps"])
    _same(text)


def test_a_step_with_flags_this_reader_does_not_know_is_refused() -> None:
    bundle = _bundle(anchored=0)
    bundle["splits"] = bundle["splits"][:1]
    bundle["splits"][0]["steps"] = []
    head = compact.encode(bundle)
    step = compact.FIXED.pack(1 << 14, 7, 0, 0, 0)
    block = compact.BLOCK_HEAD.pack(0, 1) + zlib.compress(step, 0)
    with pytest.raises(InvalidInput, match="flags this reader does not know") as refused:
        Bundle.load(head + compact._FRAME.pack(compact.STEPS, len(block)) + block).export()
    assert refused.value.status == 422


def test_a_block_repeating_one_step_over_and_over_is_refused_before_it_is_read() -> None:
    """A crafted block of one step repeated compresses to almost nothing: a 4 MiB request
    could otherwise make the checker examine millions of steps. A block must hold at
    least 16 compressed bytes per step (a real one: over 64) and at most 4,096 steps."""
    bundle = _bundle(8, 0)
    one = bundle["splits"][0]["steps"][0]
    head = compact.header_frame(bundle)
    bomb = head + compact.block_frame(0, [one] * 4096)
    assert len(bomb) - len(head) < 4096 * compact.MIN_PACKED_STEP
    with pytest.raises(InvalidInput, match="declares 4,096 steps"):
        Bundle.load(bomb)
    too_many = compact.BLOCK_HEAD.pack(0, 4097) + zlib.compress(os.urandom(20 * 4097))
    with pytest.raises(InvalidInput, match="at most 4,096 steps"):
        Bundle.load(head + compact._frame(compact.STEPS, too_many))
    distinct = _bundle(512, 0)["splits"][0]["steps"]
    assert len(compact.block_frame(0, distinct)) > 64 * len(distinct)  # a real block
    twice = head + compact.block_frame(0, distinct * 2)  # two exports pasted together
    assert len(Bundle.load(twice).splits[0].steps) == 1024


def test_a_bundle_without_proofs_or_anchors_round_trips() -> None:
    bundle = _bundle(anchored=0)
    for s in bundle["splits"]:
        s["steps"].reverse()
    _same(bundle)
    _same({**bundle, "splits": []})


def test_a_damaged_compact_file_is_refused_naming_the_problem() -> None:
    raw = compact.encode(_bundle())
    for damaged, words in (
        (raw[: len(raw) // 2], "truncated"),
        (raw[:60] + bytes([raw[60] ^ 0xFF]) + raw[61:], "compact bundle"),
        (compact.MAGIC, "no header"),
        (compact.MAGIC + b"X\x00\x00\x00\x00", "unknown frame"),
    ):
        with pytest.raises(InvalidInput) as refused:
            Bundle.load(damaged).export()
        assert words in refused.value.message and refused.value.status == 422


def test_a_block_of_another_split_than_the_header_lists_is_refused() -> None:
    bundle = _bundle()
    header_only = copy.deepcopy(bundle)
    header_only["splits"] = header_only["splits"][:1]
    head = compact.encode(header_only)
    other = compact.encode(bundle)
    blocks = [body for kind, body in compact.frames(other) if kind == compact.STEPS]
    tail = b"".join(
        compact._FRAME.pack(compact.STEPS, len(b)) + bytes(b) for b in blocks
    )  # split 1's block too
    with pytest.raises(InvalidInput, match="does not list"):
        Bundle.load(head + tail)


def test_a_crafted_header_or_step_is_refused_with_a_422_not_a_crash() -> None:
    """Deep nesting is refused before a parser sees it, even with the recursion limit
    raised as py-evm raises it (pytest's processes run so), where it would crash."""
    bundle = _bundle(anchored=0)
    crafted = {**bundle, "splits": [{"split_id": [1], "anchors": []}]}
    with pytest.raises(InvalidInput, match="split_id must be an integer") as refused:
        Bundle.load(compact.encode(crafted)).export()
    assert refused.value.status == 422
    nested = b"[" * 100_000 + b"]" * 100_000
    empty = {**bundle, "splits": [{"split_id": 0, "anchors": [], "steps": []}]}
    header = compact.encode(empty)
    raw_step = compact.FIXED.pack(compact.RAW, 0, 0, 0, 0) + compact.U32.pack(len(nested))
    block = compact.BLOCK_HEAD.pack(0, 1) + zlib.compress(raw_step + nested)
    for damaged in (
        compact.MAGIC + compact._frame(compact.HEADER, zlib.compress(nested)),
        header + compact._frame(compact.STEPS, block),
        nested,  # the JSON form
    ):
        with pytest.raises(InvalidInput, match="levels deep") as refused:
            Bundle.load(damaged).export()
        assert refused.value.status == 422


def test_a_payload_nesting_too_deep_is_no_hand_over_and_no_crash() -> None:
    from ledger.verify.checker import examine

    step = _bundle(n=1, anchored=0)["splits"][0]["steps"][0]
    payload = '{"handover": ' + "[" * 100_000 + "]" * 100_000 + "}"
    [row] = examine(DOMAIN, [(step["record"], step["signature"], payload, None)])
    assert not isinstance(row, str) and row[10] is None  # no hand-over read from it
