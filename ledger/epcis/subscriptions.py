"""EPCIS 2.0 named queries and their subscriptions (webhooks), per member.

A named query is an EPCIS query (the EPCIS 2.0 query language in JSON, checked against
GS1's query schema, unmodified, then against the parameters this node's index answers);
it belongs to the member that created it, and so do its subscriptions: another member
neither sees nor removes them. A subscription reports to its `dest` URL the events newly
indexed that match the query: at once (`stream: true`) or on a `schedule` (cron-like,
UTC), then also when nothing matched if `reportIfEmpty`. Reports are EPCISQueryDocuments
recorded in the node's notification outbox, so they are delivered like every webhook:
durably, signed with the subscription's `signatureToken` (`Cofab-Signature`, and the same
value as `GS1-Signature`), retried with backoff.

Each subscription keeps a cursor (the last index row it has reported on) in the outbox,
moved in the transaction that records its report: a report is recorded once, whatever
crashes, and the events after the cursor are reported next.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema_rs

from ledger.core.errors import Conflict, InvalidInput, NotFound, QueryParameterError
from ledger.epcis import context as ctx
from ledger.epcis.query import QUERY_PARAMETERS, Criteria, EventQuery, criteria, iso
from ledger.epcis.store import EpcisStore
from ledger.epcis.vocabulary import query_time
from ledger.notify.outbox import Outbox
from ledger.notify.service import NotifyService

SCHEMA: dict[str, Any] = json.loads(
    resources.files("ledger.steps").joinpath("gs1/EPCIS-Query-Schema.json").read_text()
)
"""GS1's EPCIS 2.0 query schema (the `query` of a named query)."""
_QUERY = jsonschema_rs.Draft7Validator(SCHEMA, validate_formats=True)
FILTERS = tuple(p for p in QUERY_PARAMETERS if p not in ("perPage", "nextPageToken"))
"""What a named query may state (its paging is the caller's)."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$")
MAX_QUERIES = 100  # per member
MAX_SUBSCRIPTIONS = 20  # per member
REPORT_EVENTS = 500  # events in one report at most; the rest follow in the next ones
KIND = "epcis.query"  # the outbox's name for a report (the `Cofab-Event` header)
_SUBSCRIPTION_FIELDS = ("dest", "signatureToken", "stream", "schedule", "reportIfEmpty",
                        "initialRecordTime")  # fmt: skip
_SCHEDULE = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "dayOfMonth": (1, 31),
             "month": (1, 12), "dayOfWeek": (1, 7)}  # fmt: skip
_ELEMENT = re.compile(r"^(\d{1,2})$|^\[(\d{1,2})-(\d{1,2})\]$")
_CATCH_UP = 120  # seconds of a schedule looked back over after a pause


class Subscriptions:
    def __init__(
        self, store: EpcisStore, events: EventQuery, notify: Callable[[], NotifyService]
    ) -> None:
        self.store = store
        self.events = events
        self.notify = notify
        self._lock = threading.Lock()  # one round of reports at a time
        self._checked = time.time()  # schedules have been looked at up to here

    # --- named queries -----------------------------------------------------------------
    def create_query(self, owner: str, body: Any) -> dict[str, Any]:
        """Store `body` ({name, query}) as a named query of `owner`."""
        if not isinstance(body, dict):
            raise QueryParameterError("the body must be {name, query}", field="body")
        extra = sorted(set(body) - {"name", "query"})
        if extra:
            raise QueryParameterError(f"unknown member {extra[0]!r}", field=extra[0])
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise QueryParameterError(
                "name must be 1 to 100 letters, digits, '_', '.', '~' or '-', starting with "
                "a letter or digit",
                field="name",
            )
        query = body.get("query")
        _check_query(query)
        assert isinstance(query, dict)
        if len(self._query_rows(owner)) >= MAX_QUERIES:
            raise QueryParameterError(f"a member may keep at most {MAX_QUERIES} named queries")
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO queries (owner, name, query, created_at) VALUES (?,?,?,?)",
                (owner.lower(), name, json.dumps(query, sort_keys=True), time.time()),
            )
        if not cur.rowcount:
            raise Conflict(f"you have a query named {name!r} already")
        return {"name": name, "query": query}

    def queries(self, owner: str) -> list[dict[str, Any]]:
        return [{"name": n, "query": json.loads(q)} for n, q in self._query_rows(owner)]

    def named(self, owner: str, name: str) -> dict[str, Any]:
        rows = self.store.read(
            "SELECT query FROM queries WHERE owner=? AND name=?", (owner.lower(), name)
        )
        if not rows:
            raise NotFound(f"you have no query named {name!r}")
        return {"name": name, "query": json.loads(rows[0][0])}

    def delete_query(self, owner: str, name: str) -> None:
        """Remove the query and every subscription to it."""
        self.named(owner, name)
        for sid in self._subscription_ids(owner, name):
            self.unsubscribe(owner, name, sid)
        with self.store.transaction() as db:
            db.execute("DELETE FROM queries WHERE owner=? AND name=?", (owner.lower(), name))

    def query_events(
        self, owner: str, name: str, paging: Mapping[str, list[str]]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the named query's results (`perPage`, `nextPageToken` from the
        caller, nothing else)."""
        extra = sorted(set(paging) - {"perPage", "nextPageToken"})
        if extra:
            raise QueryParameterError(
                f"a named query takes only perPage and nextPageToken, not {extra[0]!r}",
                field=extra[0],
            )
        return self.events.query({**_params(self.named(owner, name)["query"]), **paging})

    # --- subscriptions -----------------------------------------------------------------
    def subscribe(self, owner: str, name: str, body: Any) -> dict[str, Any]:
        """Subscribe `dest` to the named query; the answer names the subscription (and
        the signatureToken when this node made one: shown this once)."""
        self.named(owner, name)
        if not isinstance(body, dict):
            raise QueryParameterError("the body must be a JSON object", field="body")
        extra = sorted(set(body) - set(_SUBSCRIPTION_FIELDS))
        if extra:
            raise QueryParameterError(
                f"unknown subscription control {extra[0]!r}; known are "
                f"{', '.join(_SUBSCRIPTION_FIELDS)}",
                field=extra[0],
            )
        dest, token = body.get("dest"), body.get("signatureToken")
        if not isinstance(dest, str) or not dest:
            raise QueryParameterError("dest must be the URL to send reports to", field="dest")
        if token is not None and (not isinstance(token, str) or not 16 <= len(token) <= 1024):
            raise QueryParameterError(
                "signatureToken must be a string of 16 to 1024 characters", field="signatureToken"
            )
        stream, schedule = body.get("stream"), body.get("schedule")
        report_if_empty = body.get("reportIfEmpty", False)
        if stream is not None and stream is not True:
            raise QueryParameterError("stream, when given, must be true", field="stream")
        if (stream is True) == (schedule is not None):
            raise QueryParameterError(
                "give either stream: true (report each new matching event) or a schedule "
                "(report at set times), not both or neither",
                field="stream" if stream else "schedule",
            )
        if not isinstance(report_if_empty, bool) or (report_if_empty and stream):
            raise QueryParameterError(
                "reportIfEmpty is true or false, and applies to a schedule (a stream reports "
                "only when events match)",
                field="reportIfEmpty",
            )
        if schedule is not None:
            _schedule(schedule)  # checked now, evaluated each second
        initial_raw = body.get("initialRecordTime")
        if initial_raw is not None and not isinstance(initial_raw, str):
            raise QueryParameterError(
                "initialRecordTime must be a date-time", field="initialRecordTime"
            )
        self.store.sync()
        if initial_raw is None:
            initial = int(time.time() * 1000)
            start = self._last_row()  # what is indexed now is not new
        else:
            initial = query_time("initialRecordTime", initial_raw)
            first = self.store.read("SELECT MIN(id) FROM events WHERE record_time >= ?", (initial,))
            start = (first[0][0] or self._last_row() + 1) - 1
        if len(self.store.read("SELECT id FROM subscriptions WHERE owner=?", (owner.lower(),))) >= (
            MAX_SUBSCRIPTIONS
        ):
            raise QueryParameterError(
                f"a member may keep at most {MAX_SUBSCRIPTIONS} subscriptions"
            )
        notify = self.notify()
        try:
            hook, secret = notify.add_endpoint(owner, dest, token)
        except InvalidInput as exc:
            raise QueryParameterError(f"dest: {exc.message}", field="dest") from None
        sid = str(uuid.uuid4())
        created = time.time()
        try:
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO subscriptions (id, owner, query_name, webhook_id, dest, stream, "
                    "schedule, report_if_empty, initial_record_time, start_id, created_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (sid, owner.lower(), name, hook.id, hook.url, int(bool(stream)),
                     None if schedule is None else json.dumps(schedule, sort_keys=True),
                     int(report_if_empty), initial, start, created),
                )  # fmt: skip
        except BaseException:
            notify.remove_webhook(owner, hook.id)
            raise
        shown = self.subscription(owner, name, sid)
        return shown if token else {**shown, "signatureToken": secret}

    def subscriptions(self, owner: str, name: str) -> list[dict[str, Any]]:
        self.named(owner, name)
        return [self.subscription(owner, name, sid) for sid in self._subscription_ids(owner, name)]

    def subscription(self, owner: str, name: str, sid: str) -> dict[str, Any]:
        rows = self.store.read(
            "SELECT dest, stream, schedule, report_if_empty, initial_record_time, created_at "
            "FROM subscriptions WHERE id=? AND owner=? AND query_name=?",
            (sid, owner.lower(), name),
        )
        if not rows:
            raise NotFound(f"your query {name!r} has no subscription {sid}")
        dest, stream, schedule, report_if_empty, initial, created = rows[0]
        shown: dict[str, Any] = {
            "subscriptionID": sid,
            "queryName": name,
            "dest": dest,
            "createdAt": iso(created),
            "initialRecordTime": iso(initial / 1000),
        }
        if stream:
            shown["stream"] = True
        else:
            shown["schedule"] = json.loads(schedule)
            shown["reportIfEmpty"] = bool(report_if_empty)
        return shown

    def unsubscribe(self, owner: str, name: str, sid: str) -> None:
        """End the subscription: its pending reports are dropped, no more are made."""
        rows = self.store.read(
            "SELECT webhook_id FROM subscriptions WHERE id=? AND owner=? AND query_name=?",
            (sid, owner.lower(), name),
        )
        if not rows:
            raise NotFound(f"your query {name!r} has no subscription {sid}")
        with self.store.transaction() as db:
            db.execute("DELETE FROM subscriptions WHERE id=?", (sid,))
        self.notify().remove_webhook(owner, rows[0][0])

    # --- reports -----------------------------------------------------------------------
    def publish(self, now: float | None = None) -> int:
        """Record the reports due at `now` (default: the clock's now): new events of stream
        subscriptions, schedules that fired since the last look; returns how many. Called
        once a capture has committed, and each round of the notification service."""
        rows = self.store.read(
            "SELECT s.id, s.query_name, s.webhook_id, s.stream, s.schedule, "
            "s.report_if_empty, s.initial_record_time, s.start_id, q.query FROM subscriptions s "
            "JOIN queries q ON q.owner=s.owner AND q.name=s.query_name"
        )
        if not rows:
            return 0
        with self._lock:
            self.store.sync()
            last = self._last_row()
            now = time.time() if now is None else now
            since, self._checked = self._checked, max(self._checked, now)
            outbox = self.notify().outbox
            made = 0
            for sid, name, hook, stream, schedule, if_empty, initial, start, q in rows:
                key = f"{KIND}:{sid}"
                cursor = int(outbox.meta(key) or start)
                found = criteria(_params(json.loads(q)), FILTERS)
                if stream:
                    while cursor < last:
                        events, upto = self._matches(found, initial, cursor, last)
                        body = _report(sid, name, events) if events else None
                        made += self._record(outbox, hook, key, f"{key}:{upto}", body, upto)
                        cursor = upto
                    continue
                fired = _fired(_schedule(json.loads(schedule)), since, now)
                if fired is None:
                    continue
                events, upto = self._matches(found, initial, cursor, last)
                body = _report(sid, name, events) if events or if_empty else None
                made += self._record(outbox, hook, key, f"{key}:at:{fired}", body, upto)
            return made

    def _matches(
        self, found: Criteria, initial: int, after: int, last: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The next events after row `after` (up to `last`) matching the query, at most
        REPORT_EVENTS, and the row the report reaches."""
        where = Criteria((*found.where, "record_time >= ?"), (*found.args, initial))
        rows = self.events.since(where, after, last, REPORT_EVENTS + 1)
        if len(rows) > REPORT_EVENTS:
            return [e for _, e in rows[:REPORT_EVENTS]], rows[REPORT_EVENTS - 1][0]
        return [e for _, e in rows], last

    @staticmethod
    def _record(
        outbox: Outbox, hook: str, key: str, report: str, body: bytes | None, upto: int
    ) -> int:
        """Record `body` as report `report` (none: only move the cursor `key` to `upto`)."""
        if body is None:
            outbox.set_meta(key, str(upto))
            return 0
        return int(outbox.record_report(hook, report, KIND, body, (key, str(upto))))

    def _last_row(self) -> int:
        return int(self.store.read("SELECT COALESCE(MAX(id), 0) FROM events")[0][0])

    def _query_rows(self, owner: str) -> list[tuple[Any, ...]]:
        return self.store.read(
            "SELECT name, query FROM queries WHERE owner=? ORDER BY created_at", (owner.lower(),)
        )

    def _subscription_ids(self, owner: str, name: str) -> list[str]:
        rows = self.store.read(
            "SELECT id FROM subscriptions WHERE owner=? AND query_name=? ORDER BY created_at",
            (owner.lower(), name),
        )
        return [str(r[0]) for r in rows]


def _check_query(query: Any) -> None:
    """`query` valid under GS1's query schema and made of parameters this node answers."""
    if not isinstance(query, dict):
        raise QueryParameterError("query must be an EPCIS query object", field="query")
    errors = list(_QUERY.iter_errors(query))
    if errors:
        first = max(errors, key=lambda e: len(e.instance_path))
        path = [str(p) for p in first.instance_path]
        if not path and isinstance(
            first.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties
        ):
            path = [str(first.kind.unexpected[0])]
        where = ".".join(["query", *path[:1]]) + "".join(f"[{p}]" for p in path[1:])
        raise QueryParameterError(
            f"not a valid EPCIS 2.0 query (GS1 query schema): {where}: {first.message}",
            field=where,
        )
    try:
        criteria(_params(query), FILTERS)
    except QueryParameterError as exc:
        field = f"query.{exc.field}"
        raise QueryParameterError(
            exc.message.replace("query parameter", "query parameter of a named query", 1),
            field=field,
        ) from None


def _params(query: dict[str, Any]) -> dict[str, list[str]]:
    """A JSON query as the events endpoint's parameters (lists of strings)."""
    return {
        k: [str(x) for x in v] if isinstance(v, list) else [str(v)]
        for k, v in query.items()
        if k != "@context"
    }


def _schedule(schedule: Any) -> dict[str, frozenset[int] | None]:
    """The times a schedule fires, per field (None: any); refused naming the field."""
    if not isinstance(schedule, dict) or not schedule:
        raise QueryParameterError(
            f"schedule must name some of {', '.join(_SCHEDULE)}", field="schedule"
        )
    extra = sorted(set(schedule) - set(_SCHEDULE))
    if extra:
        raise QueryParameterError(
            f"schedule.{extra[0]} is none of {', '.join(_SCHEDULE)}", field=f"schedule.{extra[0]}"
        )
    out: dict[str, frozenset[int] | None] = {}
    for name, (lo, hi) in _SCHEDULE.items():
        raw = schedule.get(name)
        if raw is None:
            out[name] = frozenset({0}) if name == "second" else None  # once a minute at most
            continue
        values: set[int] = set()
        for element in str(raw).split(","):
            m = _ELEMENT.match(element.strip())
            bounds = (m.group(1), m.group(1)) if m and m.group(1) else m and m.group(2, 3)
            if not bounds or not lo <= int(bounds[0]) <= int(bounds[1]) <= hi:
                raise QueryParameterError(
                    f"schedule.{name} must be numbers or ranges [a-b] from {lo} to {hi}, "
                    f"separated by commas; not {raw!r}",
                    field=f"schedule.{name}",
                )
            values.update(range(int(bounds[0]), int(bounds[1]) + 1))
        out[name] = frozenset(values)
    return out


def _fired(schedule: dict[str, frozenset[int] | None], since: float, now: float) -> int | None:
    """The last whole second in (since, now] the schedule names (UTC), if any."""
    for second in range(int(now), max(int(since), int(now) - _CATCH_UP), -1):
        t = datetime.fromtimestamp(second, UTC)
        parts = {"second": t.second, "minute": t.minute, "hour": t.hour, "dayOfMonth": t.day,
                 "month": t.month, "dayOfWeek": t.isoweekday()}  # fmt: skip
        if all(allowed is None or parts[k] in allowed for k, allowed in schedule.items()):
            return second
    return None


def _report(sid: str, name: str, events: list[dict[str, Any]]) -> bytes:
    """An EPCISQueryDocument of the subscription's new events."""
    document = {
        "@context": [ctx.GS1_CONTEXT, ctx.document()["@context"]],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": iso(time.time()),
        "epcisBody": {
            "queryResults": {
                "subscriptionID": sid,
                "queryName": name,
                "resultsBody": {"eventList": events},
            }
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()
