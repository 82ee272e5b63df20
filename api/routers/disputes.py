"""Disputes over HTTP: list and read them; open one, add evidence, vote, lapse.

Writes are signed by the node with the signed-in member's own key (it must hold it, else
the member signs the transaction itself and relays it with POST /tx): opening and evidence
need the buyer or factory role, votes the auditor role. A lapse, which any member may
trigger, is signed by the caller's own key too. Payout shares are parts per million of the
split's amount; amounts are integers in token units.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import MemberDep, NodeDep, signer_for
from api.params import MAX_UINT256, DisputeId, SplitIndex, Uint32, Uint256
from ledger.core.abi import PPM_SCALE
from ledger.disputes.client import MAX_TEXT_BYTES, Dispute, DisputeStatus
from ledger.membership.roles import Role
from ledger.node import Node

router = APIRouter(prefix="/disputes", tags=["disputes"])

Hex32 = r"^(0x)?[0-9a-fA-F]{64}$"
PARTY = int(Role.BUYER | Role.FACTORY)  # who can be a claimant or respondent


class OpenIn(BaseModel):
    job_id: Uint256 = Field(gt=0)
    split_id: SplitIndex
    reason: str = Field(min_length=1, max_length=MAX_TEXT_BYTES, description="what is disputed")
    evidence_hash: str = Field(pattern=Hex32, description="hash of the claimant's evidence")


class EvidenceIn(BaseModel):
    evidence_hash: str = Field(pattern=Hex32)
    uri: str = Field(default="", max_length=MAX_TEXT_BYTES, description="where to fetch it")


class VoteIn(BaseModel):
    payout_ppm: Uint32 = Field(le=PPM_SCALE, description="share of the split to pay")
    fault: Literal["none", "buyer", "factory"] = "none"


def _show(node: Node, dispute_id: int) -> Dispute:
    return node.disputes.show(dispute_id)


@router.get("", response_model=list[Dispute], summary="Every dispute (or one job's)")
def list_disputes(
    node: NodeDep,
    job: int | None = Query(
        default=None, gt=0, le=MAX_UINT256, description="only this job's disputes"
    ),
    state: Literal["open", "ruled", "lapsed"] | None = Query(default=None, alias="status"),
) -> list[Dispute]:
    wanted = DisputeStatus[state.upper()] if state else None
    return node.disputes.list(job, wanted)


@router.get("/{dispute_id}", response_model=Dispute, summary="A dispute and its history")
def show_dispute(dispute_id: DisputeId, node: NodeDep) -> Dispute:
    return _show(node, dispute_id)


@router.post(
    "",
    response_model=Dispute,
    status_code=status.HTTP_201_CREATED,
    summary="Open a dispute on a split as its buyer or factory (freezes its payout)",
)
def open_dispute(body: OpenIn, node: NodeDep, member: MemberDep) -> Dispute:
    dispute_id = node.disputes.open(
        signer_for(node, member, PARTY),
        body.job_id,
        body.split_id,
        body.reason,
        body.evidence_hash,
    )
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/evidence",
    response_model=Dispute,
    summary="Add evidence as the claimant or respondent, until the evidence deadline",
)
def add_evidence(
    dispute_id: DisputeId, body: EvidenceIn, node: NodeDep, member: MemberDep
) -> Dispute:
    node.disputes.add_evidence(
        signer_for(node, member, PARTY), dispute_id, body.evidence_hash, body.uri
    )
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/votes",
    response_model=Dispute,
    summary="Vote as an auditor who is not a party; the quorum's vote rules",
)
def vote(dispute_id: DisputeId, body: VoteIn, node: NodeDep, member: MemberDep) -> Dispute:
    node.disputes.vote(
        signer_for(node, member, Role.AUDITOR), dispute_id, body.payout_ppm, body.fault
    )
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/lapse",
    response_model=Dispute,
    summary="Close a dispute without ruling after its ruling deadline (any member, "
    "signed with its own key)",
)
def lapse(dispute_id: DisputeId, node: NodeDep, member: MemberDep) -> Dispute:
    node.disputes.lapse(signer_for(node, member), dispute_id)
    return _show(node, dispute_id)
