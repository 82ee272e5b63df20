"""EPCIS 2.0 capture and query over the node's production steps (gateway mode).

A factory's MES or WMS captures standard EPCIS documents; the node assigns each event to a
split (the event's own `cofab:job`/`cofab:split`, else the factory's registered mappings
of readPoint, bizLocation, EPC or EPC class), gives it its CBV 2.0 eventID when it has
none, signs it as the split's next production step with a device key the factory
authorised on chain and the node holds, and ingests the steps through the one ingest path
(`StepService.ingest`): verified, chained, journaled durably, anchored like any step.

Trust: the device key's signature says "this node received this event from the factory's
authenticated system", not "the machine itself measured this": whoever holds the key (the
node's operator) could sign other events for that factory. The factory bounds that by the
key's expiry and can revoke it on chain at any time.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ledger.core.errors import Forbidden, InvalidInput, LedgerError, NotFound
from ledger.epcis import context as ctx
from ledger.epcis.prepare import Chunks, prepare_one
from ledger.epcis.query import EventQuery, iso
from ledger.epcis.store import EpcisStore
from ledger.epcis.subscriptions import Subscriptions
from ledger.epcis.vocabulary import EPC_ROLES, QUANTITY_ROLES
from ledger.eth.tx import Sender
from ledger.notify.service import NotifyService
from ledger.steps import epcis
from ledger.steps.builder import StepWriter
from ledger.steps.ingest import MAX_BATCH
from ledger.steps.journal import NewStep
from ledger.steps.record import Step
from ledger.steps.service import StepService
from ledger.steps.signatures import Signer

log = logging.getLogger("cofab.epcis")
KEY_PREFIX = "cofab_ek_"
_T = TypeVar("_T")
MAPPING_FIELDS = ("readPoint", "bizLocation", "epc", "epcClass")


@dataclass(frozen=True)
class _Event:
    """A captured event ready to sign: where the body has it, its eventID and split."""

    at: str
    event_id: str
    split: tuple[int, int]
    payload: dict[str, Any]
    canonical: bytes


class _Batch:
    """The steps of one capture: each new event chained as the next step of its split as
    it comes, signed a chunk at a time on the signing thread, stored in one transaction.

    The node signs with a key it holds, so it knows the signer: the signatures are not
    recovered again (as steps signed elsewhere are); each step's time and the key's
    authority over its split are checked as for any step. Such a refusal is raised once
    every event has been mapped, so a document's unmapped events are named first."""

    def __init__(self, service: EpcisService, factory: str) -> None:
        self.service = service
        self.factory = factory
        self.event_ids: list[str] = []
        self.fresh: list[_Event] = []
        self.steps: list[tuple[Step, bytes, Signer]] = []
        self._writers: dict[tuple[int, int], StepWriter] = {}
        self._signers: dict[str, Signer] = {}
        self._signed = 0  # steps handed to the signing thread
        self._signing: list[tuple[list[bytes], Future[list[bytes]]]] = []
        self._refused: LedgerError | None = None

    def duplicate(self, event: _Event) -> None:
        self.event_ids.append(event.event_id)

    def add(self, event: _Event) -> None:
        self.event_ids.append(event.event_id)
        self.fresh.append(event)
        if self._refused is not None:
            return
        index = len(self.fresh) - 1
        try:
            writer = self._writers.get(event.split)
            if writer is None:
                writer = self._writers[event.split] = self._writer(*event.split)
            step, digest = writer.next(event.payload, event.canonical)
            self.service.steps.ingestor.admit(step, writer.signer.address)
        except LedgerError as exc:
            exc.message = f"step {index}: {exc.message}"
            self._refused = _rename(exc, f"step {index}: ", event.at)
            return
        self.steps.append((step, digest, writer.signer))

    def _writer(self, job: int, split: int) -> StepWriter:
        """The writer of the split's next steps, signing with its gateway key (one Signer
        per key)."""
        key = self.service.gateway_key(self.factory, job, split)
        signer = self._signers.get(key.address)
        if signer is None:
            signer = self._signers[key.address] = Signer(key.account.key)
        next_seq, head = self.service.steps.journal.head(job, split)
        steps = self.service.steps
        return StepWriter(signer, steps.domain, job, split, self.factory, next_seq, head)

    def sign(self) -> None:
        """Hand the steps added since the last call to the signing thread."""
        if self._refused is not None:
            return
        todo = self.steps[self._signed :]
        self._signed = len(self.steps)
        for signer in self._signers.values():
            digests = [d for _, d, by in todo if by is signer]
            if digests:
                self._signing.append((digests, signer.sign_later(digests)))

    def store(self) -> list[str]:
        """Store the signed steps as one batch (durable when this returns); their hashes."""
        if self._refused is not None:
            raise self._refused
        if not self.fresh:
            return []
        signatures: dict[bytes, bytes] = {}
        for digests, signing in self._signing:
            signatures.update(zip(digests, signing.result(), strict=True))
        verified = [
            NewStep(step, digest, signer.address, signatures[digest], event.canonical)
            for (step, digest, signer), event in zip(self.steps, self.fresh, strict=True)
        ]
        try:
            result = self.service.steps.ingestor.commit(verified)
        except LedgerError as exc:
            index = exc.details.get("index")
            if isinstance(index, int) and 0 <= index < len(self.fresh):
                raise _rename(exc, f"step {index}: ", self.fresh[index].at) from None
            raise
        return result.step_hashes

    def parsed(self) -> dict[bytes, dict[str, Any]]:
        """The stored events by payload hash."""
        pairs = zip(self.steps, self.fresh, strict=True)
        return {step.payload_hash: event.payload for (step, _, _), event in pairs}


