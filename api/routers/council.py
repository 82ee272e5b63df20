"""The council's governance settings: who sits on it and how many approvals a proposal
needs, read from the Consortium contract (the proposals themselves are under /proposals)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import NodeDep
from ledger.membership.consortium import MemberStatus
from ledger.membership.roles import Role

router = APIRouter(prefix="/council", tags=["council"])


class CouncilOut(BaseModel):
    members: list[str] = Field(description="active council members, in admission order")
    council_size: int
    quorum: int = Field(description="the configured quorum")
    effective_quorum: int = Field(
        description="approvals a proposal needs now: the lesser of quorum and council size"
    )
    proposal_ttl: int = Field(description="seconds a proposal stays open for approval")
    proposal_count: int


@router.get("", response_model=CouncilOut, summary="Council members, quorum, proposal lifetime")
def council(node: NodeDep) -> CouncilOut:
    c = node.consortium
    members = [
        m.address for m in c.members() if m.status is MemberStatus.ACTIVE and m.roles & Role.COUNCIL
    ]
    return CouncilOut(members=members, **c.governance())
