"""An order's timeline: every chain event about it, in order, with block times. Read from
the chain alone (the same record the audit starts from)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import NodeDep
from api.params import JobId
from ledger.audit import chain_record
from ledger.audit.chain_record import Event
from ledger.audit.engine import contracts_of

router = APIRouter(tags=["jobs"])


@router.get(
    "/jobs/{job_id}/events",
    response_model=list[Event],
    summary="Every chain event about an order, oldest first",
)
async def job_events(job_id: JobId, node: NodeDep) -> list[Event]:
    def read() -> list[Event]:
        return chain_record.load(contracts_of(node), job_id).events

    return await run_in_threadpool(read)