class EpcisService:
    def __init__(self, steps: StepService, notify: Callable[[], NotifyService]) -> None:
        self.steps = steps
        journal = steps.journal
        chain = journal.meta("chain") or ""
        self.store = EpcisStore(self.path(journal.path), journal.path, chain)
        self.events = EventQuery(self.store)
        self.subscriptions = Subscriptions(self.store, self.events, notify)
        self._capture = threading.Lock()
        self._gateways: dict[tuple[str, int, int], str] = {}  # split -> the key it signs with
        # captured events are indexed after their capture is acknowledged, one capture at
        # a time; every reader of the index syncs it first, so it waits for them
        self._indexer = ThreadPoolExecutor(1, thread_name_prefix="cofab-epcis-index")
        self.store.sync()

    @staticmethod
    def path(journal: Path) -> Path:
        """Where the EPCIS database of the journal at `journal` lives."""
        return journal.with_name(journal.stem + ".epcis.sqlite")

    def close(self) -> None:
        self._indexer.shutdown(wait=True)
        self.store.close()

    # --- API keys ----------------------------------------------------------------------
    def create_key(self, factory: str, name: str) -> dict[str, Any]:
        """A new API key for one of the factory's systems; the secret is returned once and
        only its hash is kept."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "ek_" + secrets.token_hex(6)
        self.store.add_key(secret, key_id, factory, name)
        return {"key_id": key_id, "name": name, "factory": factory, "key": secret}

    def key_owner(self, secret: str) -> str | None:
        """The factory of an active API key, else None."""
        return self.store.key_owner(secret) if secret.startswith(KEY_PREFIX) else None

    def revoke_key(self, factory: str, key_id: str) -> None:
        if not self.store.revoke_key(factory, key_id):
            raise NotFound(f"{factory} has no active API key {key_id}")

    # --- mappings ----------------------------------------------------------------------
    def map(self, factory: str, field: str, value: str, job_id: int, split_id: int) -> None:
        """Events of `factory` whose `field` is `value` belong to split `split_id` of job
        `job_id` (which must be the factory's own split)."""
        if field not in MAPPING_FIELDS:
            raise InvalidInput(
                f"field must be one of {', '.join(MAPPING_FIELDS)}, not {field!r}", field="field"
            )
        self._own_split(factory, job_id, split_id)
        self.store.put_mapping(factory, field, value, job_id, split_id)

    def mappings(self, factory: str) -> list[dict[str, Any]]:
        return [
            {"field": f, "value": v, "job_id": j, "split_id": s}
            for (f, v), (j, s) in sorted(self.store.mappings(factory).items())
        ]

    def unmap(self, factory: str, field: str, value: str) -> None:
        if not self.store.delete_mapping(factory, field, value):
            raise NotFound(f"{factory} has no mapping of {field} {value!r}")

    def _own_split(self, factory: str, job_id: int, split_id: int) -> None:
        owner = self.steps.authority.split_factory(job_id, split_id)
        if owner.lower() != factory.lower():
            raise Forbidden(
                f"split {split_id} of job {job_id} belongs to {owner}, not to {factory}"
            )

    # --- capture -----------------------------------------------------------------------
    def capture(self, factory: str, document: Any) -> dict[str, Any]:
        """Capture an EPCISDocument (or one event) for `factory`: all events are stored as
        signed steps, or none. Returns the capture job.

        A pipeline: worker processes check, name and canonicalise the events chunk by
        chunk (`Chunks`) while this thread maps each prepared chunk to its splits
        and chains its steps, and the signing thread signs them; one transaction stores
        them all, in the events' order, before this returns. The events are indexed for
        queries after that, on the indexing thread."""
        created = time.time()
        events, context, where = _events_of(document)
        mapping = self.store.mappings(factory)
        payloads = []
        for event in events:
            payload = dict(event) if isinstance(event, dict) else event
            if isinstance(payload, dict) and context is not None and "@context" not in payload:
                payload["@context"] = context
            payloads.append(payload)
        with Chunks(payloads, context) as chunks, self._capture:
            self.store.sync()  # the events captured before, to find duplicates among
            batch = _Batch(self, factory)
            known: set[str] = set()
            for start, ready in chunks:
                known |= self.store.known(r[0] for r in ready if r is not None)
                for i, done in enumerate(ready, start):
                    payload, at = payloads[i], where(i)
                    if done is None:  # refused: prepared again here to say why, naming it
                        done = _checked(lambda p: prepare_one(p, context), payload, at)
                    target = self._target(factory, payload, mapping, at)
                    item = _Event(at, done[0], target, payload, done[1])
                    if item.event_id in known:
                        batch.duplicate(item)
                    else:
                        known.add(item.event_id)
                        batch.add(item)
                batch.sign()
            hashes = batch.store()
        # indexed from the events in hand rather than read back from the journal, while
        # the client sends its next document
        try:
            self._indexer.submit(self._indexed, batch.parsed())
        except RuntimeError:  # the node is closing: the next sync reads them from the journal
            log.info("not indexing %d captured events now: the node is closing", len(batch.fresh))
        result = {
            "eventIDs": batch.event_ids,
            "captured": len(batch.fresh),
            "duplicates": len(batch.event_ids) - len(batch.fresh),
            "stepHashes": hashes,
        }
        capture_id = uuid.uuid4().hex
        self.store.put_capture(capture_id, factory, created, result)
        return self.capture_job(factory, capture_id)

    def _indexed(self, parsed: dict[bytes, dict[str, Any]]) -> None:
        """Index captured events (journaled already), then report them to subscriptions;
        a failure is logged, and the next sync or reporting round does it again."""
        try:
            self.store.sync(parsed)
            self.subscriptions.publish()
        except Exception:
            log.exception("indexing or reporting captured events failed; the next round retries")

    def gateway_key(self, factory: str, job_id: int, split_id: int) -> Sender:
        """A device key of `factory`, authorised now for this split, that this node holds."""
        now = int(self.steps.ingestor.clock())
        senders = self.steps.senders
        last = self._gateways.get((factory.lower(), job_id, split_id))
        # the key that signed last time first: checking every key the node holds costs
        # a chain call per key each time the authority's cache lapses
        order = sorted(senders.items(), key=lambda item: item[0] != last)
        for address, sender in order:
            if address.lower() == factory.lower():
                continue  # gateway mode signs with a device key, never the factory's own
            try:
                self.steps.authority.check(job_id, split_id, factory, address, now)
            except LedgerError:
                continue
            self._gateways[(factory.lower(), job_id, split_id)] = address
            return sender
        raise Forbidden(
            f"this node holds no authorised device key of {factory} to sign captured events "
            "with: bind one (POST /devices) and unlock it on this node (cofab up --unlock NAME)"
        )

    def _target(
        self,
        factory: str,
        event: dict[str, Any],
        mapping: dict[tuple[str, str], tuple[int, int]],
        at: str,
    ) -> tuple[int, int]:
        named = [event.get(k, event.get(ctx.NAMESPACE + k[6:])) for k in (ctx.JOB, ctx.SPLIT)]
        if named != [None, None]:
            job = _uint(named[0], f"{at}.{ctx.JOB}")
            split = _uint(named[1], f"{at}.{ctx.SPLIT}")
            self._own_split(factory, job, split)
            return job, split
        keys = _mapping_keys(event)
        found = {mapping[k] for k in keys if k in mapping}
        if len(found) == 1:
            return found.pop()
        if not found:
            tried = ", ".join(f"{f} {v}" for f, v in keys) or "no readPoint, bizLocation or EPC"
            raise InvalidInput(
                f"{at} maps to no split: none of its identifiers ({tried}) has a mapping of "
                f"{factory} (POST /epcis/mappings), and it names no {ctx.JOB}/{ctx.SPLIT}",
                field=at,
            )
        raise InvalidInput(
            f"{at} maps to several splits ({sorted(found)}): give it {ctx.JOB} and "
            f"{ctx.SPLIT}, or make the mappings unambiguous",
            field=at,
        )

    def capture_job(self, factory: str, capture_id: str) -> dict[str, Any]:
        found = self.store.capture(capture_id)
        if found is None or found[0].lower() != factory.lower():
            raise NotFound(f"no capture job {capture_id} of {factory}")
        _, created, finished, result = found
        return {
            "captureID": capture_id,
            "createdAt": iso(created),
            "finishedAt": iso(finished),
            "running": False,
            "success": True,
            "captureErrorBehaviour": "rollback",
            "errors": [],
            **result,
        }

    # --- query -------------------------------------------------------------------------
    def query(self, params: Mapping[str, list[str]]) -> tuple[list[dict[str, Any]], str | None]:
        return self.events.query(params)

    def event(self, event_id: str) -> dict[str, Any]:
        return self.events.event(event_id)


def _events_of(document: Any) -> tuple[list[Any], Any, Any]:
    """The events of a capture body, its `@context`, and how to name event i."""
    if not isinstance(document, dict):
        raise InvalidInput("the body must be an EPCISDocument or one EPCIS event", field="body")
    kind = document.get("type")
    if kind == "EPCISDocument":
        body = document.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise InvalidInput(
                "an EPCISDocument to capture needs epcisBody.eventList with at least one event",
                field="epcisBody.eventList",
            )
        if len(events) > MAX_BATCH:
            raise InvalidInput(
                f"at most {MAX_BATCH} events per capture; this one has {len(events)}",
                field="epcisBody.eventList",
            )
        return events, document.get("@context"), lambda i: f"epcisBody.eventList[{i}]"
    if kind in epcis.EVENT_TYPES:
        return [document], None, lambda _i: "event"
    raise InvalidInput(
        f"type must be EPCISDocument or an event type ({', '.join(epcis.EVENT_TYPES)}), "
        f"not {kind!r}",
        field="type",
    )


def _checked(check: Callable[[Any], _T], event: Any, at: str) -> _T:
    """`check(event)` (parse, canonicalise), its refusal naming the member as the capture
    body does."""
    try:
        return check(event)
    except InvalidInput as exc:
        raise _rename(exc, "payload", at) from None


def _rename(exc: LedgerError, old: str, at: str) -> LedgerError:
    """`exc` naming the event as the capture body does: `payload.x` (a validation
    error) becomes `<at>.x`; `step i: …` (a refusal of the ingest) becomes `<at>: …`."""
    exc.message = exc.message.replace(old, at if old == "payload" else f"{at}: ", 1)
    exc.args = (exc.message,)
    field = getattr(exc, "field", None)
    if not isinstance(field, str):
        renamed = at
    elif old == "payload":
        renamed = at + field.removeprefix("payload")
    else:
        renamed = f"{at}.{field}"
    if isinstance(exc, InvalidInput):
        exc.field = renamed
    for error in exc.details.get("errors") or []:
        error.update(field=renamed, message=exc.message)
        error.pop("index", None)
    exc.details.pop("index", None)
    return exc


def _mapping_keys(event: dict[str, Any]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for field in ("readPoint", "bizLocation"):
        value = event.get(field)
        if isinstance(value, dict) and value.get("id"):
            keys.append((field, str(value["id"])))
    for field in EPC_ROLES:
        value = event.get(field)
        for epc in value if isinstance(value, list) else [value] if value else []:
            keys.append(("epc", str(epc)))
    for field in QUANTITY_ROLES:
        for q in event.get(field) or []:
            if isinstance(q, dict) and q.get("epcClass"):
                keys.append(("epcClass", str(q["epcClass"])))
    return keys


def _uint(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"{name} must be a job or split number", field=name)
    text = str(value)
    if not text.isdigit() or len(text) > 78:
        raise InvalidInput(f"{name} must be a job or split number, not {value!r}", field=name)
    return int(text)
