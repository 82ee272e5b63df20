"""Production steps: ingest rules, journal durability, anchoring, on real contracts."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit import admit, new_account
from ledger.core.errors import Conflict, ContractRevert, Forbidden, InvalidInput, NotFound
from ledger.eth.compiler import artifact
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.steps import epcis
from ledger.steps.anchoring import Anchorer, anchor_tree
from ledger.steps.authority import CACHE_SECONDS, Authority
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.ingest import Ingestor, IngestResult, Submission, _Fork, _Pending
from ledger.steps.journal import Journal, NewStep
from ledger.steps.record import Domain
from ledger.steps.signatures import Signer

JOB, SPLIT = 7, 1
T0 = int(time.time()) - 3600


@dataclass
class Env:
    node: Node
    factory: Sender
    journal: Journal
    ingestor: Ingestor
    anchorer: Anchorer
    domain: Domain
    splits: object
    traceability: object

    def writer(self, signer: Signer | None = None, split: int = SPLIT) -> StepWriter:
        return StepWriter(
            signer or Signer(self.factory.account.key),
            self.domain,
            JOB,
            split,
            self.factory.address,
        )


def deploy(node: Node, name: str, *args: object) -> object:
    art = artifact(name)
    receipt = node.sender().deploy(art.abi, art.bytecode, *args)
    return node.chain.w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)


@pytest.fixture
def env(node: Node, tmp_path: Path) -> Env:
    factory = admit(node, int(Role.FACTORY))
    splits = deploy(node, "TestSplits")
    trace = deploy(node, "Traceability", node.consortium.address, splits.address)
    buyer = new_account().address
    for split in (SPLIT, SPLIT + 1):
        node.sender().transact(splits.functions.setSplit(JOB, split, factory.address, buyer))
    journal = Journal(tmp_path / "journal.sqlite")
    domain = Domain(node.chain.chain_id, trace.address)
    authority = Authority(node.consortium, splits)
    ingestor = Ingestor(journal, domain, authority)
    anchorer = Anchorer(node.chain, journal, trace, lambda j, s: factory)
    return Env(node, factory, journal, ingestor, anchorer, domain, splits, trace)


def steps(writer: StepWriter, n: int, start: int = 0) -> list[Submission]:
    return [writer.step(object_event("assembling", T0 + start + i)) for i in range(n)]


def test_accepts_a_chain_of_steps_and_is_idempotent(env: Env) -> None:
    batch = steps(env.writer(), 5)
    result = env.ingestor.ingest(batch)
    assert (result.accepted, result.duplicates) == (5, 0)
    again = env.ingestor.ingest(batch)
    assert (again.accepted, again.duplicates) == (0, 5)
    assert env.journal.count() == 5
    assert env.journal.head(JOB, SPLIT)[0] == 5


def test_payload_is_stored_canonical(env: Env) -> None:
    [sub] = steps(env.writer(), 1)
    env.ingestor.ingest([sub])
    stored = env.journal.steps(JOB, SPLIT)[0]
    payload = env.journal.payload(stored.step.payload_hash)
    assert payload is not None and payload.startswith(b'{"action":"OBSERVE"')


def test_device_key_signs_until_revoked(env: Env) -> None:
    device = new_account()
    c = env.node.consortium
    c.authorize_device(env.factory, device, 0)
    w = env.writer(Signer(device.key))
    authority = env.ingestor.authority
    authority.clock = lambda: 1000.0  # the cache's clock stands still until moved
    env.ingestor.ingest(steps(w, 2))
    c.revoke_device(env.factory, device.address)
    # the answer cached before the revocation stands for CACHE_SECONDS of that clock
    authority.check(JOB, SPLIT, env.factory.address, device.address, T0 + 10)
    authority.clock = lambda: 1000.0 + CACHE_SECONDS  # past the cache, without waiting
    with pytest.raises(Forbidden, match="revoked"):
        env.ingestor.ingest(steps(w, 1, start=10))
    assert env.journal.count() == 2


def test_expired_device_key(env: Env) -> None:
    device = new_account()
    expiry = env.node.chain.w3.eth.get_block("latest")["timestamp"] + 3600
    env.node.consortium.authorize_device(env.factory, device, expiry)
    env.ingestor.clock = lambda: expiry - 60  # received before the expiry
    w = env.writer(Signer(device.key))
    ok = w.step(object_event("assembling", expiry - 100))
    env.ingestor.ingest([ok])
    env.ingestor.clock = lambda: expiry - 10  # received in time, but dated after the expiry
    late = w.step(object_event("packing", expiry + 10))
    with pytest.raises(Forbidden, match="expired"):
        env.ingestor.ingest([late])
    assert env.journal.count() == 1


def test_backdated_step_of_an_expired_device_key_is_refused(env: Env) -> None:
    """A device key past its expiry dates its step before the expiry: the node judges the
    key at the time it receives the step, refuses it, and journals nothing."""
    device = new_account()
    expiry = env.node.chain.w3.eth.get_block("latest")["timestamp"] + 3600
    env.node.consortium.authorize_device(env.factory, device, expiry)
    w = env.writer(Signer(device.key))
    env.ingestor.clock = lambda: expiry - 60
    env.ingestor.ingest([w.step(object_event("assembling", expiry - 100))])
    head = env.journal.head(JOB, SPLIT)

    env.ingestor.clock = lambda: expiry + 60  # the key has expired when the step arrives
    backdated = w.step(object_event("packing", expiry - 30))
    with pytest.raises(Forbidden, match=f"expired at {expiry}") as refused:
        env.ingestor.ingest([backdated])
    assert refused.value.status == 403
    assert "step 0:" in refused.value.message
    assert env.journal.count() == 1 and env.journal.head(JOB, SPLIT) == head


@pytest.mark.parametrize(
    ("mutate", "error", "text"),
    [
        (lambda s: Submission(s.record, "0x" + "11" * 65, s.payload), InvalidInput, "signature"),
        (
            lambda s: Submission(s.record, s.signature[:-2] + "1d", s.payload),
            InvalidInput,
            "canonical",
        ),
        (
            lambda s: Submission({**s.record, "seq": 3}, s.signature, s.payload),
            Forbidden,
            "neither",
        ),
        (
            lambda s: Submission(s.record, s.signature, {**s.payload, "action": "ADD"}),
            InvalidInput,
            "payload hash mismatch",
        ),
        (
            lambda s: Submission(s.record, s.signature, {"type": "ObjectEvent"}),
            InvalidInput,
            "not a valid EPCIS 2.0 event",
        ),
        (lambda s: Submission(s.record, s.signature, "x" * 70_000), InvalidInput, "limit"),
        (
            lambda s: Submission({**s.record, "bizStep": "dancing"}, s.signature, s.payload),
            InvalidInput,
            "not an EPCIS 2.0 bizStep",
        ),
        (
            lambda s: Submission(
                {k: v for k, v in s.record.items() if k != "seq"}, s.signature, s.payload
            ),
            InvalidInput,
            "missing",
        ),
    ],
)
def test_bad_steps_are_refused_and_nothing_stored(env: Env, mutate, error, text: str) -> None:
    [good] = steps(env.writer(), 1)
    with pytest.raises(error, match=text):
        env.ingestor.ingest([mutate(good)])
    assert env.journal.count() == 0


def test_wrong_domain_or_chain_is_refused(env: Env) -> None:
    for wrong in (
        Domain(env.domain.chain_id + 1, env.domain.verifying_contract),
        Domain(env.domain.chain_id, "0x" + "12" * 20),
    ):
        w = StepWriter(Signer(env.factory.account.key), wrong, JOB, SPLIT, env.factory.address)
        with pytest.raises(Forbidden):  # recovers to an unrelated key
            env.ingestor.ingest(steps(w, 1))
    assert env.journal.count() == 0


def test_sequence_rules(env: Env) -> None:
    w = env.writer()
    first = steps(w, 3)
    env.ingestor.ingest(first[:1])
    with pytest.raises(InvalidInput, match="sequence gap"):
        env.ingestor.ingest(first[2:])
    env.ingestor.ingest(first[1:])
    # a step that skips its predecessor's hash
    bad = StepWriter(
        w.signer, env.domain, JOB, SPLIT, env.factory.address, next_seq=3, head=b"\x01" * 32
    ).step(object_event("packing", T0 + 50))
    with pytest.raises(InvalidInput, match="previous hash mismatch"):
        env.ingestor.ingest([bad])
    assert env.journal.count() == 3


def test_equivocation_is_refused_and_kept(env: Env) -> None:
    w = env.writer()
    env.ingestor.ingest(steps(w, 2))
    fork = StepWriter(
        w.signer,
        env.domain,
        JOB,
        SPLIT,
        env.factory.address,
        next_seq=1,
        head=env.journal.hash_at(JOB, SPLIT, 0) or b"",
    )
    other = fork.step(object_event("inspecting", T0 + 99))
    with pytest.raises(Conflict, match="equivocation"):
        env.ingestor.ingest([other])
    [evidence] = env.journal.equivocations()
    assert evidence.seq == 1 and evidence.existing_hash == env.journal.hash_at(JOB, SPLIT, 1)
    assert env.journal.count() == 2


def test_batch_is_all_or_nothing(env: Env) -> None:
    batch = steps(env.writer(), 4)
    batch[2] = Submission(batch[2].record, batch[2].signature, {**batch[2].payload, "ex:x": 1})
    with pytest.raises(InvalidInput, match="step 2: payload hash mismatch"):
        env.ingestor.ingest(batch)
    assert env.journal.count() == 0


def test_concurrent_batches_share_a_commit_and_are_refused_alone(env: Env) -> None:
    """Batches stored in one transaction (group commit) keep their own all-or-nothing
    outcome: a refused batch, an equivocation and a full disk each leave the others'
    outcomes and the journal as if every batch had had its own transaction."""
    w1, w2 = env.writer(), env.writer(split=SPLIT + 1)
    a, b = steps(w1, 6), steps(w2, 4)
    env.ingestor.ingest(a[:1])
    fork = StepWriter(
        w1.signer, env.domain, JOB, SPLIT, env.factory.address, next_seq=0, head=bytes(32)
    ).step(object_event("inspecting", T0 + 77))
    verify = env.ingestor.verify
    group = [
        _Pending([verify(x) for x in a[1:3]]),
        _Pending([verify(x) for x in a[4:]]),  # a gap: step 3 has not arrived
        _Pending([verify(x) for x in b]),
        _Pending([verify(x) for x in a[3:4]]),  # after the first batch, in the same commit
        _Pending([verify(fork)]),
        _Pending([verify(x) for x in a[:2]]),  # stored already or earlier in the group
    ]
    env.ingestor._commit(group)
    ok = [p.outcome for p in group]
    assert [(r.accepted, r.duplicates) for r in ok if isinstance(r, IngestResult)] == [
        (2, 0),
        (4, 0),
        (1, 0),
        (0, 2),
    ]
    assert isinstance(ok[1], InvalidInput) and "sequence gap" in ok[1].message
    assert isinstance(ok[4], _Fork)
    assert env.journal.count() == 1 + 2 + 4 + 1
    assert env.journal.head(JOB, SPLIT)[0] == 4 and env.journal.head(JOB, SPLIT + 1)[0] == 4

    # the commit fails (the database is closed under it): every batch of the group is
    # refused and nothing is stored
    later = [_Pending([verify(x) for x in a[4:]])]
    before = env.journal.count()
    real = env.journal.transaction

    def failing() -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    env.journal.transaction = failing  # type: ignore[method-assign]
    try:
        env.ingestor._commit(later)
    finally:
        env.journal.transaction = real  # type: ignore[method-assign]
    assert isinstance(later[0].outcome, sqlite3.OperationalError)
    assert env.journal.count() == before

    # many clients at once: every batch acknowledged once stored, in its split's order
    env.ingestor.ingest(a[4:])
    results: list[Any] = []

    def client(split: int) -> None:
        head = env.journal.head(JOB, split)
        w = StepWriter(w1.signer, env.domain, JOB, split, env.factory.address, *head)
        for _ in range(3):
            results.append(env.ingestor.ingest([w.step(object_event("packing", T0 + 500))]))

    threads = [threading.Thread(target=client, args=(s,)) for s in (SPLIT, SPLIT + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.accepted for r in results] == [1] * 6
    assert env.journal.head(JOB, SPLIT)[0] == 9 and env.journal.head(JOB, SPLIT + 1)[0] == 7


def test_someone_elses_split(env: Env) -> None:
    other = admit(env.node, int(Role.FACTORY))
    w = StepWriter(Signer(other.account.key), env.domain, JOB, SPLIT, other.address)
    with pytest.raises(Forbidden, match="belongs to"):
        env.ingestor.ingest(steps(w, 1))
    w = StepWriter(Signer(other.account.key), env.domain, JOB, 99, other.address)
    with pytest.raises(NotFound, match="no split 99"):
        env.ingestor.ingest(steps(w, 1))


def test_anchor_ranges_are_contiguous_and_verifiable_on_chain(env: Env) -> None:
    env.ingestor.ingest(steps(env.writer(), 10))
    first = env.anchorer.anchor(JOB, SPLIT, max_steps=4)
    rest = env.anchorer.anchor_all(JOB, SPLIT, max_steps=4)
    ranges = [(a.from_seq, a.to_seq) for a in [first, *rest]]
    assert ranges == [(0, 3), (4, 7), (8, 9)]
    assert env.anchorer.anchor(JOB, SPLIT) is None
    stored = env.journal.steps(JOB, SPLIT)
    assert {s.anchor_index for s in stored} == {0, 1, 2}
    tree = anchor_tree([(s.step.seq, s.step_hash) for s in stored[4:8]])
    head = stored[7].step_hash
    verify = env.traceability.functions.verifyStep
    for i, s in enumerate(stored[4:8]):
        assert verify(JOB, SPLIT, 1, tree.root, head, s.step.seq, s.step_hash, tree.proof(i)).call()
    assert not verify(
        JOB, SPLIT, 1, tree.root, head, stored[0].step.seq, stored[0].step_hash, tree.proof(0)
    ).call()
    assert not verify(
        JOB, SPLIT, 0, tree.root, head, stored[4].step.seq, stored[4].step_hash, tree.proof(0)
    ).call()  # right proof, wrong anchor


Z = bytes(32)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (lambda h: (JOB, SPLIT, 1, 1, Z, Z, h, h), "SequenceGap"),
        (lambda h: (JOB, SPLIT, 0, 0, Z, b"\x05" * 32, h, h), "HeadMismatch"),
        (lambda h: (JOB, SPLIT, 0, 0, Z, Z, Z, h), "ZeroHash"),
        (lambda h: (JOB, SPLIT, 0, 2, Z, Z, h, h), None),  # control: a valid first anchor
        (lambda h: (JOB, 77, 0, 0, Z, Z, h, h), "UnknownSplit"),
    ],
)
def test_contract_refuses_bad_ranges(env: Env, args, error: str | None) -> None:
    fn = env.traceability.functions.anchor(*args(b"\x09" * 32))
    if error is None:
        assert env.factory.transact(fn)["status"] == 1
        return
    with pytest.raises(ContractRevert) as refused:
        env.factory.transact(fn)
    assert refused.value.error == error


def test_contract_refuses_overlap_and_outsiders(env: Env) -> None:
    h, r = b"\x09" * 32, b"\x0a" * 32
    anchor = env.traceability.functions.anchor
    env.factory.transact(anchor(JOB, SPLIT, 0, 3, Z, Z, h, r))
    with pytest.raises(ContractRevert) as overlap:
        env.factory.transact(anchor(JOB, SPLIT, 2, 5, r, h, h, r))
    assert overlap.value.error == "RangeOverlap"
    with pytest.raises(ContractRevert) as broken:  # names a head that was never anchored
        env.factory.transact(anchor(JOB, SPLIT, 4, 5, r, b"\x0b" * 32, h, r))
    assert broken.value.error == "HeadMismatch"
    outsider = env.node.add_signer(new_account())
    with pytest.raises(ContractRevert) as refused:
        outsider.transact(anchor(JOB, SPLIT, 4, 5, r, h, h, r))
    assert refused.value.error == "NotSplitFactory"
    env.factory.transact(anchor(JOB, SPLIT, 4, 5, r, h, h, r))  # the right continuation


def test_a_later_anchor_still_asks_the_consortium_who_may_anchor(env: Env) -> None:
    """The split's factory is kept after its first anchor; its membership is asked anew
    on every anchor: a device key anchors for it only while bound, and a suspended
    factory not at all. Each refusal leaves the split's trace as it was."""
    h, r = b"\x09" * 32, b"\x0a" * 32
    anchor, trace = env.traceability.functions.anchor, env.traceability.functions.trace
    env.factory.transact(anchor(JOB, SPLIT, 0, 3, Z, Z, h, r))
    device = new_account()
    c = env.node.consortium
    c.authorize_device(env.factory, device, 0)
    by_device = env.node.add_signer(device)
    by_device.transact(anchor(JOB, SPLIT, 4, 5, r, h, r, h))
    assert tuple(trace(JOB, SPLIT).call()) == (6, 2)
    c.revoke_device(env.factory, device.address)
    for sender in (by_device, env.node.add_signer(new_account())):
        with pytest.raises(ContractRevert) as refused:
            sender.transact(anchor(JOB, SPLIT, 6, 7, h, r, h, r))
        assert refused.value.error == "NotSplitFactory"
    c.propose_suspend(env.node.sender(), env.factory.address)
    with pytest.raises(ContractRevert) as suspended:
        env.factory.transact(anchor(JOB, SPLIT, 6, 7, h, r, h, r))
    assert suspended.value.error == "NotSplitFactory"
    assert tuple(trace(JOB, SPLIT).call()) == (6, 2)


