"""A check started before the chain's facts are read (the workers root the ranges the
bundle claims) gets exactly the verdict of one started with them, whatever the claims:
true, missing, shifted, overlapping or false."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from kit import bundle_of, exported_steps
from ledger.steps import compact
from ledger.steps.anchoring import anchor_tree
from ledger.steps.bundle import Anchor, Bundle
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer
from ledger.verify.authority import Window
from ledger.verify.chain import ChainFacts
from ledger.verify.checker import StepsCheck, check_steps, rooted

DOMAIN = Domain(31337, "0x" + "ab" * 20)
SIGNER = Signer(b"\x33" * 32)
NOW = int(time.time())


class _Authority:
    def window(self, *_: object) -> Window:
        return Window(True, 0, 0, 0)


def _made() -> tuple[dict[str, Any], ChainFacts]:
    """A one-split bundle of 40 steps, the first 32 anchored 16 at a time (the chain's
    anchors in the facts, the same claimed in the bundle)."""
    steps = exported_steps(SIGNER, DOMAIN, 7, 0, 40, NOW)
    claims, anchors, head = [], [], bytes(32)
    for index, lo in enumerate((0, 16)):
        rng = [(q, bytes.fromhex(steps[q]["step_hash"][2:])) for q in range(lo, lo + 16)]
        tree = anchor_tree(rng)
        for i, q in enumerate(range(lo, lo + 16)):
            steps[q]["anchor_index"] = index
            steps[q]["proof"] = ["0x" + p.hex() for p in tree.proof(i)]
        a = Anchor(0, index, lo, lo + 15, tree.root, head, rng[-1][1], SIGNER.address,
                   "0x" + "11" * 32, 5 + index, NOW + 100)  # fmt: skip
        head = rng[-1][1]
        anchors.append(a)
        claims.append(a.as_dict())
    bundle = bundle_of(DOMAIN, 7, [{"split_id": 0, "anchors": claims, "steps": steps}])
    facts = ChainFacts(7, DOMAIN, {0: anchors}, lambda _: SIGNER.address, _Authority(), 9, set())  # type: ignore[arg-type]
    return bundle, facts


def _claims(how: str, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(claims)
    if how == "none":
        return []
    if how == "shifted":
        for c in out:
            c["from_seq"] += 1
            c["to_seq"] += 1
    elif how == "overlapping":
        out += [dict(out[0], index=9, from_seq=0, to_seq=31), dict(out[1], index=8, from_seq=8)]
    elif how == "false root":
        out[1]["root"] = "0x" + "ee" * 32
    return out


def _verdict(v: Any) -> Any:
    return (
        [f.model_dump(mode="json") for f in v.findings],
        {
            s: (r.steps, r.anchored, r.verified_signatures, r.first, r.last)
            for s, r in v.splits.items()
        },
    )


@pytest.mark.parametrize("how", ["true", "none", "shifted", "overlapping", "false root"])
@pytest.mark.parametrize("form", ["json", "compact"])
def test_an_early_start_gets_the_verdict_of_a_start_with_the_facts(how: str, form: str) -> None:
    made, facts = _made()
    made["splits"][0]["anchors"] = _claims(how, made["splits"][0]["anchors"])
    raw = compact.encode(made) if form == "compact" else json.dumps(made).encode()
    with_facts = check_steps(facts, [Bundle.load(raw)], [0])
    early = StepsCheck.start(7, DOMAIN, [Bundle.load(raw)], [0]).finish(facts)
    assert _verdict(early) == _verdict(with_facts)
    assert with_facts.anchored == 32 and (with_facts.ok or how != "true")


def test_an_early_start_for_another_domain_starts_again_with_the_facts() -> None:
    made, facts = _made()
    raw = compact.encode(made)
    other = Domain(DOMAIN.chain_id, "0x" + "cd" * 20)
    early = StepsCheck.start(7, other, [Bundle.load(raw)], [0]).finish(facts)
    assert _verdict(early) == _verdict(check_steps(facts, [Bundle.load(raw)], [0]))
    assert early.ok


def test_rooted_ranges_are_ascending_and_disjoint() -> None:
    class C:
        def __init__(self, lo: int, hi: int) -> None:
            self.from_seq, self.to_seq = lo, hi

    given = [C(16, 31), C(0, 15), C(0, 31), C(8, 20), C(40, 39), C(32, 32), C(-5, -1)]
    assert rooted(given) == [(0, 15), (16, 31), (32, 32)]  # no step has a negative seq
