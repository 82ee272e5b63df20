"""A scripted order through the REST API over a real node: 3 factories, 4 splits with one
dependency, a designer royalty and a platform fee; every payee is paid exactly its share.
Plus the API's refusals (problem+json, nothing changed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from test_api import (
    assert_problem,
    fresh_nonce,
    login,
    outside_member,
    said,
    sign_in,
    sign_text,
    siwe_text,
)

from api.app import create_app
from kit import (
    DAY,
    DUSD,
    FEE_PPM,
    ROYALTY_PPM,
    Parties,
    admit,
    in_production,
    new_account,
    parties,
    split_order,
    time_travel,
)
from kit import state as chain_state
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec

PRICE = 12_000 * DUSD
Headers = dict[str, str]


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


def body_of(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def wallet_sign(account: Any, typed: dict[str, Any]) -> str:
    """Sign typed data as a wallet would (eth_signTypedData_v4 on the JSON)."""
    return account.sign_message(encode_typed_data(full_message=typed)).signature.to_0x_hex()


def splits_body(p: Parties, assembly_share: int = 200_000) -> dict[str, Any]:
    f = p.factories
    rows = [
        (f[0].address, "machining", 100, 300_000, []),
        (f[1].address, "painting", 100, 230_000, []),
        (f[0].address, "machining lot 2", 50, 200_000, []),
        (f[2].address, "assembly", 100, assembly_share, [0]),
    ]
    keys = ("factory", "step", "quantity", "share_ppm", "depends_on")
    return {"splits": [dict(zip(keys, row, strict=True)) for row in rows]}


def placed(client: TestClient, node: Node, p: Parties, buyer: Headers) -> int:
    deadline = int(time.time()) + 30 * 86_400
    order = {"design_id": "0x" + p.design.hex(), "quantity": 100}
    order |= {"price": PRICE, "deadline": deadline}
    job = body_of(client.post("/jobs", json=order, headers=buyer), 201)
    assert job["status"] == "created" and job["token"]["symbol"] == "dUSD"
    assert job["royalty_ppm"] == ROYALTY_PPM and job["designer"] == p.designer.address
    return int(job["id"])


def test_an_order_through_the_api_pays_everyone_exactly(client: TestClient, node: Node) -> None:
    p = parties(node)
    f = p.factories
    buyer = sign_in(client, node, p.buyer.account)
    plant = [sign_in(client, node, x.account) for x in f]
    config = body_of(client.get("/pay/config"))
    assert config["platform_fee_ppm"] == FEE_PPM and config["default_token"]["decimals"] == 6

    job_id = placed(client, node, p, buyer)
    assert body_of(client.post(f"/jobs/{job_id}/fund", headers=buyer))["status"] == "funded"
    job = body_of(client.post(f"/jobs/{job_id}/splits", json=splits_body(p), headers=buyer))
    assert job["status"] == "split" and job["shares_total_ppm"] == 1_000_000
    assert [s["depends_on"] for s in job["splits"]] == [[], [], [], [0]]

    # factories 0 and 1 accept by transaction; factory 2 signs in its wallet, the buyer relays
    for factory, split in ((0, 0), (1, 1), (0, 2)):
        body_of(client.post(f"/jobs/{job_id}/splits/{split}/accept", headers=plant[factory]))
    typed = body_of(client.get(f"/jobs/{job_id}/splits/3/acceptance"))
    assert typed["primaryType"] == "AcceptSplit" and typed["domain"]["name"] == "cofab"
    signed = {
        "nonce": typed["message"]["nonce"],
        "deadline": typed["message"]["deadline"],
        "signature": wallet_sign(f[2].account, typed),
    }
    relayed = client.post(f"/jobs/{job_id}/splits/3/accept-signed", json=signed, headers=buyer)
    job = body_of(relayed)
    assert job["status"] == "in_production"
    replay = client.post(f"/jobs/{job_id}/splits/3/accept-signed", json=signed, headers=buyer)
    assert_problem(replay, 409, "NonceAlreadyUsed")

    for factory, split in ((0, 0), (1, 1), (0, 2)):
        body_of(client.post(f"/jobs/{job_id}/splits/{split}/deliver", headers=plant[factory]))
    # assembly cannot deliver before the machined lots reach it
    early = client.post(f"/jobs/{job_id}/splits/3/deliver", headers=plant[2])
    assert_problem(early, 409, "LotsNotReceived")

    # hand-over: the machining plant signs the typed data, the assembly plant submits it
    lots = {"from_split": 0, "to_split": 3, "lot": "LOT-2026-001", "quantity": 100}
    lots["deadline"] = int(time.time()) + 3600
    typed = body_of(client.post(f"/jobs/{job_id}/handover/typed-data", json=lots))
    alone = client.post(f"/jobs/{job_id}/handover", json=lots, headers=plant[0])
    assert_problem(alone, 409, "HandoverNotSigned")
    signed_lots = {**lots, "from_signature": wallet_sign(f[0].account, typed)}
    job = body_of(client.post(f"/jobs/{job_id}/handover", json=signed_lots, headers=plant[2]))
    assert job["splits"][0]["custody"] == [f[2].address]
    assert job["splits"][3]["received_from"] == [0]
    evidence = {"evidence_hash": "0x" + "5e" * 32}
    job = body_of(client.post(f"/jobs/{job_id}/splits/3/deliver", json=evidence, headers=plant[2]))
    assert job["status"] == "delivered"

    for split in range(4):
        url = f"/jobs/{job_id}/splits/{split}/accept-delivery"
        job = body_of(client.post(url, headers=buyer))
    assert job["status"] == "settled"
    assert job["escrow"] == {"deposited": PRICE, "held": 0, "released": PRICE, "refunded": 0}
    assert job["splits"][3]["custody"] == [p.buyer.address]

    platform = node.settlement.platform()
    expected = {
        f[0].address: PRICE * 500_000 // 10**6,  # two splits: 30 % + 20 %
        f[1].address: PRICE * 230_000 // 10**6,
        f[2].address: PRICE * 200_000 // 10**6,
        p.designer.address: PRICE * ROYALTY_PPM // 10**6,
        platform: PRICE * FEE_PPM // 10**6,
    }
    assert sum(expected.values()) == PRICE
    shown: dict[str, int] = {}
    for payout in job["payouts"]:
        assert payout["state"] == "credited"
        shown[payout["account"]] = shown.get(payout["account"], 0) + payout["amount"]
    assert shown == expected

    accounts = {p.designer.address: p.designer.account, platform: node.sender().account}
    accounts.update({x.address: x.account for x in f})
    for address, amount in expected.items():
        before = body_of(client.get(f"/pay/balances/{address}"))
        assert before["withdrawable"] == amount
        headers = sign_in(client, node, accounts[address])
        paid = body_of(client.post("/pay/withdraw", json={}, headers=headers))
        assert paid["amount"] == amount
        after = body_of(client.get(f"/pay/balances/{address}"))
        assert after["wallet"] - before["wallet"] == amount and after["withdrawable"] == 0
        again = client.post("/pay/withdraw", json={}, headers=headers)
        assert "nothing to withdraw" in assert_problem(again, 409)["detail"]
    totals = body_of(client.get("/pay/totals"))
    assert totals["conserved"] and totals["held"] == 0
    listed = body_of_list(client.get("/jobs", params={"party": f[2].address}))
    assert [j["id"] for j in listed] == [job_id]


def body_of_list(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def test_the_api_refuses_bad_orders_and_changes_nothing(client: TestClient, node: Node) -> None:
    p = parties(node)
    buyer = sign_in(client, node, p.buyer.account)
    plant = sign_in(client, node, p.factories[1].account)
    job_id = placed(client, node, p, buyer)
    body_of(client.post(f"/jobs/{job_id}/fund", headers=buyer))
    before = body_of(client.get(f"/jobs/{job_id}")), body_of(client.get("/pay/totals"))

    short = client.post(f"/jobs/{job_id}/splits", json=splits_body(p, 199_999), headers=buyer)
    problem = assert_problem(short, 422, "SharesDoNotSum")
    assert "999999" in problem["detail"]
    by_factory = client.post(f"/jobs/{job_id}/splits", json=splits_body(p), headers=plant)
    assert_problem(by_factory, 409, "NotJobBuyer")
    bad_share = splits_body(p)
    bad_share["splits"][0]["share_ppm"] = 0
    assert_problem(client.post(f"/jobs/{job_id}/splits", json=bad_share, headers=buyer), 422)
    assert_problem(client.post(f"/jobs/{job_id}/splits", json=splits_body(p)), 401)
    assert_problem(client.get("/jobs/77"), 404)
    assert (body_of(client.get(f"/jobs/{job_id}")), body_of(client.get("/pay/totals"))) == before

    body_of(client.post(f"/jobs/{job_id}/splits", json=splits_body(p), headers=buyer))
    theirs = client.post(f"/jobs/{job_id}/splits/0/accept", headers=plant)
    assert_problem(theirs, 409, "NotSplitFactory")
    assert body_of(client.get(f"/jobs/{job_id}"))["splits"][0]["status"] == "assigned"
    cancelled = body_of(client.post(f"/jobs/{job_id}/cancel", headers=buyer))
    assert cancelled["status"] == "cancelled" and cancelled["escrow"]["refunded"] == PRICE
    assert body_of(client.get(f"/pay/balances/{p.buyer.address}"))["withdrawable"] == PRICE


def handovers(node: Node) -> int:
    return len(node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0))


def last_sender(node: Node) -> str:
    block = node.chain.w3.eth.get_block("latest", full_transactions=True)
    return str(block["transactions"][-1]["from"])


def test_the_node_never_fills_a_handover_consent_with_another_key(
    client: TestClient, node: Node
) -> None:
    """The operator is the factory of the giving split; no request but its own may make the
    node sign that side, and the quantity is bounded by the split."""
    p = parties(node)
    operator, taker = node.sender(), p.factories[2]
    roles = int(Role.COUNCIL | Role.FACTORY)
    node.consortium.propose_set_roles(operator, operator.address, roles)
    specs = [
        SplitSpec(operator.address, "machining", 10, 465_000),
        SplitSpec(taker.address, "assembly", 10, 465_000, (0,)),
    ]
    job_id = in_production(node, p, specs)
    node.jobs.deliver(operator, job_id, 0)
    lots = {"from_split": 0, "to_split": 1, "lot": "LOT-9", "quantity": 10}
    lots["deadline"] = int(time.time()) + 3600
    typed = body_of(client.post(f"/jobs/{job_id}/handover/typed-data", json=lots))
    taker_signed = {**lots, "to_signature": wallet_sign(taker.account, typed)}
    url = f"/jobs/{job_id}/handover"
    before = chain_state(node, job_id), handovers(node)

    # a non-member gets no token, even when the node holds its key: nothing can be sent
    outsider = new_account()
    node.add_signer(outsider)
    refused_sign_in(client, node, outsider)
    # a member who is a factory, but of neither split: refused, nothing sent
    plant = p.factories[0]
    stranger = sign_in(client, node, plant.account)
    for body in (taker_signed, lots):
        problem = assert_problem(client.post(url, json=body, headers=stranger), 403)
        assert said(problem, "only the factory of split 0") and said(problem, plant.address)
    # a member of the consortium who is neither factory: same
    buyer = sign_in(client, node, p.buyer.account)
    assert_problem(client.post(url, json=taker_signed, headers=buyer), 403)
    # the receiving factory alone: its side is signed, the giver's is not filled in
    receiver = sign_in(client, node, taker.account)
    for body in (taker_signed, lots):
        assert_problem(client.post(url, json=body, headers=receiver), 409, "HandoverNotSigned")
    # 999,999 units out of 10, signed by both: refused by the chain's bound
    huge = {**lots, "quantity": 999_999}
    huge_typed = body_of(client.post(f"/jobs/{job_id}/handover/typed-data", json=huge))
    huge["from_signature"] = wallet_sign(operator.account, huge_typed)
    problem = assert_problem(client.post(url, json=huge, headers=receiver), 409)
    assert problem["error"] == "HandoverExceedsQuantity" and said(problem, "10 units left")
    assert (chain_state(node, job_id), handovers(node)) == before

    # the giver's own consent, given by the giver: accepted
    signed = {**taker_signed, "from_signature": wallet_sign(operator.account, typed)}
    job = body_of(client.post(url, json=signed, headers=receiver))
    assert job["splits"][0]["handed_quantity"] == 10 and job["splits"][1]["received_from"] == [0]
    event = node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0)[-1]["args"]
    assert (event["fromSigner"], event["toSigner"]) == (operator.address, taker.address)
    assert last_sender(node) == taker.address


def test_a_key_the_node_does_not_hold_is_never_replaced(client: TestClient, node: Node) -> None:
    """Relaying a signed acceptance takes the buyer or that factory, with its own key; expiry
    and finalisation, open to anyone on chain, are sent with the caller's own key only."""
    p = parties(node)
    painter = p.factories[1]
    job_id = split_order(node, p)
    typed = body_of(client.get(f"/jobs/{job_id}/splits/1/acceptance"))
    signed = {"nonce": typed["message"]["nonce"], "deadline": typed["message"]["deadline"]}
    signed["signature"] = wallet_sign(painter.account, typed)
    url = f"/jobs/{job_id}/splits/1/accept-signed"
    before = chain_state(node, job_id)
    refused_sign_in(client, node, new_account())  # a non-member gets no token at all
    stranger = sign_in(client, node, outside_member(node, Role.AUDITOR))
    problem = assert_problem(client.post(url, json=signed, headers=stranger), 403)
    assert said(problem, "only the buyer of job") and said(problem, "or the factory of split 1")
    other_plant = sign_in(client, node, p.factories[2].account)
    assert_problem(client.post(url, json=signed, headers=other_plant), 403)
    far_buyer = outside_member(node, Role.BUYER)  # a buyer, but of other orders
    problem = assert_problem(
        client.post(url, json=signed, headers=sign_in(client, node, far_buyer)), 403
    )
    assert chain_state(node, job_id) == before
    buyer = sign_in(client, node, p.buyer.account)
    assert (
        body_of(client.post(url, json=signed, headers=buyer))["splits"][1]["status"] == "accepted"
    )
    assert last_sender(node) == p.buyer.address

    # expiry and finalisation: the caller's own key, or nothing
    started = in_production(node, p)
    node.jobs.deliver(painter, started, 1)
    time_travel(node, 31 * DAY)
    before = chain_state(node, started)
    absent = sign_in(client, node, outside_member(node, Role.AUDITOR))
    for action in ("expire", "splits/1/finalize"):
        problem = assert_problem(client.post(f"/jobs/{started}/{action}", headers=absent), 403)
        assert said(problem, "does not hold the key") and said(problem, "yourself")
        assert_problem(client.post(f"/jobs/{started}/{action}", headers=stranger), 403)
    assert chain_state(node, started) == before
    auditor = admit(node, int(Role.AUDITOR))
    job = body_of(
        client.post(f"/jobs/{started}/expire", headers=sign_in(client, node, auditor.account))
    )
    assert job["status"] == "expired" and last_sender(node) == auditor.address
    assert job["splits"][1]["review_ends"] < chain_now(node)
    plant = sign_in(client, node, painter.account)
    job = body_of(client.post(f"/jobs/{started}/splits/1/finalize", headers=plant))
    assert job["splits"][1]["status"] == "paid" and last_sender(node) == painter.address
    assert job["escrow"]["held"] == 0


def test_an_order_sets_its_review_period(client: TestClient, node: Node) -> None:
    p = parties(node)
    buyer = sign_in(client, node, p.buyer.account)
    order = {"design_id": "0x" + p.design.hex(), "quantity": 1, "price": PRICE}
    order["deadline"] = int(time.time()) + 30 * 86_400
    default = body_of(client.post("/jobs", json=order, headers=buyer), 201)
    assert default["review_period"] == 14 * 86_400
    short = body_of(client.post("/jobs", json={**order, "review_period": 3600}, headers=buyer), 201)
    assert short["review_period"] == 3600
    count = node.jobs.count()
    long = {**order, "review_period": 366 * 86_400}
    assert_problem(client.post("/jobs", json=long, headers=buyer), 422)
    assert node.jobs.count() == count


def chain_now(node: Node) -> int:
    return int(node.chain.w3.eth.get_block("latest")["timestamp"])


def refused_sign_in(client: TestClient, node: Node, account: LocalAccount) -> None:
    """A valid sign-in by a non-member: 403, and no token."""
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    problem = assert_problem(login(client, text, sign_text(account, text)), 403)
    assert said(problem, "not an active member")
