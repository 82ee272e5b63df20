from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import MemberDep, NodeDep, signer_for
from api.models import ProposalIn, ProposalOut
from api.params import ProposalId
from ledger.membership.roles import Role, parse_roles

router = APIRouter(prefix="/proposals", tags=["council"])


@router.get("", response_model=list[ProposalOut])
def list_proposals(node: NodeDep) -> list[dict[str, Any]]:
    return [p.as_dict() for p in node.consortium.proposals()]


@router.get("/{proposal_id}", response_model=ProposalOut)
def show_proposal(proposal_id: ProposalId, node: NodeDep) -> dict[str, Any]:
    return node.consortium.proposal(proposal_id).as_dict()


@router.post(
    "",
    response_model=ProposalOut,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a membership change or a device unbinding (council only)",
)
def propose(body: ProposalIn, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    c = node.consortium
    pid = c.propose(
        signer_for(node, member, Role.COUNCIL),
        body.kind,
        target=body.target,
        roles=parse_roles(body.roles) if body.roles else None,
        quorum=body.quorum,
        metadata_hash=body.metadata_hash,
        encryption_key=body.encryption_key,
    )
    return c.proposal(pid).as_dict()


@router.post("/{proposal_id}/approve", response_model=ProposalOut)
def approve(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    node.consortium.approve(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id).as_dict()


@router.post("/{proposal_id}/cancel", response_model=ProposalOut)
def cancel(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    node.consortium.cancel(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id).as_dict()
