from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import MemberDep, NodeDep, signer_for
from api.models import ProposalIn
from api.params import ProposalId
from ledger.membership.consortium import Proposal
from ledger.membership.roles import Role, parse_roles

router = APIRouter(prefix="/proposals", tags=["council"])


@router.get("", response_model=list[Proposal])
def list_proposals(node: NodeDep) -> list[Proposal]:
    return node.consortium.proposals()


@router.get("/{proposal_id}", response_model=Proposal)
def show_proposal(proposal_id: ProposalId, node: NodeDep) -> Proposal:
    return node.consortium.proposal(proposal_id)


@router.post(
    "",
    response_model=Proposal,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a membership change or a device unbinding (council only)",
)
def propose(body: ProposalIn, node: NodeDep, member: MemberDep) -> Proposal:
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
    return c.proposal(pid)


@router.post("/{proposal_id}/approve", response_model=Proposal)
def approve(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> Proposal:
    node.consortium.approve(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id)


@router.post("/{proposal_id}/cancel", response_model=Proposal)
def cancel(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> Proposal:
    node.consortium.cancel(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id)
