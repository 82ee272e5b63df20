"""The checker on splits the bundles give no step of: nothing to find, nothing asked."""

from __future__ import annotations

from ledger.steps.record import Domain
from ledger.verify.chain import ChainFacts
from ledger.verify.checker import check_steps


class _NoChain:
    """Authority that must not be asked: a split without steps has no signer to judge."""

    def window(self, *_: object) -> None:
        raise AssertionError("asked about a signer of no step")


def test_splits_without_steps_are_checked_clean_and_ask_nothing() -> None:
    facts = ChainFacts(
        job_id=7,
        domain=Domain(1, "0x" + "ab" * 20),
        anchors={},
        factory=lambda _: "0x" + "00" * 20,
        authority=_NoChain(),  # type: ignore[arg-type]
        latest_block=1,
        handovers=set(),
    )
    verdict = check_steps(facts, [], [0, 1])
    assert verdict.ok and verdict.findings == []
    assert {s: (r.steps, r.first, r.last) for s, r in verdict.splits.items()} == {
        0: (0, None, None),
        1: (0, None, None),
    }
