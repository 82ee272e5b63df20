"""POST /rpc: the chain's reads for in-browser verification, nothing else. Writes, signing,
the node's accounts and dev-chain controls are refused (403) and change nothing; log
queries, bodies, batches and the request rate are bounded."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem

from api.app import create_app
from api.routers.rpc import MAX_BATCH, MAX_LOG_BLOCKS, RateLimiter
from ledger.node import Node


def call(method: str, *params: Any, rpc_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": list(params)}


def test_the_reads_verification_needs_are_answered(node: Node) -> None:
    client = TestClient(create_app(node))
    board = node.deployment.address("JobBoard")
    w3 = node.chain.w3
    data = node.jobs.contract.encode_abi("jobCount", [])
    batch = [
        call("eth_chainId", rpc_id=1),
        call("eth_blockNumber", rpc_id=2),
        call("eth_call", {"to": board, "data": data}, "latest", rpc_id=3),
        call("eth_getBlockByNumber", "0x1", False, rpc_id=4),
        call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": board}, rpc_id=5),
    ]
    resp = client.post("/rpc", json=batch)
    assert resp.status_code == 200, resp.text
    answers = {a["id"]: a for a in resp.json()}
    assert int(answers[1]["result"], 16) == node.chain.chain_id
    assert int(answers[2]["result"], 16) == w3.eth.block_number
    assert int(answers[3]["result"], 16) == node.jobs.count()
    assert answers[4]["result"]["hash"] == w3.eth.get_block(1)["hash"].to_0x_hex()
    assert isinstance(answers[5]["result"], list)
    block_hash = answers[4]["result"]["hash"]
    one = client.post("/rpc", json=call("eth_getBlockByHash", block_hash, False)).json()
    assert one["result"]["number"] == "0x1"
    tx_hash = w3.eth.get_block(1)["transactions"][0]
    tx_hash = tx_hash if isinstance(tx_hash, bytes) else tx_hash["hash"]
    receipt = client.post("/rpc", json=call("eth_getTransactionReceipt", "0x" + tx_hash.hex()))
    assert receipt.json()["result"]["blockNumber"] == "0x1"


@pytest.mark.parametrize(
    "method",
    [
        "eth_sendRawTransaction",
        "eth_sendTransaction",
        "eth_sign",
        "personal_sign",
        "eth_signTypedData_v4",
        "eth_accounts",
        "eth_getBalance",
        "evm_mine",
        "anvil_setBalance",
        "debug_traceTransaction",
    ],
)
def test_anything_else_is_refused_and_changes_nothing(node: Node, method: str) -> None:
    client = TestClient(create_app(node))
    w3 = node.chain.w3
    member = Account.create()
    node.chain.ensure_gas(member.address)
    signed = member.sign_transaction(
        {"to": member.address, "value": 0, "gas": 21_000, "nonce": 0,
         "chainId": node.chain.chain_id, **node.chain.fee_fields()}
    )  # fmt: skip
    height = w3.eth.block_number
    params = [signed.raw_transaction.to_0x_hex()] if method == "eth_sendRawTransaction" else []
    resp = client.post("/rpc", json=call(method, *params))
    body = assert_problem(resp, 403)
    assert method in body["detail"]
    # hidden in a batch behind an allowed read: the whole batch is refused
    batch = client.post("/rpc", json=[call("eth_chainId"), call(method, *params, rpc_id=2)])
    assert_problem(batch, 403)
    assert w3.eth.block_number == height
    assert w3.eth.get_transaction_count(member.address) == 0


def test_log_range_body_batch_and_rate_are_bounded(node: Node) -> None:
    app = create_app(node)
    client = TestClient(app)
    wide = {"fromBlock": "0x0", "toBlock": hex(MAX_LOG_BLOCKS + 5)}
    assert_problem(client.post("/rpc", json=call("eth_getLogs", wide)), 422)
    assert_problem(client.post("/rpc", json=call("eth_getLogs")), 422)
    assert_problem(client.post("/rpc", json=[call("eth_chainId")] * (MAX_BATCH + 1)), 422)
    assert_problem(client.post("/rpc", json=[]), 422)
    huge = call("eth_call", {"to": "0x" + "00" * 20, "data": "0x" + "00" * 70_000}, "latest")
    assert client.post("/rpc", json=huge).status_code == 413
    assert_problem(client.post("/rpc", content=b"not json"), 422)

    app.state.rpc_limiter = RateLimiter(limit=3)
    assert client.post("/rpc", json=[call("eth_chainId")] * 3).status_code == 200
    assert_problem(client.post("/rpc", json=call("eth_chainId")), 429)
