"""A factory's track record, derived from the chain alone: the events of the JobBoard, the
Settlement and the Disputes contract, and the times of the blocks that hold them.

Nothing is stored or self-declared: anyone with a chain endpoint recomputes the same
figures. Definitions (see docs/disputes.md):

- assigned / accepted / delivered: splits given to the factory, accepted by it, delivered.
- on time: delivered in a block whose time is at or before the order's deadline.
- late: delivered after the deadline, or accepted and still undelivered when the deadline
  passed (the JobBoard refuses a delivery after the deadline, so a late split shows up as
  a missed one); a split closed by a ruling before the deadline, or in a cancelled order,
  is neither.
- disputes against it: disputes on its splits opened by the buyer; opened by it: those it
  opened; lost: rulings on its splits that hold it at fault or pay it less than the whole
  split (a payout share below 1,000,000 ppm).
- paid: what the Settlement credited it, per token: released splits plus ruling payouts;
  withheld: what rulings refunded to buyers out of its splits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, computed_field
from web3 import Web3
from web3.contract import Contract

from ledger.core.abi import checksum
from ledger.core.types import Record
from ledger.disputes.client import Fault
from ledger.orders.jobs import JobStatus
from ledger.orders.settlement import SCALE


def _sorted(amounts: dict[str, int]) -> dict[str, int]:
    """Per-token amounts in address order, so the same chain gives the same JSON."""
    return dict(sorted(amounts.items()))


class SplitCounts(Record):
    assigned: int
    accepted: int
    delivered: int


class Deadlines(Record):
    on_time: int = Field(description="delivered at or before the order's deadline")
    late: int = Field(description="delivered_late + missed_deadline")
    delivered_late: int
    missed_deadline: int = Field(description="accepted, not delivered when the deadline passed")
    on_time_rate: float | None


class DisputeCounts(Record):
    against: int = Field(description="opened by the buyer on its splits")
    opened: int = Field(description="opened by the factory")
    ruled: int
    lost: int = Field(description="ruled with the factory at fault or paid below 100%")
    lapsed: int
    open: int


class Reputation(Record):
    """The figures of one factory as of a block; the JSON groups them by subject."""

    factory: str
    block: int = Field(serialization_alias="as_of_block")
    time: int = Field(serialization_alias="as_of_time")
    assigned: int = Field(exclude=True)
    accepted: int = Field(exclude=True)
    delivered: int = Field(exclude=True)
    on_time: int = Field(exclude=True)
    delivered_late: int = Field(exclude=True)
    missed_deadline: int = Field(exclude=True)
    disputes_against: int = Field(exclude=True)
    disputes_opened: int = Field(exclude=True)
    disputes_ruled: int = Field(exclude=True)
    disputes_lost: int = Field(exclude=True)
    disputes_lapsed: int = Field(exclude=True)
    disputes_open: int = Field(exclude=True)
    paid: Annotated[
        dict[str, int],
        PlainSerializer(_sorted, return_type=dict[str, int]),
        Field(default_factory=dict, description="token address → amount credited"),
    ]
    withheld: Annotated[
        dict[str, int],
        PlainSerializer(_sorted, return_type=dict[str, int]),
        Field(default_factory=dict, description="token address → amount rulings refunded"),
    ]

    @property
    def late(self) -> int:
        return self.delivered_late + self.missed_deadline

    @property
    def on_time_rate(self) -> float | None:
        """On-time share of the splits whose deadline question is settled (None if none)."""
        judged = self.on_time + self.late
        return round(self.on_time / judged, 4) if judged else None

    @computed_field
    @property
    def splits(self) -> SplitCounts:
        return SplitCounts(assigned=self.assigned, accepted=self.accepted, delivered=self.delivered)

    @computed_field
    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(
            on_time=self.on_time,
            late=self.late,
            delivered_late=self.delivered_late,
            missed_deadline=self.missed_deadline,
            on_time_rate=self.on_time_rate,
        )

    @computed_field
    @property
    def disputes(self) -> DisputeCounts:
        return DisputeCounts(
            against=self.disputes_against,
            opened=self.disputes_opened,
            ruled=self.disputes_ruled,
            lost=self.disputes_lost,
            lapsed=self.disputes_lapsed,
            open=self.disputes_open,
        )


class _Chain:
    """Log queries from a starting block, with block times cached."""

    def __init__(self, w3: Web3, from_block: int) -> None:
        self.w3 = w3
        self.from_block = from_block
        self._times: dict[int, int] = {}

    def logs(self, contract: Contract, name: str, **filters: Any) -> list[Any]:
        event = getattr(contract.events, name)()
        return list(event.get_logs(from_block=self.from_block, argument_filters=filters))

    def time(self, block: int) -> int:
        if block not in self._times:
            self._times[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return self._times[block]


def _key(log: Any) -> tuple[int, int]:
    return int(log["args"]["jobId"]), int(log["args"]["splitId"])


def factory_reputation(
    job_board: Contract,
    settlement: Contract,
    disputes: Contract | None,
    factory: str,
    from_block: int = 0,
) -> Reputation:
    """The figures of `factory` as of the latest block."""
    who = checksum(factory, "factory")
    w3 = job_board.w3
    c = _Chain(w3, from_block)
    latest = w3.eth.get_block("latest")
    now, head = int(latest["timestamp"]), int(latest["number"])

    assigned = {_key(e) for e in c.logs(job_board, "SplitAssigned", factory=who)}
    accepted = {_key(e) for e in c.logs(job_board, "SplitAccepted", factory=who)}
    delivered = {
        _key(e): c.time(int(e["blockNumber"]))
        for e in c.logs(job_board, "SplitDelivered", factory=who)
    }
    jobs = sorted({job for job, _ in assigned})
    deadline: dict[int, int] = {}
    token: dict[int, str] = {}
    cancelled: set[int] = set()
    ruled_at: dict[tuple[int, int], int] = {}
    if jobs:
        for e in c.logs(job_board, "JobCreated", jobId=jobs):
            deadline[int(e["args"]["jobId"])] = int(e["args"]["deadline"])
            token[int(e["args"]["jobId"])] = str(e["args"]["token"])
        for e in c.logs(job_board, "JobStatusChanged", jobId=jobs):
            if int(e["args"]["status"]) == JobStatus.CANCELLED:
                cancelled.add(int(e["args"]["jobId"]))
        for e in c.logs(job_board, "SplitRuled", jobId=jobs):
            if _key(e) in assigned:
                ruled_at[_key(e)] = c.time(int(e["blockNumber"]))

    on_time = sum(1 for k, t in delivered.items() if t <= deadline.get(k[0], t))
    delivered_late = len(delivered) - on_time
    missed = 0
    for key in accepted - set(delivered):
        job = key[0]
        due = deadline.get(job)
        if due is None or job in cancelled:
            continue
        closed = ruled_at.get(key)
        if closed is not None and closed <= due:
            continue
        if now > due:
            missed += 1

    paid: dict[str, int] = defaultdict(int)
    withheld: dict[str, int] = defaultdict(int)
    for e in c.logs(settlement, "SplitReleased", factory=who):
        paid[token.get(int(e["args"]["jobId"]), "?")] += int(e["args"]["amount"])
    for e in c.logs(settlement, "RulingApplied", factory=who):
        t = token.get(int(e["args"]["jobId"]), "?")
        paid[t] += int(e["args"]["payout"])
        withheld[t] += int(e["args"]["refund"])

    figures = _dispute_figures(c, disputes, who, assigned, jobs)
    return Reputation(
        factory=who,
        block=head,
        time=now,
        assigned=len(assigned),
        accepted=len(accepted),
        delivered=len(delivered),
        on_time=on_time,
        delivered_late=delivered_late,
        missed_deadline=missed,
        paid={k: v for k, v in paid.items() if v},
        withheld={k: v for k, v in withheld.items() if v},
        **figures,
    )


def _dispute_figures(
    c: _Chain,
    disputes: Contract | None,
    who: str,
    splits: set[tuple[int, int]],
    jobs: Iterable[int],
) -> dict[str, int]:
    figures = dict.fromkeys(
        (
            "disputes_against",
            "disputes_opened",
            "disputes_ruled",
            "disputes_lost",
            "disputes_lapsed",
            "disputes_open",
        ),
        0,
    )
    jobs = list(jobs)
    if disputes is None or not jobs:
        return figures
    mine = {
        int(e["args"]["disputeId"]): e
        for e in c.logs(disputes, "DisputeOpened", jobId=jobs)
        if _key(e) in splits
    }
    if not mine:
        return figures
    closed: set[int] = set()
    for e in c.logs(disputes, "DisputeRuled", jobId=jobs):
        dispute_id = int(e["args"]["disputeId"])
        if dispute_id not in mine:
            continue
        closed.add(dispute_id)
        figures["disputes_ruled"] += 1
        fault, share = int(e["args"]["fault"]), int(e["args"]["payoutPpm"])
        if fault == Fault.FACTORY or share < SCALE:
            figures["disputes_lost"] += 1
    for e in c.logs(disputes, "DisputeLapsed", jobId=jobs):
        dispute_id = int(e["args"]["disputeId"])
        if dispute_id in mine:
            closed.add(dispute_id)
            figures["disputes_lapsed"] += 1
    for opened in mine.values():
        if opened["args"]["claimant"] == who:
            figures["disputes_opened"] += 1
        else:
            figures["disputes_against"] += 1
    figures["disputes_open"] = len(set(mine) - closed)
    return figures


def of_node(node: Any, factory: str) -> Reputation:
    """The reputation of `factory` on a node's deployment (from the JobBoard's block on)."""
    dep = node.deployment
    start = dep.contracts["JobBoard"].block_number if "JobBoard" in dep.contracts else 0
    disputes = node.disputes.contract if "Disputes" in dep.contracts else None
    return factory_reputation(
        node.jobs.contract, node.settlement.contract, disputes, factory, from_block=start
    )
