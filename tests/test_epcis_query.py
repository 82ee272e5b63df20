"""The EPCIS query index on a journal (no chain needed): pages in event time order with
tokens that neither skip nor repeat an event, in both directions, and an index that is
current the moment a step is committed, however many threads query at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ledger.core.errors import QueryParameterError
from ledger.epcis.query import EventQuery
from ledger.epcis.store import EpcisStore
from ledger.epcis.subscriptions import _fired, _schedule
from ledger.steps import epcis
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain, Step
from ledger.steps.signatures import Signer

T0 = 1_795_000_000
SIGNER = Signer(b"\x42" * 32)
MEMBER = Account.from_key(b"\x43" * 32).address
DOMAIN = Domain(31337, "0x" + "11" * 20)


@dataclass
class Index:
    journal: Journal
    store: EpcisStore
    query: EventQuery
    heads: dict[tuple[int, int], tuple[int, bytes]]

    def add(self, split: int, when: int, step: str = "inspecting") -> str:
        """Journal (through the journal's own connection) the split's next step at `when`;
        returns its eventID."""
        seq, head = self.heads.get((1, split), (0, bytes(32)))
        event_id = f"urn:uuid:00000000-0000-4000-8000-{split:04d}{seq:08d}"
        payload = epcis.canonical(
            {"type": "ObjectEvent", "eventID": event_id, "action": "OBSERVE", "bizStep": step,
             "eventTime": datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z"),
             "eventTimeZoneOffset": "+00:00", "epcList": [f"urn:epc:id:sgtin:0614141.1.{seq}"]}
        )  # fmt: skip
        record = Step(1, split, seq, head, step, epcis.payload_hash(payload), bytes(32), when,
                      MEMBER)  # fmt: skip
        digest = record.digest(DOMAIN)
        with self.journal.transaction() as db:
            Journal.insert_steps(
                db, [NewStep(record, digest, MEMBER, SIGNER.sign(digest), payload)]
            )
            Journal.set_head(db, 1, split, seq + 1, digest)
        self.heads[(1, split)] = (seq + 1, digest)
        return event_id

    def pages(self, per_page: int, **params: str) -> list[list[str]]:
        """Every page of the query, following the tokens."""
        args = {k: [v] for k, v in params.items()} | {"perPage": [str(per_page)]}
        out: list[list[str]] = []
        token: str | None = None
        while True:
            page = args | ({"nextPageToken": [token]} if token else {})
            found, token = self.query.query(page)
            out.append([e["eventID"] for e in found])
            if token is None:
                return out


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.set_meta("chain", "test")
    store = EpcisStore(tmp_path / "journal.epcis.sqlite", journal.path, "test")
    yield Index(journal, store, EventQuery(store), {})
    store.close()
    journal.close()


def test_pages_follow_event_time_then_capture_order_without_gaps_or_repeats(
    index: Index,
) -> None:
    # three splits journaled one after another, their events interleaved in time, with ties
    times = {0: [5, 1, 9, 9, 3], 1: [2, 9, 4, 7], 2: [6, 8, 1]}
    made: list[tuple[int, int, str]] = []  # (time, capture order, eventID)
    for split, offsets in times.items():
        for offset in offsets:
            made.append((offset, len(made), index.add(split, T0 + offset)))
    in_time = [e for _, _, e in sorted(made)]
    assert [e for page in index.pages(3) for e in page] == in_time
    assert [len(p) for p in index.pages(3)] == [3, 3, 3, 3]
    newest = index.pages(5, orderDirection="DESC")
    assert [e for page in newest for e in page] == in_time[::-1]
    shipped = [e for t, _, e in sorted(made) if t >= 4]
    got = index.pages(2, GE_eventTime=datetime.fromtimestamp(T0 + 4, UTC).isoformat())
    assert [e for page in got for e in page] == shipped

    # in record time order: as the node recorded them (each newer than the last)
    recorded = index.pages(4, orderBy="recordTime")
    assert [e for page in recorded for e in page] == [e for _, _, e in made]

    # a token holds for its order and direction only, and is refused naming it otherwise
    _, token = index.query.query({"perPage": ["2"]})
    assert token is not None
    for params, field in (
        ({"nextPageToken": [token], "orderDirection": ["DESC"]}, "nextPageToken"),
        ({"nextPageToken": ["YWZ0ZXI6Mw"]}, "nextPageToken"),  # an old-style token
        ({"orderBy": ["bizStep"]}, "orderBy"),
        ({"nextPageToken": [token], "orderBy": ["recordTime"]}, "nextPageToken"),
        ({"orderDirection": ["UP"]}, "orderDirection"),
    ):
        with pytest.raises(QueryParameterError) as refused:
            index.query.query(params)
        assert refused.value.field == field


def test_a_committed_step_is_in_the_next_answer_and_indexed_once(index: Index) -> None:
    first = index.add(0, T0 + 1)
    assert index.pages(10) == [[first]]
    assert index.store.sync() == 0  # nothing new: the check costs no scan
    # committed by the journal's own connection: the very next query sees it
    second = index.add(1, T0 + 2)
    assert index.pages(10) == [[first, second]]

    # many readers at once while steps are committed: each step indexed exactly once
    seen: list[Any] = []

    def reader() -> None:
        for _ in range(20):
            seen.append(index.query.query({"perPage": ["1000"]})[0])

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    added = [index.add(2, T0 + 10 + i) for i in range(30)]
    for t in threads:
        t.join()
    assert index.pages(100) == [[first, second, *added]]
    rows = index.store.read("SELECT event_id, COUNT(*) FROM events GROUP BY event_id")
    assert {n for _, n in rows} == {1} and len(rows) == 32
    assert all(len(answer) <= 32 for answer in seen)


def test_a_schedule_fires_at_the_seconds_it_names() -> None:
    daily = _schedule({"hour": "1", "minute": "5"})  # second left out: 0
    at = datetime(2026, 11, 22, 1, 5, 0, tzinfo=UTC).timestamp()
    assert _fired(daily, at - 1, at + 30) == at
    assert _fired(daily, at, at + 30) is None  # fired already
    assert _fired(daily, at + 1, at + 3600) is None
    weekdays = _schedule({"second": "0,30", "dayOfWeek": "[1-5]"})
    sunday = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC).timestamp()  # a Sunday
    assert _fired(weekdays, sunday - 1, sunday + 60) is None
    assert _fired(weekdays, sunday + 86_400 - 1, sunday + 86_400 + 40) == sunday + 86_400 + 30
    for bad, field in (({"minute": "60"}, "schedule.minute"), ({"hour": "[3-1]"}, "schedule.hour"),
                       ({"week": "1"}, "schedule.week"), ({}, "schedule")):  # fmt: skip
        with pytest.raises(QueryParameterError) as refused:
            _schedule(bad)
        assert refused.value.field == field
