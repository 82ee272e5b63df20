"""The node's production-step service: journal, ingest, anchoring and bundles together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from web3.contract import Contract

from ledger.core.errors import Forbidden
from ledger.core.types import Hex, Record
from ledger.eth.chain import Chain
from ledger.eth.tx import Sender
from ledger.membership.consortium import ConsortiumClient
from ledger.steps import bundle
from ledger.steps.anchoring import DEFAULT_MAX_STEPS, Anchorer, AnchorOutcome, AnchorService
from ledger.steps.authority import Authority
from ledger.steps.builder import StepWriter
from ledger.steps.ingest import Ingestor, IngestResult, Submission, VerifyPool
from ledger.steps.journal import Journal, StoredStep, TimelineStep
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer


class SplitTimeline(Record):
    """A split's journalled steps, oldest first, and how far the chain has anchored them."""

    job_id: int
    split_id: int
    factory: str
    anchored_through: int = Field(description="the last anchored step's seq; -1 for none")
    anchors: int
    anchored_head: Hex = Field(description="the hash of the last anchored step")
    next_seq: int = Field(description="the seq this node's journal expects next")
    head: Hex = Field(description="the hash of the last journalled step")
    steps: list[TimelineStep]


class StepService:
    def __init__(
        self,
        chain: Chain,
        consortium: ConsortiumClient,
        traceability: Contract,
        splits: Contract,
        journal_dir: Path,
        senders: dict[str, Sender],
        deployed_at: int = 0,
    ) -> None:
        self.chain = chain
        self.traceability = traceability
        self.domain = Domain(chain.chain_id, traceability.address)
        # one journal per deployment; a chain reset and redeployed at the same addresses
        # has another deployment block, so its journal is not the old one
        name = f"{chain.chain_id}-{traceability.address.lower()}.sqlite"
        self.journal = Journal.for_chain(journal_dir / name, chain_identity(chain, deployed_at))
        self.authority = Authority(consortium, splits, deployed_at)
        self.ingestor = Ingestor(self.journal, self.domain, self.authority)
        self.senders = senders  # address -> Sender, the keys this node holds (shared, live)
        self.anchorer = Anchorer(chain, self.journal, traceability, self._anchor_sender)
        self.service: AnchorService | None = None

    def _anchor_sender(self, job_id: int, split_id: int) -> Sender | None:
        factory = self.authority.split_factory(job_id, split_id)
        for address, sender in self.senders.items():
            if address.lower() == factory.lower():
                return sender
        for address, sender in self.senders.items():
            try:
                now = int(self.ingestor.clock())
                self.authority.check(job_id, split_id, factory, address, now)
                return sender  # one of the factory's device keys
            except Exception:  # noqa: BLE001 - not a key of this factory
                continue
        return None

    def ingest(self, submissions: list[Submission]) -> IngestResult:
        return self.ingestor.ingest(submissions)

    def record(
        self,
        signer_address: str,
        job_id: int,
        split_id: int,
        payload: dict[str, Any],
        evidence_hashes: list[str] | None = None,
    ) -> IngestResult:
        """Sign the split's next step with a key this node holds, then ingest it."""
        sender = next(
            (s for a, s in self.senders.items() if a.lower() == signer_address.lower()), None
        )
        if sender is None:
            raise Forbidden(f"this node does not hold the key of {signer_address}")
        factory = self.authority.split_factory(job_id, split_id)
        next_seq, head = self.journal.head(job_id, split_id)
        writer = StepWriter(
            Signer(sender.account.key), self.domain, job_id, split_id, factory, next_seq, head
        )
        return self.ingest([writer.step(payload, evidence_hashes)])

    def find(self, step_hash: str) -> tuple[StoredStep, bytes | None] | None:
        """A stored step by its 0x-hex hash, with its canonical payload; None if unknown."""
        try:
            raw = bytes.fromhex(step_hash.removeprefix("0x"))
        except ValueError:
            return None
        stored = self.journal.step(raw) if len(raw) == 32 else None
        if stored is None:
            return None
        return stored, self.journal.payload(stored.step.payload_hash)

    def anchor(
        self,
        job_id: int,
        split_id: int,
        max_steps: int = DEFAULT_MAX_STEPS,
        *,
        sender: Sender | None = None,
    ) -> list[AnchorOutcome]:
        """Anchor the split's pending steps, signed by `sender` (default: a key of the
        split's factory this node holds, as the background anchoring does)."""
        return self.anchorer.anchor_all(job_id, split_id, max_steps, sender=sender)

    def timeline(self, job_id: int, split_id: int) -> SplitTimeline:
        next_seq, count = self.anchorer.chain_trace(job_id, split_id)
        _, head = self.anchorer.last_anchor(job_id, split_id, count, next_seq)
        steps = self.journal.steps(job_id, split_id)
        local_next, local_head = self.journal.head(job_id, split_id)
        return SplitTimeline(
            job_id=job_id,
            split_id=split_id,
            factory=self.authority.split_factory(job_id, split_id),
            anchored_through=next_seq - 1,
            anchors=count,
            anchored_head=head,
            next_seq=local_next,
            head=local_head,
            steps=[TimelineStep.of(s, anchored=s.step.seq < next_seq) for s in steps],
        )

    def export(self, job_id: int, split_id: int | None = None) -> dict[str, Any]:
        return bundle.export(self.journal, self.traceability, self.chain.chain_id, job_id, split_id)

    def stalled(self) -> list[str]:
        """Splits the background anchoring cannot anchor, with the reason (empty if none
        or if this node does not anchor automatically)."""
        return self.service.stalled() if self.service is not None else []

    def start_ingest_workers(self, workers: int) -> None:
        """Check batch bodies in `workers` processes (0: in this one, as before)."""
        if workers > 0 and self.ingestor.pool is None:
            self.ingestor.pool = VerifyPool(workers)

    def start_anchoring(self, *, max_steps: int = DEFAULT_MAX_STEPS, max_age: float = 30.0) -> None:
        if self.service is None:
            self.service = AnchorService(self.anchorer, max_steps=max_steps, max_age=max_age)
            self.service.start()

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None
        if self.ingestor.pool is not None:
            self.ingestor.pool.close()
            self.ingestor.pool = None
        self.journal.close()


def chain_identity(chain: Chain, deployed_at: int) -> str:
    """`deployed:<block>:<hash>`: the block the contracts were deployed in, which a chain
    reset does not reproduce (its blocks descend from another genesis). The genesis block
    itself is no identity: anvil makes a new one, with a new hash, each time it starts
    from a state file."""
    deployed = bytes(chain.w3.eth.get_block(deployed_at)["hash"]).hex()
    return f"deployed:{deployed_at}:0x{deployed}"
