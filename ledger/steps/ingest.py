"""Accept signed production steps: verify everything, store durably, then acknowledge.

A batch is all-or-nothing: the first bad step refuses the whole batch, naming its index
and what is wrong, and nothing is stored. Re-sending stored steps is harmless (they are
reported as duplicates); a different step with a stored step's sequence number is
equivocation: it is refused, and kept as evidence.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field

from ledger.core.errors import Conflict, InvalidInput, LedgerError
from ledger.core.types import Record
from ledger.steps import epcis
from ledger.steps.authority import Authority
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain, Step
from ledger.steps.signatures import is_canonical, recover

MAX_CLOCK_SKEW_SECONDS = 300
MAX_BATCH = 5000


@dataclass(frozen=True)
class Submission:
    """A step as a device or member sends it: the signed record, signature and payload."""

    record: dict[str, Any]
    signature: str
    payload: dict[str, Any] | str | bytes
    checked: bytes | None = None
    """The payload's RFC 8785 bytes when this process checked (`epcis.parse`) and
    canonicalised it itself (`StepWriter.signed`), so ingest does not again; never set
    from what a client sends."""


class IngestResult(Record):
    """What a batch did: counted while the batch is stored, then returned."""

    model_config = ConfigDict(frozen=False)

    accepted: int = 0
    duplicates: int = 0
    step_hashes: list[str] = Field(default_factory=list)


def _signature(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except (AttributeError, ValueError):
        raise InvalidInput("signature is not hex", field="signature") from None
    if len(raw) != 65:
        raise InvalidInput(f"signature must be 65 bytes, got {len(raw)}", field="signature")
    if not is_canonical(raw):
        raise InvalidInput("signature is not canonical (low s, v of 27 or 28)", field="signature")
    return raw


class Ingestor:
    def __init__(
        self,
        journal: Journal,
        domain: Domain,
        authority: Authority,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.domain = domain
        self.authority = authority
        self.clock = clock
        self._turn = threading.Condition()
        self._queue: list[_Pending] = []
        self._committing = False

    def verify(self, sub: Submission) -> NewStep:
        """Everything that does not depend on the journal: record, payload, signature, signer."""
        step = Step.from_message(sub.record)
        signature = _signature(sub.signature)
        if sub.checked is not None and isinstance(sub.payload, dict):
            document, payload = sub.payload, sub.checked
        else:
            document = epcis.parse(sub.payload)
            payload = epcis.canonical(document)
        if epcis.payload_hash(payload) != step.payload_hash:
            raise InvalidInput(
                "payload hash mismatch: the payload is not the one the step signed",
                field="payloadHash",
            )
        epcis.check_matches(document, step.biz_step, step.time)
        received = self._dated(step)
        digest = step.digest(self.domain)
        signer = recover(digest, signature)
        if signer is None:
            raise InvalidInput("bad signature: it does not recover to any key", field="signature")
        self.admit(step, signer, received)
        return NewStep(step, digest, signer, signature, payload)

    def admit(self, step: Step, signer: str, received: int | None = None) -> None:
        """The checks of a step whose signer is known: its time, and the signer's authority
        over its split. Steps this node signs itself skip only the signature recovery."""
        if received is None:
            received = self._dated(step)
        # authority is judged when the step arrives, not at the time it claims: a step
        # back-dated before its key's expiry is still refused once the key has expired
        at_time = max(received, step.time)
        self.authority.check(step.job_id, step.split_id, step.member, signer, at_time)

    def _dated(self, step: Step) -> int:
        """When the step is received; refused if it claims a time ahead of that or before
        its job was placed."""
        received = int(self.clock())
        if step.time > received + MAX_CLOCK_SKEW_SECONDS:
            raise InvalidInput(f"step time {step.time} is in the future", field="time")
        created = self.authority.job_created_at(step.job_id)
        if step.time < created:
            raise InvalidInput(
                f"step time {step.time} is before job {step.job_id} was placed ({created})",
                field="time",
            )
        return received

    def ingest(self, submissions: Sequence[Submission]) -> IngestResult:
        if not submissions:
            raise InvalidInput("no steps given", field="steps")
        if len(submissions) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} steps per batch", field="steps")
        verified: list[NewStep] = []
        for i, sub in enumerate(submissions):
            try:
                verified.append(self.verify(sub))
            except LedgerError as exc:
                raise _at(exc, i) from None
        return self.commit(verified)

    def commit(self, verified: list[NewStep]) -> IngestResult:
        """Store verified steps (`verify`, or `admit` for steps this node signed) as one
        batch: durable when this returns."""
        mine = _Pending(verified)
        self._commit_with_others(mine)
        if isinstance(mine.outcome, IngestResult):
            return mine.outcome
        if isinstance(mine.outcome, _Fork):
            i, new, existing = mine.outcome.args
            s = new.step
            self.journal.record_equivocation(s, existing, new.step_hash, new.signer, new.signature)
            raise Conflict(
                f"step {i}: equivocation: split {s.split_id} of job {s.job_id} already has "
                f"a different step {s.seq} (0x{existing.hex()}); kept as evidence",
                index=i,
                existing_hash="0x" + existing.hex(),
                conflicting_hash="0x" + new.step_hash.hex(),
            ) from None
        failure = mine.outcome
        assert failure is not None  # set once the group's transaction ended
        if isinstance(failure, LedgerError):
            index = failure.details.get("index")
            raise (_at(failure, index) if isinstance(index, int) else failure) from None
        raise failure

    def _commit_with_others(self, mine: _Pending) -> None:
        """Group commit: the batches that arrive while a transaction commits wait, then
        one of them stores them all in the next transaction, each in its own savepoint
        (a refused batch is rolled back alone). Every batch learns its outcome only once
        that transaction has committed, so an acknowledgement still means durable, and
        many concurrent batches share one fsync instead of queueing for one each."""
        with self._turn:
            self._queue.append(mine)
            while mine.outcome is None and self._committing:
                self._turn.wait()
            if mine.outcome is not None:
                return
            self._committing = True
            group, self._queue = self._queue, []
        try:
            self._commit(group)
        finally:
            with self._turn:
                self._committing = False
                self._turn.notify_all()

    def _commit(self, group: list[_Pending]) -> None:
        outcomes: list[IngestResult | BaseException] = []
        try:
            with self.journal.transaction() as db:
                for pending in group:
                    db.execute("SAVEPOINT batch")
                    try:
                        outcomes.append(self._store(db, pending.verified))
                        db.execute("RELEASE batch")
                    except (LedgerError, _Fork) as exc:
                        db.execute("ROLLBACK TO batch")
                        db.execute("RELEASE batch")
                        outcomes.append(exc)
        except BaseException as exc:  # noqa: BLE001 - the commit failed: no batch is stored
            outcomes = [exc] * len(group)
        for pending, outcome in zip(group, outcomes, strict=True):
            pending.outcome = outcome

    @staticmethod
    def _store(db: sqlite3.Connection, verified: list[NewStep]) -> IngestResult:
        """Sequence checks and inserts of one batch inside the group's write transaction:
        the journal, not a cache, is the truth, so several processes may ingest into the
        same journal safely."""
        result = IngestResult()
        fresh: list[NewStep] = []
        heads: dict[tuple[int, int], tuple[int, bytes]] = {}
        for i, new in enumerate(verified):
            s = new.step
            key = (s.job_id, s.split_id)
            next_seq, head = heads.get(key) or Journal.read_head(db, *key)
            if s.seq < next_seq:
                existing = Journal.read_hash(db, s.job_id, s.split_id, s.seq) or next(
                    n.step_hash
                    for n in fresh
                    if (n.step.job_id, n.step.split_id, n.step.seq) == (*key, s.seq)
                )
                if existing == new.step_hash:
                    result.duplicates += 1
                    result.step_hashes.append("0x" + new.step_hash.hex())
                    continue
                raise _Fork(i, new, existing)
            if s.seq > next_seq:
                raise InvalidInput(
                    f"step {i}: sequence gap: split {s.split_id} of job {s.job_id} "
                    f"expects step {next_seq} next, got {s.seq}",
                    field="seq",
                    index=i,
                )
            if s.prev_hash != head:
                raise InvalidInput(
                    f"step {i}: previous hash mismatch: step {s.seq} names "
                    f"0x{s.prev_hash.hex()}, the chain's head is 0x{head.hex()}",
                    field="prevHash",
                    index=i,
                )
            fresh.append(new)
            heads[key] = (s.seq + 1, new.step_hash)
            result.step_hashes.append("0x" + new.step_hash.hex())
        if fresh:
            Journal.insert_steps(db, fresh)
            for (job, split), (next_seq, head) in heads.items():
                Journal.set_head(db, job, split, next_seq, head)
        result.accepted = len(fresh)
        return result


@dataclass
class _Pending:
    """A verified batch waiting for the transaction that stores it, then its outcome."""

    verified: list[NewStep]
    outcome: IngestResult | BaseException | None = None


def _at(exc: LedgerError, index: int) -> LedgerError:
    """`exc` as the refusal of the batch's step `index`: named in the message, in `index`
    and in each of its `errors`, so a client can find the step without parsing text."""
    if not exc.message.startswith(f"step {index}: "):
        exc.message = f"step {index}: {exc.message}"
    exc.args = (exc.message,)
    exc.details["index"] = index
    if "errors" in exc.details:
        exc.details["errors"] = [{**e, "index": index} for e in exc.details["errors"]]
    return exc


class _Fork(Exception):
    """Internal: (index, new step, stored hash) of an equivocation; unwinds the batch's
    savepoint before the equivocation is recorded."""
