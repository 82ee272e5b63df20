"""EPCIS 2.0 event queries over the index, each event with its cofab proof.

Standard query parameters (`eventType`, `GE_`/`LT_eventTime`, `GE_`/`LT_recordTime`,
`EQ_bizStep`, `EQ_bizLocation`, `EQ_readPoint`, `EQ_action`, `EQ_disposition`,
`EQ_eventID`, `MATCH_epc`, `MATCH_anyEPC`, `MATCH_parentID`, `MATCH_inputEPC`,
`MATCH_outputEPC`, the `MATCH_…EPCClass` family), several values of one parameter
separated by `|`; pages in event time order (`orderBy=eventTime`, or `recordTime`;
`orderDirection`, `perPage`, `nextPageToken`). Each page is read from an index whose last
columns are (time, id), so a page costs the same on a million events as on a hundred.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.core.errors import NotFound, QueryParameterError
from ledger.epcis import context as ctx
from ledger.epcis.store import EpcisStore, StoredEvent
from ledger.epcis.vocabulary import bare, query_time

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_FILTERS = {"EQ_bizStep": "biz_step", "EQ_bizLocation": "biz_location",
            "EQ_readPoint": "read_point", "EQ_action": "action",
            "EQ_disposition": "disposition", "eventType": "event_type",
            "EQ_eventID": "event_id"}  # fmt: skip
_TIMES = {
    "GE_eventTime": ("event_time", ">="),
    "LT_eventTime": ("event_time", "<"),
    "GE_recordTime": ("record_time", ">="),
    "LT_recordTime": ("record_time", "<"),
}
_MATCH = {"MATCH_epc": ("epc",), "MATCH_parentID": ("parent",), "MATCH_inputEPC": ("input",),
          "MATCH_outputEPC": ("output",), "MATCH_anyEPC": ("epc", "parent", "input", "output"),
          "MATCH_epcClass": ("class",), "MATCH_inputEPCClass": ("inputClass",),
          "MATCH_outputEPCClass": ("outputClass",),
          "MATCH_anyEPCClass": ("class", "inputClass", "outputClass")}  # fmt: skip


ORDER_BY = {"eventTime": "event_time", "recordTime": "record_time"}
QUERY_PARAMETERS = (*_FILTERS, *_TIMES, *_MATCH, "orderBy", "orderDirection", "perPage",
                    "nextPageToken")  # fmt: skip
"""What `GET /epcis/events` takes; a named query takes the same but the paging ones."""


@dataclass(frozen=True)
class Criteria:
    """The conditions of an EPCIS query on the `events` table (SQL and its arguments)."""

    where: tuple[str, ...]
    args: tuple[Any, ...]


def criteria(
    params: Mapping[str, list[str]], allowed: tuple[str, ...] = QUERY_PARAMETERS
) -> Criteria:
    """The conditions of `params` (values of one parameter separated by `|`); an unknown
    parameter or a bad value is refused naming it."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise QueryParameterError(
            f"unknown query parameter {unknown[0]!r}; this node supports {', '.join(allowed)}",
            field=unknown[0],
        )
    where: list[str] = []
    args: list[Any] = []
    for name, column in _FILTERS.items():
        values = _values(params, name)
        if values:
            if column in ("biz_step", "disposition"):
                values = [str(bare(v)) for v in values]
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            args += values
    for name, (column, op) in _TIMES.items():
        for value in params.get(name, []):
            where.append(f"{column} {op} ?")
            args.append(query_time(name, value))
    for name, roles in _MATCH.items():
        values = _values(params, name)
        if values:
            where.append(
                f"id IN (SELECT id FROM epcs WHERE epc IN ({','.join('?' * len(values))}) "
                f"AND role IN ({','.join('?' * len(roles))}))"
            )
            args += [*values, *roles]
    return Criteria(tuple(where), tuple(args))


