"""The dispute process on real contracts: who may open, evidence until its deadline, the
frozen payout, who may vote, the median ruling the Settlement applies (escrow conserved),
the lapse after the ruling deadline, the audit's dispute history, the deployment link and
the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in

from api.app import create_app
from kit import (
    DAY,
    PRICE,
    Parties,
    admit,
    create,
    four_splits,
    in_production,
    parties,
    refused,
    state,
    time_travel,
)
from ledger.audit.engine import audit, contracts_of
from ledger.core.errors import DeploymentError, InvalidInput
from ledger.core.keys import Keyring
from ledger.disputes.client import DisputeStatus, Fault
from ledger.eth import deployment as deploy_mod
from ledger.eth.chain import Backend, connect
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import JobStatus, SplitStatus
from ledger.orders.settlement import SettlementClient

EVIDENCE = "0x" + "e1" * 32
ANSWER = "0x" + "a2" * 32
PAINTING = PRICE * 230_000 // 10**6  # the amount of split 1 of four_splits()
EVIDENCE_PERIOD = 3 * DAY  # the deployment defaults (see docs/disputes.md)
RULING_PERIOD = 7 * DAY


@dataclass
class Case:
    """An order of four splits in production; split 1 (painting) is delivered."""

    node: Node
    p: Parties
    job: int
    auditors: list[Sender]

    @property
    def painter(self) -> Sender:
        return self.p.factories[1]


@pytest.fixture
def case(node: Node) -> Case:
    p = parties(node)
    job = in_production(node, p)
    node.jobs.deliver(p.factories[1], job, 1)
    auditors = [admit(node, int(Role.AUDITOR)) for _ in range(2)]
    return Case(node, p, job, auditors)


def snapshot(node: Node, job: int) -> tuple[Any, ...]:
    """What a refused dispute call must leave untouched."""
    d = node.disputes
    frozen = d.contract.functions.frozenSplits(job).call()
    return state(node, job), d.count(), frozen, [x.model_dump(mode="json") for x in d.list()]


def open_on_painting(c: Case) -> int:
    return c.node.disputes.open(c.p.buyer, c.job, 1, "paint flaking after one week", EVIDENCE)


def chain_now(node: Node) -> int:
    return int(node.chain.w3.eth.get_block("latest")["timestamp"])


def test_only_a_party_opens_and_one_dispute_at_a_time(case: Case) -> None:
    node, p, job, d = case.node, case.p, case.job, case.node.disputes
    before = snapshot(node, job)
    outsider = admit(node, int(Role.BUYER))
    for stranger in (outsider, case.auditors[0], p.factories[0], p.designer):
        err = refused("NotJobParty", d.open, stranger, job, 1, "not mine", EVIDENCE)
        assert stranger.address.lower() in err.message.lower()
    refused("UnknownJob", d.open, p.buyer, 99, 0, "no such job", EVIDENCE)
    refused("UnknownSplit", d.open, p.buyer, job, 9, "no such split", EVIDENCE)
    with pytest.raises(InvalidInput, match="reason"):
        d.open(p.buyer, job, 1, "  ", EVIDENCE)
    with pytest.raises(InvalidInput, match="evidence hash"):
        d.open(p.buyer, job, 1, "paint", "0x" + "00" * 32)
    with pytest.raises(InvalidInput, match="bytes"):
        d.open(p.buyer, job, 1, "x" * 2049, EVIDENCE)
    raw = d.contract.functions.openDispute
    refused("EmptyReason", p.buyer.transact, raw(job, 1, "", bytes.fromhex("e1" * 32)))
    refused("ZeroHash", p.buyer.transact, raw(job, 1, "paint", b"\x00" * 32))
    refused("TextTooLong", p.buyer.transact, raw(job, 1, "x" * 2049, bytes.fromhex("e1" * 32)))
    assert snapshot(node, job) == before

    dispute_id = open_on_painting(case)
    opened = d.show(dispute_id)
    assert (opened.id, opened.job_id, opened.split_id) == (1, job, 1)
    assert opened.claimant == p.buyer.address and opened.respondent == case.painter.address
    assert opened.status is DisputeStatus.OPEN and opened.phase == "evidence"
    assert opened.reason == "paint flaking after one week" and opened.evidence_hash == EVIDENCE
    assert opened.evidence_deadline == opened.opened_at + EVIDENCE_PERIOD
    assert opened.ruling_deadline == opened.evidence_deadline + RULING_PERIOD
    assert d.is_frozen(job, 1) and not d.is_frozen(job, 0)
    assert d.open_dispute_of(job, 1) == dispute_id

    before = snapshot(node, job)
    for party in (p.buyer, case.painter):
        err = refused("DisputeAlreadyOpen", d.open, party, job, 1, "again", EVIDENCE)
        assert "already under open dispute 1" in err.message
    assert snapshot(node, job) == before
    # the other splits stay disputable: the machining factory disputes its own (accepted) split
    second = d.open(p.factories[0], job, 0, "drawings arrived late", EVIDENCE)
    assert d.show(second).respondent == p.buyer.address
    assert [x.id for x in d.list(job)] == [1, 2] and d.list(99) == []
    assert [x.id for x in d.list(status=DisputeStatus.RULED)] == []


def test_only_a_split_a_ruling_can_close_is_disputable(node: Node) -> None:
    p = parties(node, factories=3)
    job = create(node, p)
    node.jobs.fund(p.buyer, job)
    node.jobs.split(p.buyer, job, four_splits(p))
    err = refused("JobNotInStatus", node.disputes.open, p.buyer, job, 0, "too early", EVIDENCE)
    assert "is split" in err.message  # production has not started: nothing to rule on
    for i, spec in enumerate(four_splits(p)):
        node.jobs.accept(node.sender(spec.factory), job, i)
    node.jobs.deliver(p.factories[1], job, 1)
    node.jobs.accept_delivery(p.buyer, job, 1)
    err = refused("SplitNotInStatus", node.disputes.open, p.buyer, job, 1, "paid", EVIDENCE)
    assert "is paid" in err.message
    assert node.disputes.count() == 0


def test_evidence_comes_from_the_parties_until_its_deadline(case: Case) -> None:
    node, p, d = case.node, case.p, case.node.disputes
    dispute_id = open_on_painting(case)
    before = snapshot(node, case.job)
    for stranger in (case.auditors[0], p.factories[0], p.designer):
        refused("NotDisputeParty", d.add_evidence, stranger, dispute_id, ANSWER, "ipfs://x")
    with pytest.raises(InvalidInput):
        d.add_evidence(p.buyer, dispute_id, "0x" + "00" * 32)
    refused("UnknownDispute", d.add_evidence, p.buyer, 7, ANSWER)
    assert snapshot(node, case.job) == before

    d.add_evidence(p.buyer, dispute_id, "0x" + "b3" * 32, "https://buyer.example/photos.zip")
    assert d.show(dispute_id).phase == "evidence"  # the respondent has not answered yet
    d.add_evidence(case.painter, dispute_id, ANSWER, "ipfs://bafy-qc-report")
    shown = d.show(dispute_id)
    assert shown.phase == "voting" and shown.respondent_heard
    assert [(e.party, e.evidence_hash, e.uri) for e in shown.evidence] == [
        (p.buyer.address, "0x" + "b3" * 32, "https://buyer.example/photos.zip"),
        (case.painter.address, ANSWER, "ipfs://bafy-qc-report"),
    ]

    time_travel(node, EVIDENCE_PERIOD + 60)
    before = snapshot(node, case.job)
    for party in (p.buyer, case.painter):
        err = refused("EvidencePeriodOver", d.add_evidence, party, dispute_id, ANSWER, "late")
        assert f"dispute {dispute_id}" in err.message
    assert snapshot(node, case.job) == before


def test_only_auditors_outside_the_job_vote_and_only_once(case: Case) -> None:
    node, p, d = case.node, case.p, case.node.disputes
    dispute_id = open_on_painting(case)
    first, second = case.auditors
    refused("VotingNotOpen", d.vote, first, dispute_id, 500_000, "factory")  # not yet heard
    d.add_evidence(case.painter, dispute_id, ANSWER, "ipfs://answer")

    before = snapshot(node, case.job)
    outsider = admit(node, int(Role.FACTORY | Role.BUYER))
    for not_auditor in (outsider, p.factories[2], node.sender()):
        refused("MissingRole", d.vote, not_auditor, dispute_id, 500_000, "none")
    # members of the job who also hold the auditor role: the buyer, the designer, a factory
    # of another split of the same order
    for party in (p.buyer, p.designer, p.factories[2]):
        roles = node.consortium.member(party.address).roles | int(Role.AUDITOR)
        node.consortium.propose_set_roles(node.sender(), party.address, roles)
        err = refused("AuditorIsParty", d.vote, party, dispute_id, 500_000, "buyer")
        assert "may not vote" in err.message
    suspended = admit(node, int(Role.AUDITOR))
    node.consortium.propose_suspend(node.sender(), suspended.address)
    refused("MissingRole", d.vote, suspended, dispute_id, 500_000, "none")
    with pytest.raises(InvalidInput, match="payout"):
        d.vote(first, dispute_id, 1_000_001, "factory")
    with pytest.raises(InvalidInput, match="fault"):
        d.vote(first, dispute_id, 500_000, "designer")
    raw = d.contract.functions.vote(dispute_id, 1_000_001, 2)
    refused("InvalidPayoutShare", first.transact, raw)
    state_only = snapshot(node, case.job)
    assert state_only[:3] == before[:3]  # role changes aside, nothing moved

    d.vote(first, dispute_id, 400_000, "factory")
    assert d.has_voted(dispute_id, first.address) and not d.has_voted(dispute_id, second.address)
    refused("AlreadyVoted", d.vote, first, dispute_id, 300_000, "factory")
    shown = d.show(dispute_id)
    assert shown.status is DisputeStatus.OPEN and shown.votes == 1 and d.is_frozen(case.job, 1)
    assert [(v.auditor, v.payout_ppm, v.fault) for v in shown.vote_list] == [
        (first.address, 400_000, Fault.FACTORY)
    ]


def test_the_frozen_payout_waits_for_the_ruling_which_conserves_escrow(case: Case) -> None:
    node, p, job, d, s = case.node, case.p, case.job, case.node.disputes, case.node.settlement
    dispute_id = open_on_painting(case)
    before = snapshot(node, job)
    err = refused("SplitFrozen", node.jobs.accept_delivery, p.buyer, job, 1)
    assert "frozen" in err.message
    assert snapshot(node, job) == before
    assert node.jobs.view(job).splits[1].status is SplitStatus.DELIVERED
    # only the disputed split is frozen
    node.jobs.deliver(p.factories[0], job, 0)
    node.jobs.accept_delivery(p.buyer, job, 0)

    d.add_evidence(case.painter, dispute_id, ANSWER, "ipfs://answer")
    totals = s.totals()
    buyer_credit, painter_credit = s.balance(p.buyer.address), s.balance(case.painter.address)
    first, second = case.auditors
    d.vote(first, dispute_id, 600_000, "factory")
    receipt = d.vote(second, dispute_id, 700_000, "buyer")

    payout = PAINTING * 650_000 // 10**6  # median of two votes: their mean, rounded down
    refund = PAINTING - payout
    ruled = d.show(dispute_id)
    assert ruled.status is DisputeStatus.RULED and ruled.phase == "ruled"
    assert (ruled.payout_ppm, ruled.payout, ruled.refund) == (650_000, payout, refund)
    assert ruled.fault is Fault.NONE  # one vote each way: no majority
    assert ruled.closed_tx == receipt["transactionHash"].to_0x_hex()
    [event] = d.logs("DisputeRuled", {"disputeId": dispute_id})
    assert (event["args"]["payout"], event["args"]["refund"], event["args"]["votes"]) == (
        payout,
        refund,
        2,
    )
    after = s.totals()
    assert after.conserved
    assert after.released - totals.released == payout
    assert after.refunded - totals.refunded == refund
    assert totals.held - after.held == PAINTING
    assert s.balance(case.painter.address) - painter_credit == payout
    assert s.balance(p.buyer.address) - buyer_credit == refund
    view = node.jobs.view(job)
    assert view.splits[1].status is SplitStatus.RULED and view.splits[1].payout == payout
    assert not d.is_frozen(job, 1) and d.open_dispute_of(job, 1) is None

    before = snapshot(node, job)
    third = admit(node, int(Role.AUDITOR))
    err = refused("DisputeNotOpen", d.vote, third, dispute_id, 0, "buyer")
    assert "is ruled" in err.message
    refused("DisputeNotOpen", d.add_evidence, p.buyer, dispute_id, ANSWER)
    refused("DisputeNotOpen", d.lapse, p.buyer, dispute_id)
    refused("SplitNotInStatus", node.jobs.accept_delivery, p.buyer, job, 1)
    assert snapshot(node, job) == before


def _node_with_quorum(tmp_path: Path, quorum: int) -> Node:
    chain = connect(Backend.EMBEDDED)
    operator = Account.create()
    params = deploy_mod.GovernanceParams(council=(operator.address,), dispute_quorum=quorum)
    record = deploy_mod.deploy(chain, Sender(chain, operator), params)
    node = Node(chain, record, Keyring(tmp_path / "keystore"), tmp_path)
    node.add_signer(operator)
    return node


def test_three_votes_rule_by_their_median_and_majority(tmp_path: Path) -> None:
    node = _node_with_quorum(tmp_path, 3)
    try:
        assert node.disputes.params()["quorum"] == 3
        p = parties(node)
        job = in_production(node, p)
        node.jobs.deliver(p.factories[1], job, 1)
        dispute_id = node.disputes.open(p.factories[1], job, 1, "buyer refuses", EVIDENCE)
        node.disputes.add_evidence(p.buyer, dispute_id, ANSWER)  # the buyer answers
        auditors = [admit(node, int(Role.AUDITOR)) for _ in range(3)]
        votes = [(900_000, "factory"), (100_000, "buyer"), (500_000, "factory")]
        for auditor, (share, fault) in zip(auditors, votes, strict=True):
            assert node.disputes.show(dispute_id).status is DisputeStatus.OPEN
            node.disputes.vote(auditor, dispute_id, share, fault)
        ruled = node.disputes.show(dispute_id)
        assert (ruled.payout_ppm, ruled.fault, ruled.votes) == (500_000, Fault.FACTORY, 3)
        assert ruled.payout == PAINTING // 2
        assert node.settlement.totals().conserved
    finally:
        node.close()


def test_after_the_ruling_deadline_the_dispute_lapses_and_the_split_is_paid(case: Case) -> None:
    node, p, job, d = case.node, case.p, case.job, case.node.disputes
    dispute_id = open_on_painting(case)
    refused("RulingPeriodNotOver", d.lapse, p.buyer, dispute_id)
    d.add_evidence(case.painter, dispute_id, ANSWER)
    d.vote(case.auditors[0], dispute_id, 0, "factory")  # one vote of the two needed

    time_travel(node, EVIDENCE_PERIOD + RULING_PERIOD + 60)
    assert d.show(dispute_id).phase == "lapsable"
    before = snapshot(node, job)
    err = refused("RulingPeriodOver", d.vote, case.auditors[1], dispute_id, 0, "factory")
    assert "can only lapse" in err.message
    assert snapshot(node, job) == before
    anyone = admit(node, int(Role.BUYER))
    d.lapse(anyone, dispute_id)
    lapsed = d.show(dispute_id)
    assert lapsed.status is DisputeStatus.LAPSED and lapsed.votes == 1
    assert lapsed.payout is None and lapsed.closed_tx
    assert len(d.logs("DisputeLapsed", {"jobId": job})) == 1
    assert not d.is_frozen(job, 1)
    refused("DisputeNotOpen", d.lapse, anyone, dispute_id)
    # one dispute per party and split: the buyer cannot freeze the split again
    err = refused("AlreadyDisputed", d.open, p.buyer, job, 1, "still flaking", EVIDENCE)
    assert "one per party" in err.message

    credit = node.settlement.balance(case.painter.address)
    node.jobs.accept_delivery(p.buyer, job, 1)  # the default: the split follows its course
    assert node.settlement.balance(case.painter.address) - credit == PAINTING
    assert node.settlement.totals().conserved


def test_a_frozen_split_blocks_the_expiry_refund_until_the_dispute_closes(node: Node) -> None:
    p = parties(node)
    job = create(node, p, deadline=chain_now(node) + 5 * DAY)
    node.jobs.fund(p.buyer, job)
    specs = four_splits(p)
    node.jobs.split(p.buyer, job, specs)
    for i, spec in enumerate(specs):
        node.jobs.accept(node.sender(spec.factory), job, i)
    # the machining factory says the buyer's drawings never came: it disputes its split
    dispute_id = node.disputes.open(p.factories[0], job, 0, "no drawings received", EVIDENCE)
    time_travel(node, 6 * DAY)
    before = snapshot(node, job)
    refused("SplitFrozen", node.jobs.expire, p.buyer, job)
    assert snapshot(node, job) == before and node.jobs.status(job) is JobStatus.IN_PRODUCTION

    time_travel(node, EVIDENCE_PERIOD + RULING_PERIOD)
    node.disputes.lapse(p.buyer, dispute_id)
    refunded = node.settlement.balance(p.buyer.address)
    node.jobs.expire(p.buyer, job)
    assert node.jobs.status(job) is JobStatus.EXPIRED
    assert node.settlement.balance(p.buyer.address) - refunded == PRICE
    assert node.settlement.totals().conserved


def test_the_audit_report_lists_the_dispute_history(case: Case) -> None:
    node, p, d = case.node, case.p, case.node.disputes
    dispute_id = open_on_painting(case)
    d.add_evidence(case.painter, dispute_id, ANSWER, "ipfs://answer")
    for auditor, share in zip(case.auditors, (200_000, 400_000), strict=True):
        d.vote(auditor, dispute_id, share, "factory")
    report = audit(contracts_of(node), case.job)
    assert report["contracts"]["Disputes"] == d.address
    history = [(e["event"], e["args"].get("splitId")) for e in report["disputes"]]
    assert history == [
        ("DisputeOpened", 1),
        ("EvidenceSubmitted", 1),
        ("VoteCast", 1),
        ("VoteCast", 1),
        ("DisputeRuled", 1),
    ]
    assert report["disputes"][0]["args"]["claimant"] == p.buyer.address
    assert report["disputes"][-1]["args"]["payoutPpm"] == 300_000
    codes = {f["code"] for f in report["findings"]}
    assert {"dispute-opened", "dispute-ruled"} <= codes
    assert "escrow-imbalance" not in codes
    assert report["money"]["refunded"] == PAINTING - PAINTING * 300_000 // 10**6


def test_a_deployment_without_disputes_gets_them_linked_on_the_next_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = connect(Backend.EMBEDDED)
    operator = Sender(chain, Account.create())
    params = deploy_mod.GovernanceParams(council=(operator.address,))
    with monkeypatch.context() as m:  # a deployment made before Disputes existed
        m.setitem(deploy_mod.CONDITIONS, "Disputes", lambda _chain, _params: False)
        record = deploy_mod.deploy(chain, operator, params)
    assert "Disputes" not in record.contracts
    settlement = SettlementClient(deploy_mod.bind(chain, record, "Settlement"), chain)
    assert settlement.links()["disputes"] is None
    deployed: list[str] = []
    record = deploy_mod.deploy(chain, operator, params, existing=record, progress=deployed.append)
    assert deployed == ["Disputes"]
    assert settlement.links()["disputes"] == record.address("Disputes")
    # a Settlement that already names another disputes address is not silently relinked
    del record.contracts["Disputes"]
    with pytest.raises(DeploymentError, match="--redeploy"):
        deploy_mod.deploy(chain, operator, params, existing=record)
    chain.close()


# --- HTTP ---------------------------------------------------------------------------------
@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


def test_the_api_opens_takes_evidence_and_votes(client: TestClient, case: Case) -> None:
    node, p, job = case.node, case.p, case.job
    buyer = sign_in(client, node, p.buyer.account)
    body = {"job_id": job, "split_id": 1, "reason": "paint flaking", "evidence_hash": EVIDENCE}
    assert_problem(client.post("/disputes", json=body), 401)
    assert_problem(client.post("/disputes", json={**body, "split_id": 64}, headers=buyer), 422)
    auditor = sign_in(client, node, case.auditors[0].account)
    problem = assert_problem(client.post("/disputes", json=body, headers=auditor), 403)
    assert problem["detail"].startswith("this needs the factory or buyer role")
    stranger = sign_in(client, node, p.factories[0].account)  # a factory, not of this split
    problem = assert_problem(client.post("/disputes", json=body, headers=stranger), 409)
    assert problem["error"] == "NotJobParty"

    resp = client.post("/disputes", json=body, headers=buyer)
    assert resp.status_code == 201, resp.text
    opened = resp.json()
    assert (opened["id"], opened["phase"], opened["claimant"]) == (1, "evidence", p.buyer.address)
    problem = assert_problem(client.post("/disputes", json=body, headers=buyer), 409)
    assert problem["error"] == "DisputeAlreadyOpen"
    too_early = client.post("/disputes/1/lapse", headers=buyer)
    assert assert_problem(too_early, 409)["error"] == "RulingPeriodNotOver"

    painter = sign_in(client, node, case.painter.account)
    resp = client.post(
        "/disputes/1/evidence", json={"evidence_hash": ANSWER, "uri": "ipfs://a"}, headers=painter
    )
    assert resp.status_code == 200 and resp.json()["phase"] == "voting"
    for auditor, share in zip(case.auditors, (500_000, 500_000), strict=True):
        headers = sign_in(client, node, auditor.account)
        vote = {"payout_ppm": share, "fault": "factory"}
        resp = client.post("/disputes/1/votes", json=vote, headers=headers)
        assert resp.status_code == 200, resp.text
    ruled = resp.json()
    assert ruled["status"] == "ruled" and ruled["ruling"] == {
        "payout_ppm": 500_000,
        "payout": PAINTING // 2,
        "refund": PAINTING - PAINTING // 2,
        "fault": "factory",
    }
    assert [v["payout_ppm"] for v in ruled["vote_list"]] == [500_000, 500_000]
    assert client.get("/disputes/1").json() == ruled
    assert [d["id"] for d in client.get(f"/disputes?job={job}&status=ruled").json()] == [1]
    assert client.get("/disputes?status=open").json() == []
    assert_problem(client.get("/disputes/2"), 404)
    assert_problem(client.post("/disputes/1/votes", json={"payout_ppm": 2e6}, headers=buyer), 422)
    assert node.settlement.totals().conserved


def test_the_api_lapses_only_with_the_callers_own_key(client: TestClient, case: Case) -> None:
    """Lapse is open to any member, but the node never signs it with another key: not the
    operator's, not a party's. Non-members get no token to ask with."""
    node, p = case.node, case.p
    dispute_id = open_on_painting(case)
    time_travel(node, EVIDENCE_PERIOD + RULING_PERIOD + 60)
    outsider = Account.create()  # an auditor whose key this node does not hold
    node.consortium.propose_admit(node.sender(), outsider.address, int(Role.AUDITOR))
    headers = sign_in(client, node, outsider)
    before = snapshot(node, case.job)
    problem = assert_problem(client.post(f"/disputes/{dispute_id}/lapse", headers=headers), 403)
    assert "does not hold the key" in problem["detail"] and "POST /tx" in problem["detail"]
    assert snapshot(node, case.job) == before
    assert node.disputes.show(dispute_id).status is DisputeStatus.OPEN

    resp = client.post(
        f"/disputes/{dispute_id}/lapse", headers=sign_in(client, node, p.buyer.account)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "lapsed"
    lapse_logs = node.disputes.logs("DisputeLapsed")
    assert [log["transactionHash"] for log in lapse_logs]
    tx = node.chain.w3.eth.get_transaction(lapse_logs[-1]["transactionHash"])
    assert tx["from"] == p.buyer.address
