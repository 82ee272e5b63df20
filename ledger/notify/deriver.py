"""Notifications derived from the chain's events and the node's journal.

The deriver reads the contracts' logs (`eth_getLogs` over block ranges) up to the block
that is final enough (`confirmations` below the head), and records what it derived and
the block it read up to in one outbox transaction. After a restart it resumes from that
cursor, so a node that was down tells what it missed, and each notification's key makes
a second derivation of the same fact a no-op. If the block at the cursor is no longer on
the chain (a reorganisation deeper than the confirmations, or a reset), it reads the last
`REWIND_BLOCKS` again: facts already told keep their key, new ones are added.

Windows and deadlines about to close are timers: set when the fact that starts them is
read (a delivery, an order), fired when chain time reaches them less the lead time, and
told only if the thing is still open then. Anchoring stalls come from the node's own
anchoring service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3.contract import Contract

from ledger.eth.chain import Chain
from ledger.membership.consortium import ConsortiumClient, MemberStatus
from ledger.membership.roles import Role
from ledger.notify.events import EventType, Notification
from ledger.notify.outbox import Outbox, Timer
from ledger.orders.jobs import JobRecord, JobsClient, JobStatus, SplitRecord, SplitStatus, show32

log = logging.getLogger("cofab.notify")

MAX_RANGE = 2_000  # blocks per eth_getLogs
REWIND_BLOCKS = 128
OPEN_JOB = (JobStatus.CREATED, JobStatus.FUNDED, JobStatus.SPLIT, JobStatus.IN_PRODUCTION)
E = EventType
N = Notification.make


@dataclass
class Sources:
    """What the deriver reads: the chain, the contracts it listens to, the clients it
    asks for state, and the node's anchoring problems."""

    chain: Chain
    contracts: list[Contract]
    jobs: JobsClient
    consortium: ConsortiumClient
    from_block: int
    stalled: Callable[[], dict[tuple[int, int], str]] = dict
    anchored_next: Callable[[int, int], int] = lambda _j, _s: 0
    operators: Callable[[], list[str]] = list


@dataclass
class _Round:
    """One tick's reads, cached: block times, jobs and splits."""

    sources: Sources
    times: dict[int, int] = field(default_factory=dict)
    job_cache: dict[int, JobRecord] = field(default_factory=dict)
    split_cache: dict[int, list[SplitRecord]] = field(default_factory=dict)

    def time(self, block: int) -> int:
        if block not in self.times:
            self.times[block] = int(self.sources.chain.w3.eth.get_block(block)["timestamp"])
        return self.times[block]

    def job(self, job_id: int) -> JobRecord:
        if job_id not in self.job_cache:
            self.job_cache[job_id] = self.sources.jobs.raw_job(job_id)
        return self.job_cache[job_id]

    def splits(self, job_id: int) -> list[SplitRecord]:
        if job_id not in self.split_cache:
            self.split_cache[job_id] = self.sources.jobs.raw_splits(job_id)
        return self.split_cache[job_id]


