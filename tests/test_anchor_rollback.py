"""The chain loses blocks (a devnet killed between two state dumps, a reorg): the node
reconciles its journal with the chain and anchors again, or says why it cannot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kit import admit, new_account
from ledger.eth.compiler import artifact
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.steps.anchoring import Anchorer, AnchorService
from ledger.steps.authority import Authority
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.ingest import Ingestor
from ledger.steps.journal import Journal
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer

JOB, SPLIT = 7, 1
T0 = int(time.time()) - 3600


class Split:
    """One split with a factory whose key this node holds, on its own Traceability."""

    def __init__(self, node: Node, tmp_path: Path) -> None:
        self.node = node
        self.factory = admit(node, int(Role.FACTORY))
        self.splits = self._deploy("TestSplits")
        self.trace = self._deploy("Traceability", node.consortium.address, self.splits.address)
        node.sender().transact(
            self.splits.functions.setSplit(JOB, SPLIT, self.factory.address, new_account().address)
        )
        self.journal = Journal(tmp_path / "journal.sqlite")
        domain = Domain(node.chain.chain_id, self.trace.address)
        self.ingestor = Ingestor(self.journal, domain, Authority(node.consortium, self.splits))
        self.anchorer = Anchorer(node.chain, self.journal, self.trace, lambda j, s: self.factory)
        self.writer = StepWriter(
            Signer(self.factory.account.key), domain, JOB, SPLIT, self.factory.address
        )
        self.written = 0

    def _deploy(self, name: str, *args: object) -> Any:
        art = artifact(name)
        receipt = self.node.sender().deploy(art.abi, art.bytecode, *args)
        return self.node.chain.w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)

    def write(self, n: int) -> None:
        batch = [
            self.writer.step(object_event("assembling", T0 + self.written + i)) for i in range(n)
        ]
        assert self.ingestor.ingest(batch).accepted == n
        self.written += n

    def chain_ranges(self) -> list[tuple[int, int]]:
        logs = self.trace.events.StepsAnchored().get_logs(from_block=0)
        return [(int(e["args"]["fromSeq"]), int(e["args"]["toSeq"])) for e in logs]

    def journal_ranges(self) -> list[tuple[int, int]]:
        rows = self.journal.anchor_rows("mined")
        return [(r["from_seq"], r["to_seq"]) for r in sorted(rows, key=lambda r: r["from_seq"])]


def test_anchors_lost_with_blocks_are_dropped_and_anchored_again(
    node: Node, tmp_path: Path
) -> None:
    split = Split(node, tmp_path)
    split.write(10)
    split.anchorer.anchor_all(JOB, SPLIT, max_steps=10)  # anchors 0..9
    w3 = node.chain.w3
    kept = w3.testing.snapshot()
    split.write(20)
    split.anchorer.anchor_all(JOB, SPLIT, max_steps=10)  # anchors 10..19, 20..29
    assert split.journal_ranges() == [(0, 9), (10, 19), (20, 29)]

    w3.testing.revert(kept)  # the chain loses the blocks of the last two anchors
    split.write(10)
    made = split.anchorer.anchor_all(JOB, SPLIT, max_steps=15)
    assert [(a.from_seq, a.to_seq, a.index) for a in made] == [(10, 24, 1), (25, 39, 2)]
    split.write(5)
    split.anchorer.anchor_all(JOB, SPLIT, max_steps=15)  # needs anchor 2's head: not a stale one

    expected = [(0, 9), (10, 24), (25, 39), (40, 44)]
    assert split.chain_ranges() == expected
    assert split.journal_ranges() == expected
    rows = split.journal.anchor_rows("mined")
    assert sorted(r["anchor_index"] for r in rows) == [0, 1, 2, 3]


def test_background_anchoring_notices_a_rollback(node: Node, tmp_path: Path) -> None:
    split = Split(node, tmp_path)
    service = AnchorService(split.anchorer, max_steps=5, max_age=0)
    split.write(5)
    service.tick()
    w3 = node.chain.w3
    kept = w3.testing.snapshot()
    split.write(5)
    service.tick()
    assert split.chain_ranges() == [(0, 4), (5, 9)]
    service.tick()  # anchored through the journal's head: nothing more to do
    w3.testing.revert(kept)
    assert split.chain_ranges() == [(0, 4)]
    service.tick()  # the block it saw is gone: the split is asked again and re-anchored
    assert split.chain_ranges() == [(0, 4), (5, 9)]
    assert split.journal_ranges() == [(0, 4), (5, 9)]
    assert service.stalled() == []


def test_background_anchoring_asks_the_chain_only_when_a_split_is_due(
    node: Node, tmp_path: Path
) -> None:
    split = Split(node, tmp_path)
    service = AnchorService(split.anchorer, max_steps=5, max_age=3600)
    asked: list[tuple[int, int]] = []
    trace = split.anchorer.chain_trace

    def counted(job_id: int, split_id: int) -> tuple[int, int]:
        asked.append((job_id, split_id))
        return trace(job_id, split_id)

    split.anchorer.chain_trace = counted  # type: ignore[method-assign]
    split.write(2)
    service.tick()
    assert len(asked) == 1  # a split seen for the first time
    split.write(2)
    service.tick()
    service.tick()
    assert len(asked) == 1 and split.chain_ranges() == []  # 4 of 5 steps, none old: not due
    split.write(1)
    service.tick()  # due: asked, then anchored
    assert split.chain_ranges() == [(0, 4)]
    asked.clear()
    service.tick()
    assert asked == [] and service.stalled() == []


def test_a_split_that_cannot_be_reconciled_is_reported_not_retried_in_silence(
    node: Node, tmp_path: Path
) -> None:
    split = Split(node, tmp_path)
    service = AnchorService(split.anchorer, max_steps=5, max_age=0)
    split.write(5)
    # the factory anchors, from elsewhere, steps this node never saw
    foreign = "0x" + "ab" * 32
    split.factory.transact(
        split.trace.functions.anchor(JOB, SPLIT, 0, 2, b"\0" * 32, b"\0" * 32, foreign, foreign)
    )
    service.tick()
    service.tick()
    stalled = service.stalled()
    assert len(stalled) == 1 and f"job {JOB} split {SPLIT}" in stalled[0]
    assert "another party anchored different steps" in stalled[0]
    assert split.chain_ranges() == [(0, 2)]  # nothing more was anchored over it
