from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import NodeDep, OptionalMemberDep
from api.models import Health, Readiness
from ledger.eth import deployment

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, summary="Chain reachable, contracts in place")
def ready(node: NodeDep) -> Readiness | JSONResponse:
    contracts = {n: r.address for n, r in node.deployment.contracts.items()}
    try:
        deployment.check(node.chain, node.deployment)
        block = node.chain.block_number()
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        body = {
            "ready": False,
            "chain_id": node.chain.chain_id,
            "block_number": -1,
            "contracts": contracts,
            "detail": str(exc),
        }
        return JSONResponse(body, status_code=503)
    stalled = node.stalled()
    if stalled:  # journaled steps the node cannot anchor: it disagrees with the chain
        body = {
            "ready": False,
            "chain_id": node.chain.chain_id,
            "block_number": block,
            "contracts": contracts,
            "detail": "anchoring is stalled: " + "; ".join(stalled),
            "stalled": stalled,
        }
        return JSONResponse(body, status_code=503)
    return Readiness(
        ready=True, chain_id=node.chain.chain_id, block_number=block, contracts=contracts
    )


@router.get(
    "/status",
    summary="Chain id, block height and contracts; with a member's token also the backend, "
    "RPC URL, data directory and the keys the node holds",
)
def status(node: NodeDep, member: OptionalMemberDep) -> dict[str, object]:
    return node.status() if member is not None else node.public_status()


@router.get(
    "/deployment",
    summary="The consortium's contracts on this chain (what `cofab up --join` reads)",
)
def deployment_record(node: NodeDep) -> dict[str, object]:
    return node.deployment.to_json()