class Deriver:
    def __init__(
        self, sources: Sources, outbox: Outbox, *, confirmations: int = 0, lead: int = 86_400
    ) -> None:
        self.src = sources
        self.outbox = outbox
        self.confirmations = confirmations
        self.lead = lead
        self._topics: dict[bytes, tuple[Contract, str]] = {}
        for contract in sources.contracts:
            for entry in contract.abi:
                if entry["type"] == "event":
                    event = entry
                    self._topics[bytes(event_abi_to_log_topic(event))] = (contract, event["name"])
        self._told_stalls: dict[tuple[int, int], str] = {}

    # --- one round ---------------------------------------------------------------------
    def tick(self) -> bool:
        """Read one range of blocks (and fire due timers, note stalls); True if the
        chain has more final blocks to read at once."""
        w3 = self.src.chain.w3
        latest = self.src.chain.block_number()
        safe = latest - self.confirmations
        cursor = self.outbox.cursor()
        start = self.src.from_block if cursor is None else cursor[0] + 1
        if cursor is not None and (
            cursor[0] > latest  # the chain lost blocks
            or "0x" + bytes(w3.eth.get_block(cursor[0])["hash"]).hex() != cursor[1]
        ):
            start = max(self.src.from_block, min(cursor[0], latest) - REWIND_BLOCKS)
            log.warning("block %d is no longer on the chain: reading from %d", cursor[0], start)
        rnd = _Round(self.src)
        notes: list[Notification] = []
        timers: list[Timer] = []
        new_cursor: tuple[int, str] | None = None
        end = min(safe, start + MAX_RANGE - 1)
        if start <= end:
            logs = w3.eth.get_logs(
                {
                    "fromBlock": start,
                    "toBlock": end,
                    "address": [c.address for c in self.src.contracts],
                }
            )
            for entry in logs:
                found = self._topics.get(bytes(entry["topics"][0])) if entry["topics"] else None
                if found is None:
                    continue
                contract, name = found
                handler = getattr(self, f"_on_{name}", None)
                if handler is None:
                    continue
                event = getattr(contract.events, name)().process_log(entry)
                made_notes, made_timers = handler(rnd, event["args"], entry)
                notes += made_notes
                timers += made_timers
            new_cursor = (end, "0x" + bytes(w3.eth.get_block(end)["hash"]).hex())
        now = rnd.time(max(safe, 0))
        fired: list[str] = []
        for timer in self.outbox.due_timers(now) + [t for t in timers if t.due_at <= now]:
            notes += self._fire(rnd, timer, now)
            fired.append(timer.key)
        notes += self._stalls(rnd)
        self.outbox.record(notes, timers=timers, fired=fired, cursor=new_cursor)
        return new_cursor is not None and end < safe

    def catch_up(self) -> None:
        while self.tick():
            pass

    # --- orders --------------------------------------------------------------------------
    def _on_JobCreated(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, deadline = int(a["jobId"]), int(a["deadline"])
        timer = Timer(f"deadline:{job_id}", deadline - self.lead, {"job": job_id})
        return [], [timer]

    def _on_SplitAssigned(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, split_id, factory = int(a["jobId"]), int(a["splitId"]), str(a["factory"])
        block = int(entry["blockNumber"])
        common: dict[str, Any] = dict(
            job_id=job_id, split_id=split_id, block=block, time=rnd.time(block)
        )
        data = {
            "factory": factory,
            "step": show32(bytes(a["step"])),
            "quantity": int(a["quantity"]),
            "share_ppm": int(a["sharePpm"]),
            "buyer": rnd.job(job_id).buyer,
        }
        notes = [N(E.SPLIT_ASSIGNED, (job_id, split_id), [factory], data=data, **common)]
        splits = rnd.splits(job_id)
        if split_id < len(splits) and splits[split_id].status == SplitStatus.ASSIGNED:
            typed = f"/jobs/{job_id}/splits/{split_id}/acceptance"
            notes.append(
                N(
                    E.ACCEPTANCE_PENDING,
                    (job_id, split_id),
                    [factory],
                    data={**data, "typed_data": typed},
                    **common,
                )
            )
        return notes, []

    def _on_SplitDelivered(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, split_id, factory = int(a["jobId"]), int(a["splitId"]), str(a["factory"])
        block = int(entry["blockNumber"])
        when = rnd.time(block)
        job = rnd.job(job_id)
        review_ends = when + int(job.review_period)
        common: dict[str, Any] = dict(job_id=job_id, block=block, time=when)
        data = {
            "factory": factory,
            "evidence_hash": "0x" + bytes(a["evidenceHash"]).hex(),
            "review_ends": review_ends,
        }
        notes = [
            N(
                E.DELIVERY_AWAITING,
                (job_id, split_id),
                [job.buyer],
                split_id=split_id,
                data=data,
                **common,
            )
        ]
        for to_split, s in enumerate(rnd.splits(job_id)):
            if s.depends_on >> split_id & 1 and not s.received >> split_id & 1:
                notes.append(
                    N(
                        E.HANDOVER_PENDING,
                        (job_id, split_id, to_split),
                        [factory, s.factory],
                        split_id=split_id,
                        data={
                            "from_split": split_id,
                            "to_split": to_split,
                            "from_factory": factory,
                            "to_factory": s.factory,
                            "typed_data": f"/jobs/{job_id}/handover/typed-data",
                        },
                        **common,
                    )
                )
        payload = {"job": job_id, "split": split_id, "review_ends": review_ends}
        return notes, [Timer(f"review:{job_id}:{split_id}", review_ends - self.lead, payload)]

    # --- disputes ------------------------------------------------------------------------
    def _on_DisputeOpened(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        dispute_id, job_id, split_id = int(a["disputeId"]), int(a["jobId"]), int(a["splitId"])
        parties = [str(a["claimant"]), str(a["respondent"])]
        block = int(entry["blockNumber"])
        common: dict[str, Any] = dict(
            job_id=job_id,
            split_id=split_id,
            dispute_id=dispute_id,
            block=block,
            time=rnd.time(block),
        )
        data = {
            "claimant": parties[0],
            "respondent": parties[1],
            "reason": str(a["reason"]),
            "evidence_deadline": int(a["evidenceDeadline"]),
            "ruling_deadline": int(a["rulingDeadline"]),
        }
        auditors = [
            m.address
            for m in self.src.consortium.members()
            if m.status is MemberStatus.ACTIVE
            and m.roles & int(Role.AUDITOR)
            and m.address not in parties
        ]
        return [
            N(E.DISPUTE_OPENED, (dispute_id,), parties, data=data, **common),
            N(E.VOTE_DUE, (dispute_id,), auditors, data=data, **common),
        ], []

    def _ruled(
        self, rnd: _Round, a: Any, entry: Any, data: dict[str, Any]
    ) -> tuple[list[Notification], list[Timer]]:
        dispute_id, job_id, split_id = int(a["disputeId"]), int(a["jobId"]), int(a["splitId"])
        job = rnd.job(job_id)
        factory = rnd.splits(job_id)[split_id].factory
        block = int(entry["blockNumber"])
        note = N(
            E.DISPUTE_RULED,
            (dispute_id,),
            [job.buyer, factory],
            job_id=job_id,
            split_id=split_id,
            dispute_id=dispute_id,
            block=block,
            time=rnd.time(block),
            data=data,
        )
        return [note], []

    def _on_DisputeRuled(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        data = {
            "outcome": "ruled",
            "payout_ppm": int(a["payoutPpm"]),
            "payout": int(a["payout"]),
            "refund": int(a["refund"]),
            "fault": ("none", "buyer", "factory")[int(a["fault"])],
            "votes": int(a["votes"]),
        }
        return self._ruled(rnd, a, entry, data)

    def _on_DisputeLapsed(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        return self._ruled(rnd, a, entry, {"outcome": "lapsed"})

    # --- money ---------------------------------------------------------------------------
    def _funds(
        self,
        rnd: _Round,
        entry: Any,
        key: tuple[object, ...],
        account: str,
        amount: int,
        job_id: int,
        why: str,
        split_id: int | None = None,
    ) -> list[Notification]:
        if amount <= 0:
            return []
        block = int(entry["blockNumber"])
        data = {"account": account, "amount": amount, "token": rnd.job(job_id).token, "why": why}
        return [
            N(
                E.FUNDS_WITHDRAWABLE,
                key,
                [account],
                job_id=job_id,
                split_id=split_id,
                block=block,
                time=rnd.time(block),
                data=data,
            )
        ]

    def _on_SplitReleased(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, split_id = int(a["jobId"]), int(a["splitId"])
        return self._funds(
            rnd,
            entry,
            ("split", job_id, split_id),
            str(a["factory"]),
            int(a["amount"]),
            job_id,
            "payment for the split",
            split_id,
        ), []

    def _on_FeesReleased(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id = int(a["jobId"])
        notes = self._funds(
            rnd,
            entry,
            ("royalty", job_id),
            str(a["designer"]),
            int(a["royaltyAmount"]),
            job_id,
            "design royalty",
        )
        notes += self._funds(
            rnd,
            entry,
            ("fee", job_id),
            str(a["platform"]),
            int(a["feeAmount"]),
            job_id,
            "platform fee",
        )
        return notes, []

    def _on_Refunded(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id = int(a["jobId"])
        where = (HexBytes(entry["transactionHash"]).to_0x_hex(), int(entry["logIndex"]))
        return self._funds(
            rnd,
            entry,
            ("refund", job_id, *where),
            str(a["buyer"]),
            int(a["amount"]),
            job_id,
            "refund",
        ), []

    def _on_RulingApplied(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, split_id = int(a["jobId"]), int(a["splitId"])
        notes = self._funds(
            rnd,
            entry,
            ("ruling", job_id, split_id),
            str(a["factory"]),
            int(a["payout"]),
            job_id,
            "ruling payout",
            split_id,
        )
        notes += self._funds(
            rnd,
            entry,
            ("ruling-refund", job_id, split_id),
            rnd.job(job_id).buyer,
            int(a["refund"]),
            job_id,
            "ruling refund",
            split_id,
        )
        return notes, []

    # --- steps ---------------------------------------------------------------------------
    def _on_StepsAnchored(
        self, rnd: _Round, a: Any, entry: Any
    ) -> tuple[list[Notification], list[Timer]]:
        job_id, split_id, index = int(a["jobId"]), int(a["splitId"]), int(a["index"])
        splits = rnd.splits(job_id)
        factory = splits[split_id].factory if split_id < len(splits) else str(a["anchoredBy"])
        block = int(entry["blockNumber"])
        data = {
            "index": index,
            "from_seq": int(a["fromSeq"]),
            "to_seq": int(a["toSeq"]),
            "root": "0x" + bytes(a["root"]).hex(),
            "tx": HexBytes(entry["transactionHash"]).to_0x_hex(),
        }
        note = N(
            E.STEP_ANCHORED,
            (job_id, split_id, index),
            [factory, rnd.job(job_id).buyer],
            job_id=job_id,
            split_id=split_id,
            block=block,
            time=rnd.time(block),
            data=data,
        )
        return [note], []

    # --- timers and the journal ----------------------------------------------------------
    def _fire(self, rnd: _Round, timer: Timer, now: int) -> list[Notification]:
        """What a due timer tells: only of a window or deadline still open and not past
        (a node reading old blocks does not announce what closed long ago)."""
        kind = timer.key.partition(":")[0]
        job_id = int(timer.payload["job"])
        job = rnd.job(job_id)
        splits = rnd.splits(job_id)
        if kind == "review":
            split_id = int(timer.payload["split"])
            ends = int(timer.payload["review_ends"])
            if splits[split_id].status != SplitStatus.DELIVERED or now > ends:
                return []  # accepted, finalised, ruled or closed already
            return [
                N(
                    E.REVIEW_CLOSING,
                    (job_id, split_id),
                    [job.buyer, splits[split_id].factory],
                    job_id=job_id,
                    split_id=split_id,
                    time=ends - self.lead,
                    data={"review_ends": ends, "lead": self.lead},
                )
            ]
        if kind == "deadline" and JobStatus(job.status) in OPEN_JOB and now <= job.deadline:
            producing = [
                s.factory
                for s in splits
                if s.status in (SplitStatus.ASSIGNED, SplitStatus.ACCEPTED)
            ]
            return [
                N(
                    E.DEADLINE_CLOSING,
                    (job_id,),
                    [job.buyer, *producing],
                    job_id=job_id,
                    time=int(job.deadline) - self.lead,
                    data={"deadline": int(job.deadline), "lead": self.lead},
                )
            ]
        return []

    def _stalls(self, rnd: _Round) -> list[Notification]:
        """A stalled split is told once per place it stalls at (its next unanchored step)."""
        problems = self.src.stalled()
        for gone in set(self._told_stalls) - set(problems):
            del self._told_stalls[gone]
        notes = []
        for (job_id, split_id), reason in problems.items():
            if self._told_stalls.get((job_id, split_id)) == reason:
                continue
            self._told_stalls[(job_id, split_id)] = reason
            next_seq = self.src.anchored_next(job_id, split_id)
            splits = rnd.splits(job_id)
            factory = [splits[split_id].factory] if split_id < len(splits) else []
            notes.append(
                N(
                    E.ANCHOR_STALLED,
                    (job_id, split_id, next_seq),
                    [*factory, *self.src.operators()],
                    job_id=job_id,
                    split_id=split_id,
                    data={"reason": reason, "next_seq": next_seq},
                )
            )
        return notes
