"""EPCIS 2.0 event queries over the index, each event with its cofab proof.

Standard query parameters (`eventType`, `GE_`/`LT_eventTime`, `GE_`/`LT_recordTime`,
`EQ_bizStep`, `EQ_bizLocation`, `EQ_readPoint`, `EQ_action`, `EQ_disposition`,
`EQ_eventID`, `MATCH_epc`, `MATCH_anyEPC`, `MATCH_parentID`, `MATCH_inputEPC`,
`MATCH_outputEPC`, the `MATCH_…EPCClass` family), several values of one parameter
separated by `|`; pages in capture order (`perPage`, `nextPageToken`). Each answer is read
from indexes whose second column is the event's position, so a page costs the same on a
million events as on a hundred.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ledger.core.errors import InvalidInput, NotFound
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
QUERY_PARAMETERS = (*_FILTERS, *_TIMES, *_MATCH, "perPage", "nextPageToken")


class EventQuery:
    def __init__(self, store: EpcisStore) -> None:
        self.store = store

    def query(self, params: Mapping[str, list[str]]) -> tuple[list[dict[str, Any]], str | None]:
        """Events matching the EPCIS query parameters, one page, in capture order; and the
        token of the next page (None on the last)."""
        unknown = sorted(set(params) - set(QUERY_PARAMETERS))
        if unknown:
            raise InvalidInput(
                f"unknown query parameter {unknown[0]!r}; this node supports "
                f"{', '.join(QUERY_PARAMETERS)}",
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
        per_page = _int_param(params, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
        tokens = params.get("nextPageToken")
        if tokens:
            token = tokens[-1]
            where.append("id > ?")
            args.append(_token_value(token))
        self.store.sync()
        sql = "SELECT id FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        ids = [r[0] for r in self.store.read(sql + " ORDER BY id LIMIT ?", [*args, per_page + 1])]
        more = len(ids) > per_page
        ids = ids[:per_page]
        events = [self._with_proof(e) for e in self.store.load(ids)]
        return events, (_token(ids[-1]) if more and ids else None)

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

    def _anchor(self, stored: StoredEvent) -> dict[str, Any] | None:
        if stored.anchor_index is None:
            return None
        found = self.store.anchor_proof(
            stored.job_id, stored.split_id, stored.seq, stored.anchor_index
        )
        if found is None:
            return None
        anchor, proof = found
        return {**anchor, "leafEncoding": ["uint64", "bytes32"], "merkleProof": proof}


def _values(params: Mapping[str, list[str]], name: str) -> list[str]:
    return [v for raw in params.get(name, []) for v in raw.split("|") if v]


def _int_param(params: Mapping[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    given = params.get(name)
    if not given:
        return default
    raw = given[-1]
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}", field=name)
    return int(raw)


def _token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _token_value(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == "after" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidInput("nextPageToken is not one this node gave", field="nextPageToken")


def iso(seconds: float) -> str:
    """Unix seconds as an RFC 3339 time in UTC with milliseconds."""
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