class EventQuery:
    def __init__(self, store: EpcisStore) -> None:
        self.store = store

    def query(self, params: Mapping[str, list[str]]) -> tuple[list[dict[str, Any]], str | None]:
        """Events matching the EPCIS query parameters, one page in event time order (or
        record time order: `orderBy=recordTime`; `orderDirection` ASC, the default, or
        DESC; ties in capture order); and the token of the next page (None on the last).

        Every page is read from an index ending in (time, id): the filter's own
        (`biz_step, event_time, id`, ...) or the time index, so `LIMIT` stops after one
        page and the next page starts at the token's (time, id) in that index."""
        found = criteria(params)
        where, args = list(found.where), list(found.args)
        order = _one(params, "orderBy", tuple(ORDER_BY), "eventTime")
        column = ORDER_BY[order]
        direction = _one(params, "orderDirection", ("ASC", "DESC"), "ASC")
        per_page = _int_param(params, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
        tokens = params.get("nextPageToken")
        if tokens:
            when, last = _token_value(tokens[-1], f"{direction}-{order}")
            where.append(f"({column}, id) {'>' if direction == 'ASC' else '<'} (?, ?)")
            args += [when, last]
        self.store.sync()
        sql = (
            f"SELECT id, {column} FROM events"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY {column} {direction}, id {direction} LIMIT ?"
        )
        rows = self.store.read(sql, [*args, per_page + 1])
        more = len(rows) > per_page
        rows = rows[:per_page]
        events = [self._with_proof(e) for e in self.store.load([r[0] for r in rows])]
        token = _token(rows[-1][1], rows[-1][0], f"{direction}-{order}") if more and rows else None
        return events, token

    def since(
        self, found: Criteria, after: int, upto: int, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """The first `limit` events matching `found` among index rows `after`+1 to `upto`,
        in capture order, with their rows (what a standing query reports as new)."""
        rows = self.store.read(
            # NOT INDEXED: read the new rows by their row id, not a filter's index
            "SELECT id FROM events NOT INDEXED WHERE "
            + " AND ".join([*found.where, "id > ?", "id <= ?"])
            + " ORDER BY id LIMIT ?",
            [*found.args, after, upto, limit],
        )
        return [(e.id, self._with_proof(e)) for e in self.store.load([r[0] for r in rows])]

    def event(self, event_id: str) -> dict[str, Any]:
        self.store.sync()
        rows = self.store.read(
            "SELECT id FROM events WHERE event_id=? ORDER BY id LIMIT 1", (event_id,)
        )
        if not rows:
            raise NotFound(f"no event {event_id} on this node")
        return self._with_proof(self.store.load([rows[0][0]])[0])

    def _with_proof(self, stored: StoredEvent) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(stored.payload)
        prev_hash, biz_step, payload_hash, evidence_hash, when = stored.record
        record = {  # Step.message(), with the member as journaled (checksummed on ingest)
            "jobId": stored.job_id,
            "splitId": stored.split_id,
            "seq": stored.seq,
            "prevHash": "0x" + bytes(prev_hash).hex(),
            "bizStep": biz_step,
            "payloadHash": "0x" + bytes(payload_hash).hex(),
            "evidenceHash": "0x" + bytes(evidence_hash).hex(),
            "time": when,
            "member": stored.member,
        }
        proof: dict[str, Any] = {
            "stepHash": "0x" + stored.step_hash.hex(),
            "record": record,
            "signature": "0x" + stored.signature.hex(),
            "signer": stored.signer,
            "jobId": stored.job_id,
            "splitId": stored.split_id,
            "seq": stored.seq,
            "recordTime": iso(stored.received_at),
            "anchor": self._anchor(stored),
        }
        event.setdefault("eventID", stored.event_id)
        event[ctx.PROOF] = proof
        return event

    @staticmethod
    def _anchor(stored: StoredEvent) -> dict[str, Any] | None:
        if stored.anchor is None:
            return None
        return {
            **stored.anchor,
            "leafEncoding": ["uint64", "bytes32"],
            "merkleProof": list(stored.merkle_proof),
        }


def _values(params: Mapping[str, list[str]], name: str) -> list[str]:
    return [v for raw in params.get(name, []) for v in raw.split("|") if v]


def _int_param(params: Mapping[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    given = params.get(name)
    if not given:
        return default
    raw = given[-1]
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise QueryParameterError(f"{name} must be a whole number from {lo} to {hi}", field=name)
    return int(raw)


def _one(params: Mapping[str, list[str]], name: str, choices: tuple[str, ...], default: str) -> str:
    given = params.get(name)
    if not given:
        return default
    if given[-1] not in choices:
        raise QueryParameterError(
            f"{name} must be {' or '.join(choices)}, not {given[-1]!r}", field=name
        )
    return given[-1]


def _token(when: int, last_id: int, order: str) -> str:
    text = f"{order.lower()}:{when}:{last_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _token_value(token: str, order: str) -> tuple[int, int]:
    """The (time, id) a page token continues after, for pages in `order` (direction and
    field)."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, rest = text.partition(":")
        when, _, number = rest.partition(":")
        if prefix == order.lower() and when.lstrip("-").isdigit() and number.isdigit():
            return int(when), int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise QueryParameterError(
        "nextPageToken is not one this node gave for this query", field="nextPageToken"
    )


def query_document(events: list[dict[str, Any]], name: str, context: str) -> dict[str, Any]:
    """One page of query results as an EPCISQueryDocument; `context` is the URL of cofab's
    JSON-LD context (where this node serves it)."""
    return {
        "@context": [ctx.GS1_CONTEXT, context],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": iso(time.time()),
        "epcisBody": {"queryResults": {"queryName": name, "resultsBody": {"eventList": events}}},
    }


def iso(seconds: float) -> str:
    """Unix seconds as an RFC 3339 time in UTC with milliseconds."""
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
