"""Relaying a member's own transactions.

Every write endpoint answers `?unsigned=1` with the transaction it would send for the
signed-in member, unsigned (nonce, estimated gas, fees and a readable summary), instead of
signing it: the same domain code runs its checks and the gas estimate (a revert comes back
as the usual problem, before anything is signed) and stops at the send
(`ledger.eth.tx.Builder`). The member signs it and relays it through `POST /tx`, which
takes only transactions signed by the signed-in member, for this chain, calling one of
the consortium's contracts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import MemberDep, NodeDep
from api.models import RawTxIn, RelayedOut, TxOut
from api.routers.contracts import consortium_contracts, contract_name
from ledger.eth import tx
from ledger.node import Node

router = APIRouter(prefix="/tx", tags=["transactions"])

UNSIGNED_PARAM = "unsigned"


def tx_out(receipt: Any) -> TxOut:
    return TxOut(
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        status=int(receipt["status"]),
    )


def events_of(node: Node, receipt: Any) -> list[dict[str, Any]]:
    """The consortium contracts' events a relayed transaction emitted, decoded (so a client
    learns, say, the id of the order it created)."""
    contracts = consortium_contracts(node).items()
    by_address = {c["address"].lower(): (name, c["abi"]) for name, c in contracts}
    out: list[dict[str, Any]] = []
    for log in receipt["logs"]:
        known = by_address.get(str(log["address"]).lower())
        if known is None:
            continue
        contract = node.chain.w3.eth.contract(address=log["address"], abi=known[1])
        for name in [e["name"] for e in known[1] if e.get("type") == "event"]:
            try:
                decoded = getattr(contract.events, name)().process_log(log)
            except Exception:  # noqa: BLE001 - not this event: try the next
                continue
            args = tx.call_args(dict(decoded["args"]))
            out.append({"contract": known[0], "event": decoded["event"], "args": args})
            break
    return out


@router.post(
    "",
    response_model=RelayedOut,
    summary="Relay a transaction you signed yourself (to a consortium contract)",
)
def relay(body: RawTxIn, node: NodeDep, member: MemberDep) -> RelayedOut:
    targets = [c["address"] for c in consortium_contracts(node).values()]
    receipt = tx.relay(node.chain, body.raw, member.address, targets)
    return RelayedOut(**tx_out(receipt).model_dump(), events=events_of(node, receipt))


def wants_unsigned(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get(UNSIGNED_PARAM, ["0"])[-1].lower() in ("1", "true", "yes")


class UnsignedRequests:
    """Runs a request that asks `?unsigned=1` in `tx.build_only`, so the member's sender is a
    Builder for as long as the endpoint runs (its thread inherits the context)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD")
            or not wants_unsigned(scope)
        ):
            await self.app(scope, receive, send)
            return
        with tx.build_only():
            await self.app(scope, receive, send)


def unsigned_body(node: Any, built: tx.Unsigned) -> dict[str, Any]:
    fields = built.as_json()
    contract = contract_name(node, fields["to"]) or fields["to"]
    call = built.call
    args = ", ".join(f"{k}={v}" for k, v in call["args"].items())
    summary = {"contract": contract, **call, "text": f"{contract}.{call['function']}({args})"}
    return {**fields, "summary": summary}


def install(app: FastAPI) -> None:
    app.add_middleware(UnsignedRequests)

    @app.exception_handler(tx.Unsigned)
    async def unsigned(request: Request, built: tx.Unsigned) -> JSONResponse:
        return JSONResponse(unsigned_body(request.app.state.node, built))
