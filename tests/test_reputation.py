"""A factory's reputation from the chain: on-time and late splits, disputes against it and
lost, what it was paid; the same figures over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from kit import DAY, FEE_PPM, PRICE, ROYALTY_PPM, Parties, admit, create, parties, time_travel
from ledger.disputes import reputation
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec

WHOLE = 1_000_000 - ROYALTY_PPM - FEE_PPM  # every factory share of a one-split order
EVIDENCE = "0x" + "e1" * 32


def chain_now(node: Node) -> int:
    return int(node.chain.w3.eth.get_block("latest")["timestamp"])


def order(node: Node, p: Parties, specs: list[SplitSpec], days: int) -> int:
    """An order due in `days` (chain time) whose factories all accepted their splits."""
    job = create(node, p, deadline=chain_now(node) + days * DAY)
    node.jobs.fund(p.buyer, job)
    node.jobs.split(p.buyer, job, specs)
    for i, spec in enumerate(specs):
        node.jobs.accept(node.sender(spec.factory), job, i)
    return job


def rule(node: Node, auditors: list[Sender], dispute: int, share: int, fault: str) -> None:
    for auditor in auditors:
        node.disputes.vote(auditor, dispute, share, fault)


def test_on_time_late_and_a_lost_dispute(node: Node) -> None:
    p = parties(node, factories=2)
    plant, other = p.factories
    auditors = [admit(node, int(Role.AUDITOR)) for _ in range(2)]
    half = WHOLE // 2
    amount = PRICE * WHOLE // 10**6

    on_time = order(node, p, [SplitSpec(plant.address, "machining", 10, WHOLE)], days=30)
    node.jobs.deliver(plant, on_time, 0)
    node.jobs.accept_delivery(p.buyer, on_time, 0)
    late = order(node, p, [SplitSpec(plant.address, "machining", 10, WHOLE)], days=2)
    shared = order(
        node,
        p,
        [
            SplitSpec(plant.address, "machining", 10, half),
            SplitSpec(other.address, "painting", 10, WHOLE - half),
        ],
        days=30,
    )
    # the buyer disputes the plant's split (never delivered); the auditors hold it at fault
    lost = node.disputes.open(p.buyer, shared, 0, "first lot never shipped", EVIDENCE)
    node.disputes.add_evidence(plant, lost, "0x" + "a1" * 32, "ipfs://plant-answer")
    rule(node, auditors, lost, 400_000, "factory")
    # the other factory disputes the buyer's refusal and wins in full
    won = node.disputes.open(other, shared, 1, "delivery refused without reason", EVIDENCE)
    node.disputes.add_evidence(p.buyer, won, "0x" + "b2" * 32, "")
    rule(node, auditors, won, 1_000_000, "buyer")

    before = reputation.of_node(node, plant.address)
    assert (before.on_time, before.late) == (1, 0)  # the short order is not due yet

    time_travel(node, 3 * DAY)
    node.jobs.expire(p.buyer, late)  # refunded: the split still counts as late
    rep = reputation.of_node(node, plant.address)
    assert (rep.assigned, rep.accepted, rep.delivered) == (3, 3, 1)
    assert (rep.on_time, rep.delivered_late, rep.missed_deadline, rep.late) == (1, 0, 1, 1)
    assert rep.on_time_rate == 0.5
    assert (rep.disputes_against, rep.disputes_opened) == (1, 0)
    assert (rep.disputes_ruled, rep.disputes_lost, rep.disputes_lapsed, rep.disputes_open) == (
        1,
        1,
        0,
        0,
    )
    token = node.settlement.token().address
    shared_amount = PRICE * half // 10**6
    payout = shared_amount * 400_000 // 10**6
    assert rep.paid == {token: amount + payout}
    assert rep.withheld == {token: shared_amount - payout}
    assert node.settlement.balance(plant.address) == amount + payout

    theirs = reputation.of_node(node, other.address)
    assert (theirs.assigned, theirs.accepted, theirs.delivered, theirs.late) == (1, 1, 0, 0)
    assert (theirs.disputes_opened, theirs.disputes_against) == (1, 0)
    assert (theirs.disputes_ruled, theirs.disputes_lost) == (1, 0)  # paid 100 %, buyer at fault
    assert theirs.paid == {token: PRICE * (WHOLE - half) // 10**6}

    nobody = reputation.of_node(node, p.buyer.address)
    assert (nobody.assigned, nobody.on_time, nobody.late, nobody.on_time_rate) == (0, 0, 0, None)

    with TestClient(create_app(node)) as client:
        resp = client.get(f"/members/{plant.address.lower()}/reputation")
        assert resp.status_code == 200, resp.text
        assert resp.json() == rep.model_dump(mode="json")
        assert resp.json()["deadlines"]["missed_deadline"] == 1
        assert client.get("/members/0x1234/reputation").status_code == 422


def test_a_lapsed_dispute_and_an_open_one_are_not_lost(node: Node) -> None:
    p = parties(node, factories=1)
    plant = p.factories[0]
    specs = [SplitSpec(plant.address, "casting", 10, WHOLE)]
    first = order(node, p, specs, days=30)
    node.jobs.deliver(plant, first, 0)
    lapsing = node.disputes.open(p.buyer, first, 0, "porosity", EVIDENCE)
    time_travel(node, 11 * DAY)
    node.disputes.lapse(p.buyer, lapsing)
    second = order(node, p, specs, days=30)
    node.disputes.open(p.buyer, second, 0, "cracks", EVIDENCE)
    rep = reputation.of_node(node, plant.address)
    assert (rep.disputes_against, rep.disputes_lapsed, rep.disputes_open) == (2, 1, 1)
    assert (rep.disputes_ruled, rep.disputes_lost) == (0, 0)
    assert (rep.delivered, rep.on_time) == (1, 1) and rep.paid == {}
