"""Typed access to the Disputes contract: open a dispute on a split, add evidence, vote, lapse.

A dispute is read back from the contract's state plus its events (the reason, every piece
of evidence and every vote live only in logs), so `DisputesClient.show` gives the whole
history an auditor needs. Payout shares are parts per million of the split's amount.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from typing import Annotated, Any

from pydantic import Field, computed_field
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.core.abi import ZERO32, SolidityEnum, bytes32, checksum, solidity_enum
from ledger.core.errors import InvalidInput, NotFound, field_name
from ledger.core.types import Label, Record
from ledger.eth.chain import Chain
from ledger.eth.contract import call
from ledger.eth.tx import Sender
from ledger.orders.settlement import SCALE

MAX_TEXT_BYTES = 2048  # the contract's limit on a reason or an evidence URI
EVENTS = ("DisputeOpened", "EvidenceSubmitted", "VoteCast", "DisputeRuled", "DisputeLapsed")


@solidity_enum
class DisputeStatus(SolidityEnum):
    NONE = 0
    OPEN = 1
    RULED = 2
    LAPSED = 3


@solidity_enum
class Fault(SolidityEnum):
    NONE = 0
    BUYER = 1
    FACTORY = 2

    @classmethod
    def parse(cls, value: str | int | Fault) -> Fault:
        if isinstance(value, Fault):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        else:
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        raise InvalidInput(f"fault {value!r} must be none, buyer or factory", field="fault")


def parse_payout(value: str | int) -> int:
    """'400000' (ppm) or '40%' → 400000; 0..1,000,000 (the whole split amount)."""
    raw = str(value).strip()
    try:
        if raw.endswith("%"):
            ppm = float(raw[:-1]) * SCALE / 100
            if ppm != int(ppm):
                raise ValueError
            result = int(ppm)
        else:
            result = int(raw)
    except ValueError:
        raise InvalidInput(
            f"payout {value!r} must be parts per million (0..1000000) or a percentage",
            field="payout_ppm",
        ) from None
    if not 0 <= result <= SCALE:
        raise InvalidInput(
            f"payout {value!r} must be between 0 and 1000000 ppm (0 to 100%)", field="payout_ppm"
        )
    return result


def _text(value: str, what: str, *, required: bool) -> str:
    size = len(value.encode())
    field = "uri" if what.endswith("URI") else field_name(what)
    if required and not value.strip():
        raise InvalidInput(f"a dispute needs a {what}", field=field)
    if size > MAX_TEXT_BYTES:
        raise InvalidInput(
            f"the {what} is {size} bytes; at most {MAX_TEXT_BYTES} are allowed", field=field
        )
    return value


def _evidence_hash(value: str | bytes) -> bytes:
    raw = bytes32(value, "evidence hash")
    if raw == ZERO32:
        raise InvalidInput(
            "the evidence hash must be a nonzero 32-byte hash (e.g. its SHA-256)",
            field="evidence_hash",
        )
    return raw


class Evidence(Record):
    party: str
    evidence_hash: str
    uri: str
    block: int
    time: int
    tx: str


class Vote(Record):
    auditor: str
    payout_ppm: int
    fault: Label[Fault]
    block: int
    time: int
    tx: str


class Ruling(Record):
    payout_ppm: int
    payout: int
    refund: int
    fault: Label[Fault]


class Dispute(Record):
    """A dispute as the chain records it, with its phase at chain time `now`."""

    id: int
    job_id: int
    split_id: int
    status: Annotated[Label[DisputeStatus], Field(description="open | ruled | lapsed")]
    claimant: str
    respondent: str
    reason: str
    evidence_hash: str
    opened_at: int
    evidence_deadline: int
    ruling_deadline: int
    respondent_heard: bool
    votes: int
    quorum: int
    payout_ppm: int | None = Field(exclude=True)
    payout: int | None = Field(exclude=True)
    refund: int | None = Field(exclude=True)
    fault: Fault | None = Field(exclude=True)
    now: int = Field(exclude=True)
    evidence: list[Evidence] = Field(default_factory=list)
    vote_list: list[Vote] = Field(default_factory=list)
    opened_tx: str = ""
    closed_tx: str | None = None

    @computed_field(description="evidence | voting | lapsable | ruled | lapsed")
    @property
    def phase(self) -> str:
        """evidence | voting | lapsable (deadline passed, anyone may lapse it) | ruled | lapsed."""
        if self.status is not DisputeStatus.OPEN:
            return self.status.label
        if self.now > self.ruling_deadline:
            return "lapsable"
        if self.respondent_heard or self.now > self.evidence_deadline:
            return "voting"
        return "evidence"

    @computed_field
    @property
    def ruling(self) -> Ruling | None:
        """The auditors' ruling, once the dispute is ruled."""
        if self.status is not DisputeStatus.RULED or self.fault is None:
            return None
        return Ruling(
            payout_ppm=self.payout_ppm or 0,
            payout=self.payout or 0,
            refund=self.refund or 0,
            fault=self.fault,
        )

    def __str__(self) -> str:
        where = f"dispute {self.id} on split {self.split_id} of job {self.job_id}"
        if self.status is DisputeStatus.RULED:
            fault = self.fault.label if self.fault is not None else "none"
            return (
                f"{where}: ruled by {self.votes} vote(s) — pay the factory "
                f"{(self.payout_ppm or 0) / 10_000:g}% ({self.payout}), refund the buyer "
                f"{self.refund}, fault: {fault}"
            )
        if self.status is DisputeStatus.LAPSED:
            return f"{where}: lapsed without a ruling ({self.votes} of {self.quorum} votes)"
        return f"{where}: open, {self.phase} ({self.votes} of {self.quorum} votes)"


