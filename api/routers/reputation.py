"""A factory's reputation over HTTP, recomputed from the chain's events on every request."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import NodeDep
from ledger.core.abi import checksum
from ledger.disputes import reputation

router = APIRouter(prefix="/members", tags=["members"])


@router.get(
    "/{address}/reputation",
    response_model=reputation.Reputation,
    summary="A factory's track record, derived from the chain",
)
def member_reputation(address: str, node: NodeDep) -> reputation.Reputation:
    return reputation.of_node(node, checksum(address))
