"""Disputes over HTTP: list and read them; open one, add evidence, vote, lapse.

Writes are sent by the node with the signed-in member's key (it must hold it); a lapse,
which anyone may trigger, falls back to the node operator's key. Payout shares are parts
per million of the split's amount; amounts are integers in token units.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import NodeDep, SessionDep
from ledger.disputes import MAX_TEXT_BYTES, DisputeStatus
from ledger.errors import Forbidden
from ledger.node import Node
from ledger.tx import Sender

router = APIRouter(prefix="/disputes", tags=["disputes"])

Hex32 = r"^(0x)?[0-9a-fA-F]{64}$"


class OpenIn(BaseModel):
    job_id: int = Field(gt=0)
    split_id: int = Field(ge=0, lt=64)
    reason: str = Field(min_length=1, max_length=MAX_TEXT_BYTES, description="what is disputed")
    evidence_hash: str = Field(pattern=Hex32, description="hash of the claimant's evidence")


class EvidenceIn(BaseModel):
    evidence_hash: str = Field(pattern=Hex32)
    uri: str = Field(default="", max_length=MAX_TEXT_BYTES, description="where to fetch it")


class VoteIn(BaseModel):
    payout_ppm: int = Field(ge=0, le=1_000_000, description="share of the split to pay")
    fault: Literal["none", "buyer", "factory"] = "none"


class EvidenceOut(BaseModel):
    party: str
    evidence_hash: str
    uri: str
    block: int
    time: int
    tx: str


class VoteOut(BaseModel):
    auditor: str
    payout_ppm: int
    fault: str
    block: int
    time: int
    tx: str


class RulingOut(BaseModel):
    payout_ppm: int
    payout: int
    refund: int
    fault: str


class DisputeOut(BaseModel):
    id: int
    job_id: int
    split_id: int
    status: str = Field(description="open | ruled | lapsed")
    phase: str = Field(description="evidence | voting | lapsable | ruled | lapsed")
    claimant: str
    respondent: str
    reason: str
    evidence_hash: str
    opened_at: int
    evidence_deadline: int
    ruling_deadline: int
    respondent_heard: bool
    votes: int
    quorum: int
    ruling: RulingOut | None
    evidence: list[EvidenceOut]
    vote_list: list[VoteOut]
    opened_tx: str
    closed_tx: str | None


def _show(node: Node, dispute_id: int) -> dict[str, Any]:
    return node.disputes.show(dispute_id).as_dict()


def _anyone(node: Node, address: str) -> Sender:
    """The signed-in member's key if this node holds it, else the operator's."""
    try:
        return node.sender(address)
    except Forbidden:
        return node.sender()


@router.get("", response_model=list[DisputeOut], summary="Every dispute (or one job's)")
def list_disputes(
    node: NodeDep,
    job: int | None = Query(default=None, gt=0, description="only this job's disputes"),
    state: Literal["open", "ruled", "lapsed"] | None = Query(default=None, alias="status"),
) -> list[dict[str, Any]]:
    wanted = DisputeStatus[state.upper()] if state else None
    return [d.as_dict() for d in node.disputes.list(job, wanted)]


@router.get("/{dispute_id}", response_model=DisputeOut, summary="A dispute and its history")
def show_dispute(dispute_id: int, node: NodeDep) -> dict[str, Any]:
    return _show(node, dispute_id)


@router.post(
    "",
    response_model=DisputeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a dispute on a split as its buyer or factory (freezes its payout)",
)
def open_dispute(body: OpenIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    dispute_id = node.disputes.open(
        node.sender(session.address), body.job_id, body.split_id, body.reason, body.evidence_hash
    )
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/evidence",
    response_model=DisputeOut,
    summary="Add evidence as the claimant or respondent, until the evidence deadline",
)
def add_evidence(
    dispute_id: int, body: EvidenceIn, node: NodeDep, session: SessionDep
) -> dict[str, Any]:
    node.disputes.add_evidence(
        node.sender(session.address), dispute_id, body.evidence_hash, body.uri
    )
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/votes",
    response_model=DisputeOut,
    summary="Vote as an auditor who is not a party; the quorum's vote rules",
)
def vote(dispute_id: int, body: VoteIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    node.disputes.vote(node.sender(session.address), dispute_id, body.payout_ppm, body.fault)
    return _show(node, dispute_id)


@router.post(
    "/{dispute_id}/lapse",
    response_model=DisputeOut,
    summary="Close a dispute without ruling after its ruling deadline (anyone)",
)
def lapse(dispute_id: int, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    node.disputes.lapse(_anyone(node, session.address), dispute_id)
    return _show(node, dispute_id)
