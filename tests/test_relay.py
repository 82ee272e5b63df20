"""Members whose key the node does not hold act through their own wallet: a write endpoint
serves the unsigned transaction (`?unsigned=1`), ethers v6 signs it, `POST /tx` relays it,
and the effect is on chain. `POST /tx` takes nothing else: another signer's transaction, a
transfer or call to a contract outside the consortium, a deployment, another chain."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in

from api.app import create_app
from kit import DAY, PRICE, run_node, state
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import JobStatus

Headers = dict[str, str]


def ethers_sign_tx(account: LocalAccount, txs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sign served transactions with ethers v6 (tests/js/sign_tx.mjs, `node` on PATH)."""
    key = "0x" + bytes(account.key).hex()
    requests = [{"key": key, "tx": t} for t in txs]
    return list(run_node("sign_tx.mjs", {"requests": requests})["results"])


def outsider_member(node: Node, roles: int) -> LocalAccount:
    """An active member whose key this node does not hold."""
    account: LocalAccount = Account.create(os.urandom(32).hex())
    node.consortium.propose_admit(node.sender(), account.address, roles)
    return account


def ok(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def relay(
    client: TestClient, account: LocalAccount, headers: Headers, path: str, body: Any = None
) -> dict[str, Any]:
    """Ask `path` for its unsigned transaction, sign it with ethers, relay it."""
    served = ok(client.post(path, params={"unsigned": 1}, json=body, headers=headers))
    [signed] = ethers_sign_tx(account, [served])
    assert signed["from"] == account.address == served["from"]
    receipt = ok(client.post("/tx", json={"raw": signed["raw"]}, headers=headers))
    assert receipt["status"] == 1 and receipt["tx_hash"] == signed["hash"]
    return {**served, "relayed": receipt}


def test_contracts_and_fee_rule_are_served(node: Node) -> None:
    client = TestClient(create_app(node))
    resp = client.get("/contracts")
    body = ok(resp)
    assert body["chain_id"] == node.chain.chain_id
    for name in ("Consortium", "DesignRegistry", "JobBoard", "Settlement", "Disputes"):
        assert body["contracts"][name]["address"] == node.deployment.address(name)
        assert any(e.get("name") for e in body["contracts"][name]["abi"])
    assert "max-age" in resp.headers["cache-control"]
    again = client.get("/contracts", headers={"If-None-Match": resp.headers["etag"]})
    assert again.status_code == 304
    chain = ok(client.get("/chain"))
    assert chain["chain_id"] == node.chain.chain_id
    assert chain["fee_rule"] in ("eip1559", "legacy", "free")
    assert set(chain["fees"]) == set(node.chain.fee_fields())


@pytest.mark.slow
def test_a_buyer_and_a_factory_without_keys_on_the_node_relay_their_orders(node: Node) -> None:
    client = TestClient(create_app(node))
    buyer = outsider_member(node, int(Role.BUYER))
    plant = outsider_member(node, int(Role.FACTORY))
    designer = node.add_signer(Account.create(os.urandom(32).hex()))
    node.consortium.propose_admit(node.sender(), designer.address, int(Role.DESIGNER))
    design = os.urandom(32)
    node.designs.register(designer, design, bytes(32), bytes(32))
    node.designs.grant_licence(designer, design, buyer.address, 50_000)
    node.settlement.token().mint(node.sender(), buyer.address, 2 * PRICE)
    as_buyer, as_plant = sign_in(client, node, buyer), sign_in(client, node, plant)

    order = {
        "design_id": "0x" + design.hex(),
        "quantity": 10,
        "price": PRICE,
        "deadline": int(time.time()) + 30 * DAY,
    }
    refused = client.post("/jobs", json=order, headers=as_buyer)  # the node cannot sign
    assert_problem(refused, 403)
    assert "unsigned=1" in refused.json()["detail"]
    count = node.jobs.count()
    served = relay(client, buyer, as_buyer, "/jobs", order)
    assert served["summary"]["contract"] == "JobBoard"
    assert served["summary"]["function"] == "createJob"
    assert served["summary"]["args"]["price"] == str(PRICE)  # decimal strings, exact
    assert served["to"] == node.deployment.address("JobBoard")
    job = node.jobs.count()
    assert job == count + 1 and node.jobs.view(job).buyer == buyer.address
    [created] = [e for e in served["relayed"]["events"] if e["event"] == "JobCreated"]
    assert created["contract"] == "JobBoard" and created["args"]["jobId"] == str(job)

    # funding takes two transactions: the token approval first, then the payment
    first = relay(client, buyer, as_buyer, f"/jobs/{job}/fund")
    assert first["summary"]["function"] == "approve"
    assert first["summary"]["contract"] == "DemoStable"
    second = relay(client, buyer, as_buyer, f"/jobs/{job}/fund")
    assert second["summary"]["function"] == "fund"
    assert node.jobs.view(job).status is JobStatus.FUNDED

    splits = {
        "splits": [{"factory": plant.address, "step": "machining", "quantity": 10,
                    "share_ppm": 930_000}]
    }  # fmt: skip
    relay(client, buyer, as_buyer, f"/jobs/{job}/splits", splits)
    # a revert is the usual problem, before anything is signed: the buyer is not the factory
    before = state(node, job)
    wrong = client.post(f"/jobs/{job}/splits/0/accept?unsigned=1", headers=as_buyer)
    assert wrong.status_code in (403, 409, 422), wrong.text
    assert state(node, job) == before
    relay(client, plant, as_plant, f"/jobs/{job}/splits/0/accept")
    assert node.jobs.view(job).status is JobStatus.IN_PRODUCTION


def test_relay_refuses_what_is_not_the_members_own_call_to_the_consortium(node: Node) -> None:
    client = TestClient(create_app(node))
    member = outsider_member(node, int(Role.BUYER))
    other = outsider_member(node, int(Role.BUYER))
    headers = sign_in(client, node, member)
    w3 = node.chain.w3
    node.chain.ensure_gas(member.address)
    fees = {k: str(v) for k, v in node.chain.fee_fields().items()}
    base = {"chainId": node.chain.chain_id, "gas": 100_000, "value": "0", "data": "0x", **fees}
    base["type"] = 2 if "maxFeePerGas" in fees else 0
    jobs_before, balance = node.jobs.count(), w3.eth.get_balance(member.address)
    nonce = w3.eth.get_transaction_count(member.address)
    board = node.deployment.address("JobBoard")

    # a transaction the node built for the member, but signed by another member
    call = {**base, "to": board, "nonce": w3.eth.get_transaction_count(other.address)}
    [by_other] = ethers_sign_tx(other, [call])
    resp = client.post("/tx", json={"raw": by_other["raw"]}, headers=headers)
    assert_problem(resp, 403)
    assert "not by" in resp.json()["detail"]

    # a plain transfer to an address outside the consortium
    elsewhere = Account.create().address
    transfer = {**base, "to": elsewhere, "value": "1000", "nonce": nonce}
    [signed] = ethers_sign_tx(member, [transfer])
    resp = client.post("/tx", json={"raw": signed["raw"]}, headers=headers)
    assert_problem(resp, 403)
    assert "consortium's contracts" in resp.json()["detail"]

    # a contract deployment (no `to`)
    deploy = {k: v for k, v in base.items() if k != "to"}
    [signed] = ethers_sign_tx(member, [{**deploy, "data": "0x6000", "nonce": nonce}])
    resp = client.post("/tx", json={"raw": signed["raw"]}, headers=headers)
    assert_problem(resp, 403)
    assert "deploys a contract" in resp.json()["detail"]

    # the right call, for another chain
    [signed] = ethers_sign_tx(member, [{**base, "to": board, "nonce": nonce, "chainId": 999}])
    resp = client.post("/tx", json={"raw": signed["raw"]}, headers=headers)
    assert_problem(resp, 422)

    assert w3.eth.get_transaction_count(member.address) == nonce
    assert w3.eth.get_transaction_count(other.address) == call["nonce"]
    assert w3.eth.get_balance(elsewhere) == 0
    assert w3.eth.get_balance(member.address) == balance
    assert node.jobs.count() == jobs_before
