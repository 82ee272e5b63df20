"""The audit of a job, as JSON or as a page."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.deps import NodeDep
from api.params import JobId
from ledger.audit.engine import AuditInputs, audit, contracts_of, seal
from ledger.audit.html import render
from ledger.core.errors import NotFound
from ledger.steps.bundle import Bundle

router = APIRouter(tags=["audit"])


class Format(StrEnum):
    JSON = "json"
    HTML = "html"


class AuditIn(BaseModel):
    bundles: list[dict[str, Any]] = Field(default_factory=list, description="step bundles")
    include_node_steps: bool = Field(default=True, description="add this node's own steps")


def _own_bundle(node: Any, job_id: int) -> list[Bundle | dict[str, Any]]:
    try:
        return [node.steps.export(job_id)]
    except NotFound:
        return []


def _run(node: Any, job_id: int, bundles: list[Bundle | dict[str, Any]]) -> dict[str, Any]:
    return seal(audit(contracts_of(node), job_id, AuditInputs(bundles=bundles)))


def _respond(report: dict[str, Any], fmt: Format) -> Any:
    return HTMLResponse(render(report)) if fmt is Format.HTML else report


@router.get("/jobs/{job_id}/audit", summary="Audit a job with this node's evidence")
async def audit_job(job_id: JobId, node: NodeDep, format: Format = Format.JSON) -> Any:
    bundles = await run_in_threadpool(_own_bundle, node, job_id)
    return _respond(await run_in_threadpool(_run, node, job_id, bundles), format)


@router.post("/jobs/{job_id}/audit", summary="Audit a job with the evidence bundles given")
async def audit_with(
    job_id: JobId, body: AuditIn, node: NodeDep, format: Format = Format.JSON
) -> Any:
    bundles: list[Bundle | dict[str, Any]] = [Bundle.load(b) for b in body.bundles]
    if body.include_node_steps:
        bundles += await run_in_threadpool(_own_bundle, node, job_id)
    return _respond(await run_in_threadpool(_run, node, job_id, bundles), format)
