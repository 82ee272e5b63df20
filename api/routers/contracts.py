"""What a wallet needs to write to the consortium itself: the contracts (addresses, ABIs)
and the chain's gas price rule. The transactions themselves come from the write endpoints
with `?unsigned=1` (see api/routers/tx.py) and go back signed to `POST /tx`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import NodeDep
from ledger.core.abi import checksum
from ledger.eth.compiler import artifact
from ledger.node import Node

router = APIRouter(tags=["transactions"])

# an external payment token (not deployed by cofab) is called through the ERC-20 part of
# the demo token's ABI, as ledger.orders.settlement.Erc20 does
PAYMENT_TOKEN = "PaymentToken"


def consortium_contracts(node: Node) -> dict[str, dict[str, Any]]:
    """Every contract a member's transaction may call: the deployment's, plus the payment
    token when it is not the demo token. Name -> {address, abi}."""
    out = {
        name: {"address": checksum(rec.address), "abi": artifact(name).abi}
        for name, rec in node.deployment.contracts.items()
    }
    if "Settlement" in out:
        token = node.settlement.default_token()
        if token is not None and all(c["address"] != checksum(token) for c in out.values()):
            out[PAYMENT_TOKEN] = {"address": checksum(token), "abi": artifact("DemoStable").abi}
    return out


def contract_name(node: Node, address: str) -> str | None:
    for name, record in consortium_contracts(node).items():
        if record["address"].lower() == address.lower():
            return name
    return None


@router.get(
    "/contracts",
    summary="The consortium's contracts: address and ABI of each, and the chain id "
    "(cacheable: it changes only with a new deployment)",
)
def contracts(node: NodeDep, request: Request, response: Response) -> Any:
    body = {"chain_id": node.chain.chain_id, "contracts": consortium_contracts(node)}
    etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300, must-revalidate"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return body


@router.get(
    "/chain",
    summary="Chain id, latest block and the gas price rule a transaction must follow "
    "(with the fees this node would use now)",
)
def chain(node: NodeDep) -> dict[str, Any]:
    latest = node.chain.w3.eth.get_block("latest")
    fees = node.chain.fee_fields()
    base_fee = latest.get("baseFeePerGas")
    free = fees.get("gasPrice") == 0
    rule = "eip1559" if "maxFeePerGas" in fees else "free" if free else "legacy"
    return {
        "chain_id": node.chain.chain_id,
        "block_number": int(latest["number"]),
        "fee_rule": rule,
        "base_fee_per_gas": None if base_fee is None else str(int(base_fee)),
        "fees": {k: str(v) for k, v in fees.items()},
        "transaction_type": 2 if rule == "eip1559" else 0,
    }
