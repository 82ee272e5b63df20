"""A factory's reputation over HTTP, recomputed from the chain's events on every request."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import NodeDep
from ledger.disputes import reputation
from ledger.membership.consortium import checksum

router = APIRouter(prefix="/members", tags=["members"])


class SplitsOut(BaseModel):
    assigned: int
    accepted: int
    delivered: int


class DeadlinesOut(BaseModel):
    on_time: int = Field(description="delivered at or before the order's deadline")
    late: int = Field(description="delivered_late + missed_deadline")
    delivered_late: int
    missed_deadline: int = Field(description="accepted, not delivered when the deadline passed")
    on_time_rate: float | None


class DisputesOut(BaseModel):
    against: int = Field(description="opened by the buyer on its splits")
    opened: int = Field(description="opened by the factory")
    ruled: int
    lost: int = Field(description="ruled with the factory at fault or paid below 100%")
    lapsed: int
    open: int


class ReputationOut(BaseModel):
    factory: str
    as_of_block: int
    as_of_time: int
    splits: SplitsOut
    deadlines: DeadlinesOut
    disputes: DisputesOut
    paid: dict[str, int] = Field(description="token address → amount credited")
    withheld: dict[str, int] = Field(description="token address → amount rulings refunded")


@router.get(
    "/{address}/reputation",
    response_model=ReputationOut,
    summary="A factory's track record, derived from the chain",
)
def member_reputation(address: str, node: NodeDep) -> dict[str, object]:
    return reputation.of_node(node, checksum(address)).as_dict()