class DisputesClient:
    def __init__(self, contract: Contract, chain: Chain, from_block: int = 0) -> None:
        self.contract = contract
        self.chain = chain
        self.from_block = from_block
        self._times: dict[int, int] = {}

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # --- reads -----------------------------------------------------------------------
    def count(self) -> int:
        return int(call(self.contract.functions.disputeCount()))

    def params(self) -> dict[str, int]:
        fns = self.contract.functions
        return {
            "evidence_period": int(call(fns.evidencePeriod())),
            "ruling_period": int(call(fns.rulingPeriod())),
            "quorum": int(call(fns.quorum())),
        }

    def is_frozen(self, job_id: int, split_id: int) -> bool:
        return bool(call(self.contract.functions.isFrozen(job_id, split_id)))

    def open_dispute_of(self, job_id: int, split_id: int) -> int | None:
        found = int(call(self.contract.functions.openDisputeOf(job_id, split_id)))
        return found or None

    def has_voted(self, dispute_id: int, account: str) -> bool:
        return bool(call(self.contract.functions.hasVoted(dispute_id, checksum(account))))

    def show(self, dispute_id: int) -> Dispute:
        if not 0 < dispute_id <= self.count():
            raise NotFound(f"there is no dispute {dispute_id}")
        [found] = self._assemble([dispute_id], {"disputeId": dispute_id})
        return found

    def list(self, job_id: int | None = None, status: DisputeStatus | None = None) -> list[Dispute]:
        """Every dispute (or those of job `job_id`), oldest first."""
        filters = {"jobId": job_id} if job_id is not None else {}
        opened = self._logs("DisputeOpened", filters)
        ids = sorted(int(e["args"]["disputeId"]) for e in opened)
        found = self._assemble(ids, filters) if ids else []
        return [d for d in found if status is None or d.status is status]

    def logs(self, name: str, filters: dict[str, Any] | None = None) -> builtins.list[Any]:
        """Raw logs of one Disputes event since the contract's deployment."""
        return self._logs(name, filters or {})

    # --- writes ----------------------------------------------------------------------
    def open(
        self,
        sender: Sender,
        job_id: int,
        split_id: int,
        reason: str,
        evidence_hash: str | bytes,
    ) -> int:
        """Open a dispute as the order's buyer or the split's factory; returns its id."""
        fn = self.contract.functions.openDispute(
            job_id, split_id, _text(reason, "reason", required=True), _evidence_hash(evidence_hash)
        )
        receipt = sender.transact(fn)
        events = self.contract.events.DisputeOpened().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["disputeId"])

    def add_evidence(
        self, sender: Sender, dispute_id: int, evidence_hash: str | bytes, uri: str = ""
    ) -> TxReceipt:
        fn = self.contract.functions.submitEvidence(
            dispute_id, _evidence_hash(evidence_hash), _text(uri, "evidence URI", required=False)
        )
        return sender.transact(fn)

    def vote(
        self, sender: Sender, dispute_id: int, payout_ppm: int | str, fault: str | int | Fault
    ) -> TxReceipt:
        """Vote as an auditor: the share of the split to pay its factory and who is at fault."""
        fn = self.contract.functions.vote(
            dispute_id, parse_payout(payout_ppm), int(Fault.parse(fault))
        )
        return sender.transact(fn)

    def lapse(self, sender: Sender, dispute_id: int) -> TxReceipt:
        return sender.transact(self.contract.functions.lapse(dispute_id))

    # --- internals -------------------------------------------------------------------
    def _logs(self, name: str, filters: dict[str, Any]) -> builtins.list[Any]:
        event = getattr(self.contract.events, name)()
        return list(event.get_logs(from_block=self.from_block, argument_filters=filters))

    def _time(self, block: int) -> int:
        if block not in self._times:
            self._times[block] = int(self.chain.w3.eth.get_block(block)["timestamp"])
        return self._times[block]

    def _assemble(self, ids: builtins.list[int], filters: dict[str, Any]) -> builtins.list[Dispute]:
        by_name = {name: self._logs(name, filters) for name in EVENTS}
        grouped: dict[str, dict[int, builtins.list[Any]]] = {}
        for name, logs in by_name.items():
            groups: dict[int, builtins.list[Any]] = defaultdict(list)
            for log in logs:
                groups[int(log["args"]["disputeId"])].append(log)
            grouped[name] = groups
        quorum = int(call(self.contract.functions.quorum()))
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        return [self._one(i, grouped, quorum, now) for i in ids]

    def _one(
        self,
        dispute_id: int,
        grouped: dict[str, dict[int, builtins.list[Any]]],
        quorum: int,
        now: int,
    ) -> Dispute:
        raw = call(self.contract.functions.dispute(dispute_id))
        (job_id, split_id, status, fault, heard, votes, payout_ppm, opened_at) = raw[:8]
        (evidence_deadline, ruling_deadline, claimant, respondent, ev_hash, payout, refund) = raw[
            8:
        ]
        status = DisputeStatus(status)
        ruled = status is DisputeStatus.RULED
        opened = grouped["DisputeOpened"].get(dispute_id, [])
        closed = grouped["DisputeRuled"].get(dispute_id, []) + grouped["DisputeLapsed"].get(
            dispute_id, []
        )
        evidence = [
            Evidence(
                party=str(e["args"]["party"]),
                evidence_hash="0x" + bytes(e["args"]["evidenceHash"]).hex(),
                uri=str(e["args"]["uri"]),
                block=int(e["blockNumber"]),
                time=self._time(int(e["blockNumber"])),
                tx=e["transactionHash"].to_0x_hex(),
            )
            for e in grouped["EvidenceSubmitted"].get(dispute_id, [])
        ]
        votes_cast = [
            Vote(
                auditor=str(e["args"]["auditor"]),
                payout_ppm=int(e["args"]["payoutPpm"]),
                fault=Fault(int(e["args"]["fault"])),
                block=int(e["blockNumber"]),
                time=self._time(int(e["blockNumber"])),
                tx=e["transactionHash"].to_0x_hex(),
            )
            for e in grouped["VoteCast"].get(dispute_id, [])
        ]
        return Dispute(
            id=dispute_id,
            job_id=int(job_id),
            split_id=int(split_id),
            status=status,
            claimant=str(claimant),
            respondent=str(respondent),
            reason=str(opened[0]["args"]["reason"]) if opened else "",
            evidence_hash="0x" + bytes(ev_hash).hex(),
            opened_at=int(opened_at),
            evidence_deadline=int(evidence_deadline),
            ruling_deadline=int(ruling_deadline),
            respondent_heard=bool(heard),
            votes=int(votes),
            quorum=quorum,
            payout_ppm=int(payout_ppm) if ruled else None,
            payout=int(payout) if ruled else None,
            refund=int(refund) if ruled else None,
            fault=Fault(int(fault)) if ruled else None,
            now=now,
            evidence=evidence,
            vote_list=votes_cast,
            opened_tx=opened[0]["transactionHash"].to_0x_hex() if opened else "",
            closed_tx=closed[0]["transactionHash"].to_0x_hex() if closed else None,
        )


# --- deployment hook (see ledger.eth.deployment.AFTER_DEPLOY) -------------------------------
