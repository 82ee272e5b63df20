"""Check, name and canonicalise captured events: a large capture in worker processes.

What a capture does to each event before it is signed — GS1 schema validation, the CBV
event hash (its eventID) and RFC 8785 canonicalisation — depends on the event alone, and is
the largest part of the capture's CPU time. A large document is cut into chunks that worker
processes prepare while the node maps, chains and signs the chunks already prepared (a
pipeline over the cores). Chaining and journaling stay in the node, in the events' order,
so the per-split order and the durable-before-acknowledged rule are untouched. Workers hold
no key and no database; they come from a fork server started without the node's data,
when the first large capture arrives.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ledger.core.errors import InvalidInput
from ledger.core.settings import usable_cores
from ledger.core.workers import forkserver
from ledger.epcis.eventhash import event_id
from ledger.steps import epcis

log = logging.getLogger("cofab.epcis")
PARALLEL_FROM = 256
"""Captures of at least this many events are prepared by the worker processes."""
CHUNK = 125
"""Events a worker prepares at a time: small enough that the node starts on the first
chunk soon, large enough that handing it over costs little."""
Prepared = tuple[str, bytes] | None
"""An event's eventID and canonical bytes; None if the event is refused."""


def prepare(payloads: Sequence[Any], context: Any) -> list[Prepared]:
    """Validate each payload, give it its eventID if it has none (the CBV hash of the rest,
    `context` naming its prefixes) and canonicalise it. A refused event is None: the caller
    checks it again, where the refusal can name it."""
    out: list[Prepared] = []
    for payload in payloads:
        try:
            out.append(prepare_one(payload, context))
        except InvalidInput:
            out.append(None)
    return out


def prepare_one(payload: Any, context: Any) -> tuple[str, bytes]:
    """One event's eventID and canonical bytes; InvalidInput naming what is wrong."""
    epcis.parse(payload)
    if "eventID" not in payload:  # the CBV hash leaves eventID out: it names the rest
        payload["eventID"] = event_id(payload, context)
    return str(payload["eventID"]), epcis.canonical(payload)


class Chunks:
    """`prepare(payloads, context)` in order, chunk by chunk, iterated as (index of the
    chunk's first payload, its results). A large list is handed to the worker processes
    when this is made, every chunk at once, so they prepare while the caller does
    something else first, and while it works on one chunk they prepare the next.
    Payloads prepared by a worker get their eventID set here. Leaving the `with` block
    cancels what is not needed any more (a refused event)."""

    def __init__(self, payloads: list[Any], context: Any) -> None:
        self.payloads = payloads
        self.context = context
        workers = _pool() if len(payloads) >= PARALLEL_FROM else None
        self._chunks = [(i, payloads[i : i + CHUNK]) for i in range(0, len(payloads), CHUNK)]
        self._pending: list[Future[list[Prepared]]] = []
        if workers is not None:
            self._pending = [workers.submit(prepare, c, context) for _, c in self._chunks]

    def __enter__(self) -> Chunks:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._pending:
            future.cancel()

    def __iter__(self) -> Iterator[tuple[int, list[Prepared]]]:
        if not self._pending:
            yield 0, prepare(self.payloads, self.context)
            return
        for (start, chunk), future in zip(self._chunks, self._pending, strict=True):
            try:
                done = future.result()
            except BrokenProcessPool:  # a worker died: prepare here, from now on
                log.exception("a worker preparing captured events died; preparing them here")
                _close(broken=True)
                done = prepare(chunk, self.context)
            for payload, item in zip(chunk, done, strict=True):
                if item is not None and isinstance(payload, dict) and "eventID" not in payload:
                    payload["eventID"] = item[0]
            yield start, done


_POOL: list[ProcessPoolExecutor] = []
_LOCK = threading.Lock()
_BROKEN = False  # a worker died: this process prepares alone


def _pool() -> ProcessPoolExecutor | None:
    """The worker processes (one per core beyond the node's), started once; None on one
    core."""
    if usable_cores(8) < 2 or _BROKEN:
        return None
    with _LOCK:
        if not _POOL:
            ctx = forkserver("ledger.epcis.prepare")
            _POOL.append(ProcessPoolExecutor(max_workers=usable_cores(8) - 1, mp_context=ctx))
            atexit.register(_close)
        return _POOL[0]


def _close(broken: bool = False) -> None:
    global _BROKEN
    with _LOCK:
        _BROKEN = _BROKEN or broken
        while _POOL:
            _POOL.pop().shutdown(wait=False, cancel_futures=True)
