"""Production steps: ingest (pre-signed or signed by the node), timeline, anchors, bundles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.deps import MemberDep, NodeDep, signer_for
from api.params import MAX_UINT256, JobId, SplitId
from ledger.core.errors import Forbidden, NotFound
from ledger.membership.roles import Role
from ledger.steps.anchoring import AnchorOutcome
from ledger.steps.bundle import Bundle, Encoding, encoded
from ledger.steps.compact import MEDIA_TYPE
from ledger.steps.ingest import BatchIn, IngestResult, StepIn
from ledger.steps.journal import Equivocation, StepWithPayload
from ledger.steps.record import ethers_document, types_document
from ledger.steps.service import SplitTimeline
from ledger.verify.checker import StepsReport, verify_bundle

router = APIRouter(tags=["production steps"])


class RecordIn(BaseModel):
    payload: dict[str, Any] = Field(description="an EPCIS 2.0 event")
    evidence_hashes: list[str] = Field(default_factory=list, description="SHA-256 of files")


@router.get(
    "/steps/types",
    summary="EIP-712 domain and types of a step: eth_signTypedData_v4 shape, and `ethers` v6's",
)
def step_types(node: NodeDep) -> dict[str, Any]:
    """`types` (with EIP712Domain), `primaryType` and `domain` build the eth_signTypedData_v4
    JSON with your message; `ethers` holds `domain` and `types` for ethers v6
    `signer.signTypedData(domain, types, message)`, which refuses EIP712Domain in `types`."""
    domain = node.steps.domain
    return {**types_document(), "domain": domain.as_dict(), "ethers": ethers_document(domain)}


@router.post("/steps", response_model=IngestResult, summary="Submit one pre-signed step")
def submit(body: StepIn, node: NodeDep) -> IngestResult:
    return node.steps.ingest([body.submission()])


# The hot path: the raw body goes to the ingest as it is (to its worker processes, when
# the node runs them); StepIn's schema is published by POST /steps.
_BATCH_SCHEMA = BatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
_BATCH_SCHEMA.pop("$defs", None)


@router.post(
    "/steps/batch",
    response_model=IngestResult,
    summary="Submit pre-signed steps; all are stored, or none",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BATCH_SCHEMA}},
        }
    },
)
async def submit_batch(request: Request, node: NodeDep) -> IngestResult:
    raw = await request.body()
    try:
        return await run_in_threadpool(node.steps.ingestor.ingest_body, raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


@router.post(
    "/jobs/{job_id}/splits/{split_id}/steps",
    response_model=IngestResult,
    status_code=status.HTTP_201_CREATED,
    summary="Record the split's next step, signed by this node with your key",
)
def record(
    job_id: JobId, split_id: SplitId, body: RecordIn, node: NodeDep, member: MemberDep
) -> IngestResult:
    sender = signer_for(node, member, Role.FACTORY)
    return node.steps.record(sender.address, job_id, split_id, body.payload, body.evidence_hashes)


@router.get(
    "/jobs/{job_id}/splits/{split_id}/steps",
    response_model=SplitTimeline,
    summary="The split's timeline of steps",
)
def timeline(job_id: JobId, split_id: SplitId, node: NodeDep) -> SplitTimeline:
    return node.steps.timeline(job_id, split_id)


@router.post(
    "/jobs/{job_id}/splits/{split_id}/anchor",
    response_model=list[AnchorOutcome],
    summary="Anchor the split's unanchored steps now, signed with the split factory's own key",
)
def anchor(
    job_id: JobId,
    split_id: SplitId,
    node: NodeDep,
    member: MemberDep,
    max_steps: int = Query(1024, ge=1, le=65536),
) -> list[AnchorOutcome]:
    sender = signer_for(node, member, Role.FACTORY)
    factory = node.steps.authority.split_factory(job_id, split_id)
    if factory.lower() != sender.address.lower():
        raise Forbidden(
            f"only the factory of split {split_id} of job {job_id} ({factory}) anchors its "
            "steps on demand; the node anchors pending steps by its own policy"
        )
    return node.steps.anchor(job_id, split_id, max_steps, sender=sender)


@router.get(
    "/jobs/{job_id}/steps/export",
    summary="Proof bundle of the job's steps",
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
def export(
    job_id: JobId,
    node: NodeDep,
    split: int | None = Query(default=None, ge=0, le=MAX_UINT256, description="one split"),
    fmt: Encoding = Query(default=Encoding.JSON, alias="format", description="json or compact"),
) -> Any:
    data = node.steps.export(job_id, split)
    if fmt is Encoding.COMPACT:
        return Response(encoded(data, fmt), media_type=MEDIA_TYPE)
    return data


@router.post(
    "/steps/verify",
    response_model=StepsReport,
    summary="Verify a proof bundle against the chain",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def verify(request: Request, node: NodeDep) -> StepsReport:
    """The bundle as JSON, or in the compact form (told by its first bytes)."""
    raw = await request.body()
    return await run_in_threadpool(lambda: verify_bundle(Bundle.load(raw), node.chain.w3).report())


@router.get(
    "/steps/equivocations",
    response_model=list[Equivocation],
    summary="Conflicting steps refused as equivocation",
)
def equivocations(node: NodeDep) -> list[Equivocation]:
    return node.steps.journal.equivocations()


@router.get("/steps/{step_hash}", response_model=StepWithPayload, summary="One stored step")
def show(step_hash: str, node: NodeDep) -> StepWithPayload:
    found = node.steps.find(step_hash)
    if found is None:
        raise NotFound(f"no step {step_hash} in this node's journal")
    stored, payload = found
    return StepWithPayload.of(stored, payload=payload.decode() if payload else None)
