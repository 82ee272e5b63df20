"""An order's timeline: every chain event about it, in order, with block times. Read from
the chain alone (the same record the audit starts from)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import NodeDep
from api.params import JobId
from ledger.audit import chain_record
from ledger.audit.engine import contracts_of

router = APIRouter(tags=["jobs"])


class EventOut(BaseModel):
    contract: str = Field(description="JobBoard | Settlement | DesignRegistry | Traceability | ...")
    event: str
    args: dict[str, Any]
    block: int
    tx: str
    time: int = Field(description="the block's time, unix seconds")


@router.get(
    "/jobs/{job_id}/events",
    response_model=list[EventOut],
    summary="Every chain event about an order, oldest first",
)
async def job_events(job_id: JobId, node: NodeDep) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return [e.as_dict() for e in chain_record.load(contracts_of(node), job_id).events]

    return await run_in_threadpool(read)