def test_submitted_anchor_survives_a_crash(env: Env) -> None:
    """A crash after the anchor tx was persisted and sent, before its receipt was read."""
    env.ingestor.ingest(steps(env.writer(), 6))

    class Crash(Exception):
        pass

    real = env.factory._send

    def send_then_crash(tx, before_send=None):
        real(tx, before_send)
        raise Crash

    env.factory._send = send_then_crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        env.anchorer.anchor(JOB, SPLIT, max_steps=4)
    env.factory._send = real  # type: ignore[method-assign]
    assert [r["state"] for r in env.journal.anchor_rows()] == ["submitted"]
    restarted = Anchorer(
        env.node.chain, Journal(env.journal.path), env.traceability, lambda j, s: env.factory
    )
    restarted.settle()
    assert [r["state"] for r in restarted.journal.anchor_rows()] == ["mined"]
    rest = restarted.anchor_all(JOB, SPLIT, max_steps=4)
    assert [(a.from_seq, a.to_seq) for a in rest] == [(4, 5)]
    assert tuple(env.traceability.functions.trace(JOB, SPLIT).call()) == (6, 2)


def test_a_journal_with_payloads_ordered_by_hash_is_moved_to_the_insertion_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    signer = Signer(bytes(31) + b"\x07")
    writer = StepWriter(signer, Domain(1, "0x" + "11" * 20), JOB, SPLIT, signer.address)
    stored = []
    for i in range(5):
        event = object_event("assembling", T0 + i)
        canonical = epcis.canonical(event)
        step, digest = writer.next(event, canonical)
        stored.append(NewStep(step, digest, signer.address, signer.sign(digest), canonical))
    with journal.transaction() as db:
        Journal.insert_steps(db, stored)
        # the form journals were written in before: payloads keyed by their hash
        db.execute("ALTER TABLE payloads RENAME TO old")
        db.execute(
            "CREATE TABLE payloads (hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID"
        )
        db.execute("INSERT INTO payloads SELECT hash, data FROM old")
        db.execute("DROP TABLE old")
    journal.close()

    upgraded = Journal(path)
    again = Journal(path)  # opened again: already in the new form, left as it is
    for new in stored:
        assert upgraded.payload(new.step.payload_hash) == new.payload
        assert again.payload(new.step.payload_hash) == new.payload
    sql = upgraded._db.execute("SELECT sql FROM sqlite_master WHERE name='payloads'").fetchone()
    assert "WITHOUT ROWID" not in sql[0] and "id INTEGER PRIMARY KEY" in sql[0]
    assert upgraded.count() == 5
    with upgraded.transaction() as db:  # a payload stored twice is kept once
        db.executemany(
            "INSERT OR IGNORE INTO payloads (hash, data) VALUES (?, ?)",
            [(n.step.payload_hash, n.payload) for n in stored],
        )
    assert upgraded._db.execute("SELECT COUNT(*) FROM payloads").fetchone()[0] == 5
    upgraded.close()
    again.close()
