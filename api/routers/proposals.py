from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import MemberDep, NodeDep, signer_for
from api.models import ProposalIn, ProposalOut
from api.params import ProposalId
from ledger.core.errors import InvalidInput
from ledger.membership.roles import Role, parse_roles

router = APIRouter(prefix="/proposals", tags=["council"])


@router.get("", response_model=list[ProposalOut])
def list_proposals(node: NodeDep) -> list[dict[str, Any]]:
    return [p.as_dict() for p in node.consortium.proposals()]


@router.get("/{proposal_id}", response_model=ProposalOut)
def show_proposal(proposal_id: ProposalId, node: NodeDep) -> dict[str, Any]:
    return node.consortium.proposal(proposal_id).as_dict()


def _need_target(body: ProposalIn) -> str:
    if not body.target:
        raise InvalidInput(f"a {body.kind} proposal needs a target address", field="target")
    return body.target


@router.post(
    "",
    response_model=ProposalOut,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a membership change or a device unbinding (council only)",
)
def propose(body: ProposalIn, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    sender = signer_for(node, member, Role.COUNCIL)
    c = node.consortium
    if body.kind == "admit":
        pid, _ = c.propose_admit(
            sender,
            _need_target(body),
            parse_roles(body.roles),
            body.metadata_hash,
            body.encryption_key,
        )
    elif body.kind == "set_roles":
        pid, _ = c.propose_set_roles(sender, _need_target(body), parse_roles(body.roles))
    elif body.kind == "suspend":
        pid, _ = c.propose_suspend(sender, _need_target(body))
    elif body.kind == "readmit":
        pid, _ = c.propose_readmit(sender, _need_target(body))
    elif body.kind == "unbind_device":
        pid, _ = c.propose_unbind_device(sender, _need_target(body))
    else:
        if body.quorum is None:
            raise InvalidInput("a set_quorum proposal needs quorum", field="quorum")
        pid, _ = c.propose_quorum(sender, body.quorum)
    return c.proposal(pid).as_dict()


@router.post("/{proposal_id}/approve", response_model=ProposalOut)
def approve(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    node.consortium.approve(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id).as_dict()


@router.post("/{proposal_id}/cancel", response_model=ProposalOut)
def cancel(proposal_id: ProposalId, node: NodeDep, member: MemberDep) -> dict[str, Any]:
    node.consortium.cancel(signer_for(node, member, Role.COUNCIL), proposal_id)
    return node.consortium.proposal(proposal_id).as_dict()
