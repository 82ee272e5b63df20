"""Accept signed production steps: verify everything, store durably, then acknowledge.

A batch is all-or-nothing: the first bad step refuses the whole batch, naming its index
and what is wrong, and nothing is stored. Re-sending stored steps is harmless (they are
reported as duplicates); a different step with a stored step's sequence number is
equivocation: it is refused, and kept as evidence.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.core.errors import Conflict, InvalidInput, LedgerError
from ledger.core.types import Record
from ledger.core.workers import forkserver
from ledger.steps import epcis
from ledger.steps.authority import Authority
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain, Step
from ledger.steps.signatures import is_canonical, recover

log = logging.getLogger("cofab.ingest")

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


def _not_in_future(step: Step, received: int) -> None:
    if step.time > received + MAX_CLOCK_SKEW_SECONDS:
        raise InvalidInput(f"step time {step.time} is in the future", field="time")


_Prechecked = tuple[Step, "NewStep | LedgerError"]
"""A step whose record and payload hold, with its verified form or why its signature
does not (told only after the order's date is checked, as `Ingestor.verify` orders it)."""


def precheck(sub: Submission, domain: Domain, received: int) -> _Prechecked:
    """The checks that need no chain and no journal (pure CPU, so worker processes may run
    them): record, signature form, payload, its hash and match, time not in the future;
    then the digest and the recovered signer."""
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
    _not_in_future(step, received)
    digest = step.digest(domain)
    signer = recover(digest, signature)
    if signer is None:
        bad = InvalidInput("bad signature: it does not recover to any key", field="signature")
        return step, bad
    return step, NewStep(step, digest, signer, signature, payload)


@dataclass(frozen=True)
class Checked:
    """A batch after `precheck`: its steps in order up to the first that failed, and why
    that one failed; or, with `unparsed`, a body that is no valid batch at all."""

    count: int
    items: list[_Prechecked]
    failure: LedgerError | None = None
    unparsed: bool = False


def check_all(submissions: Sequence[Submission], domain: Domain, received: int) -> Checked:
    """`precheck` of each step in order, stopping at the first that fails (nothing for a
    batch of no steps or too many: refused whole)."""
    if not 0 < len(submissions) <= MAX_BATCH:
        return Checked(len(submissions), [])
    items: list[_Prechecked] = []
    for sub in submissions:
        try:
            items.append(precheck(sub, domain, received))
        except LedgerError as exc:
            return Checked(len(submissions), items, exc)
    return Checked(len(submissions), items)


class StepIn(BaseModel):
    """One pre-signed step as a client sends it."""

    record: dict[str, Any] = Field(description="the ProductionStep message, as signed")
    signature: str = Field(description="65-byte EIP-712 signature, 0x-hex")
    payload: dict[str, Any] = Field(
        description="the EPCIS 2.0 event the record's payloadHash names"
    )

    def submission(self) -> Submission:
        return Submission(self.record, self.signature, self.payload)


class BatchIn(BaseModel):
    """The body of a batch of pre-signed steps."""

    steps: list[StepIn] = Field(min_length=1, max_length=MAX_BATCH)


def parse_batch(raw: bytes) -> list[Submission]:
    """The steps of a batch body; pydantic parses the raw JSON in one pass (about 3x
    faster per step than json.loads + validate). Raises pydantic's ValidationError."""
    return [s.submission() for s in BatchIn.model_validate_json(raw).steps]


def check_body(raw: bytes, domain: Domain, received: int) -> Checked:
    """`check_all` of a batch body: what a worker process runs."""
    try:
        submissions = parse_batch(raw)
    except ValidationError:
        return Checked(0, [], unparsed=True)
    return check_all(submissions, domain, received)


def _exit_with_the_node(node: int) -> None:
    """In a worker: exit once the node process `node` is gone, even after a kill -9 (the
    fork server and the workers keep each other alive otherwise), so no worker outlives
    its node."""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(node, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-the-node", daemon=True).start()


class VerifyPool:
    """Worker processes that parse batch bodies and run `precheck` on them, so signature
    recovery and payload canonicalisation use every core instead of the API process's
    one GIL; the API process keeps the authority checks and the journal's commit, so an
    acknowledgement still means durable.

    The processes start on the first batch (forked from a server that has imported this
    module, not from the threaded API process); until they answer, and for a batch whose
    worker died, batches are checked in the API process, and a dead worker's pool is
    replaced: no batch fails because a worker went away, and none is stored unchecked."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a verify pool has at least one worker")
        self.workers = workers
        self.batches = 0  # checked by a worker
        self.restarts = 0  # pools replaced after a worker died
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._failed: ProcessPoolExecutor | None = None  # a worker died while starting
        self._closed = False

    def check(self, raw: bytes, domain: Domain, received: int) -> Checked | None:
        """The batch checked by a worker; None when no worker can take it now (the caller
        checks it itself)."""
        executor = self._running()
        if executor is None:
            return None
        if self._failed is executor:
            self._replace(executor)
            return None
        if not self._ready.is_set():
            return None
        try:
            checked = executor.submit(check_body, raw, domain, received).result()
        except BrokenProcessPool:
            log.warning("an ingest worker process died; starting new ones")
            self._replace(executor)
            return None
        with self._lock:
            self.batches += 1
        return checked

    def pids(self) -> list[int]:
        """The worker processes' ids (empty until they have started)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.pid is not None]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Start the workers if they are not yet, and wait until they answer."""
        self._running()
        return self._ready.wait(timeout)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
            self._ready.clear()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _running(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._executor is None and not self._closed:
                self._executor = self._start()
            return self._executor

    def _start(self) -> ProcessPoolExecutor:
        context = forkserver(__name__)
        executor = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_exit_with_the_node,
            initargs=(os.getpid(),),
        )
        # as many tasks as workers at once: the pool starts every worker, not just one
        warm = [executor.submit(os.getpid) for _ in range(self.workers)]

        def started(future: Future[int]) -> None:
            if future.cancelled():
                return
            if future.exception() is not None:
                self._failed = executor
            elif all(f.done() and not f.cancelled() and not f.exception() for f in warm):
                self._ready.set()

        for future in warm:
            future.add_done_callback(started)
        return executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is not broken or self._closed:
                return  # another batch replaced it already, or the node is closing
            self._ready.clear()
            self._executor = self._start()
            self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)


class Ingestor:
    def __init__(
        self,
        journal: Journal,
        domain: Domain,
        authority: Authority,
        clock: Callable[[], float] = time.time,
        pool: VerifyPool | None = None,
    ) -> None:
        self.journal = journal
        self.domain = domain
        self.authority = authority
        self.clock = clock
        self.pool = pool
        self._turn = threading.Condition()
        self._queue: list[_Pending] = []
        self._committing = False

    def verify(self, sub: Submission) -> NewStep:
        """Everything that does not depend on the journal: record, payload, signature, signer."""
        received = int(self.clock())
        return self._authorise(precheck(sub, self.domain, received), received)

    def admit(self, step: Step, signer: str, received: int | None = None) -> None:
        """The checks of a step whose signer is known: its time, and the signer's authority
        over its split. Steps this node signs itself skip only the signature recovery."""
        if received is None:
            received = int(self.clock())
        _not_in_future(step, received)
        self._after_placed(step)
        self._signer_may_sign(step, signer, received)

    def _after_placed(self, step: Step) -> None:
        created = self.authority.job_created_at(step.job_id)
        if step.time < created:
            raise InvalidInput(
                f"step time {step.time} is before job {step.job_id} was placed ({created})",
                field="time",
            )

    def _signer_may_sign(self, step: Step, signer: str, received: int) -> None:
        # authority is judged when the step arrives, not at the time it claims: a step
        # back-dated before its key's expiry is still refused once the key has expired
        at_time = max(received, step.time)
        self.authority.check(step.job_id, step.split_id, step.member, signer, at_time)

    def _authorise(self, checked: _Prechecked, received: int) -> NewStep:
        """The checks that ask the chain (through the authority's caches), in the order
        `verify` states them: the order's date, then the signature, then the signer."""
        step, outcome = checked
        self._after_placed(step)
        if isinstance(outcome, LedgerError):
            raise outcome
        self._signer_may_sign(step, outcome.signer, received)
        return outcome

    def ingest_body(self, raw: bytes) -> IngestResult:
        """Ingest a batch as its JSON body (`BatchIn`): parsed and checked by the worker
        processes when the node runs them, else here. A body that is no valid batch
        raises pydantic's ValidationError, as `BatchIn.model_validate_json` does."""
        received = int(self.clock())
        pool = self.pool
        checked = pool.check(raw, self.domain, received) if pool is not None else None
        if checked is None:
            checked = check_body(raw, self.domain, received)
        if checked.unparsed:
            parse_batch(raw)  # raises the ValidationError, as the worker met it
        return self._ingest_checked(checked, received)

    def ingest(self, submissions: Sequence[Submission]) -> IngestResult:
        received = int(self.clock())
        return self._ingest_checked(check_all(submissions, self.domain, received), received)

    def _ingest_checked(self, checked: Checked, received: int) -> IngestResult:
        if checked.count == 0:
            raise InvalidInput("no steps given", field="steps")
        if checked.count > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} steps per batch", field="steps")
        verified: list[NewStep] = []
        for i, item in enumerate(checked.items):
            try:
                verified.append(self._authorise(item, received))
            except LedgerError as exc:
                raise _at(exc, i) from None
        if checked.failure is not None:
            raise _at(checked.failure, len(checked.items)) from None
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
