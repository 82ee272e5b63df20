"""The hand-over inbox: one factory signs its side of a hand-over in its browser and
leaves it here; the other factory finds it waiting for its signature, signs and submits
both (`POST /jobs/{job_id}/handover`). Nothing reaches the chain with one signature."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import NodeDep, SessionDep
from api.params import JobId
from api.routers.jobs import HandoverIn, handover_record
from ledger.core.errors import InvalidInput
from ledger.orders.inbox import PendingHandover

router = APIRouter(tags=["jobs"])


class InboxOut(BaseModel):
    waiting: list[PendingHandover] = Field(description="waiting for your signature")
    sent: list[PendingHandover] = Field(description="signed by you, waiting for the other")


@router.post(
    "/jobs/{job_id}/handover/pending",
    response_model=PendingHandover,
    status_code=status.HTTP_201_CREATED,
    summary="Leave your signed side of a hand-over in the other factory's inbox",
)
def post_pending(
    job_id: JobId, body: HandoverIn, node: NodeDep, session: SessionDep
) -> PendingHandover:
    """Exactly one of `from_signature` / `to_signature`: yours, for your split's side."""
    signatures = [s for s in (body.from_signature, body.to_signature) if s]
    if len(signatures) != 1:
        raise InvalidInput(
            "give exactly one signature (from_signature or to_signature): your own side",
            field="signature",
        )
    record = handover_record(job_id, body)
    return node.handover_inbox().post(record, signatures[0], session.address)


@router.get(
    "/handovers/inbox",
    response_model=InboxOut,
    summary="Hand-overs waiting for your signature, and those waiting for the other side",
)
def inbox(node: NodeDep, session: SessionDep) -> InboxOut:
    waiting, sent = node.handover_inbox().pending(session.address)
    return InboxOut(waiting=waiting, sent=sent)
