"""Orders over HTTP: create, fund, split, accept (directly or by a relayed EIP-712
signature), hand over, deliver, accept delivery, finalise after the review period, cancel,
expire, and the readable view.

The node signs a transaction, or a consent, only with the signed-in member's own key, and
only for what that member's part in the order allows: never with the operator's or any
other key it holds. When it does not hold the member's key the request is refused (403):
the member signs the transaction itself and submits it. Amounts are integers in the
token's smallest unit (1e-6 for the demo dollar).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import NodeDep, SessionDep
from api.params import (
    MAX_UINT256,
    JobId,
    SignedUint64,
    SignedUint256,
    SplitId,
    SplitIndex,
    Uint32,
    Uint48,
    Uint64,
    Uint128,
)
from api.sessions import Session
from ledger.core.abi import PPM_SCALE
from ledger.core.errors import Forbidden
from ledger.eth import eip712
from ledger.node import Node
from ledger.orders.jobs import MAX_REVIEW_PERIOD, JobSummary, JobView, SplitSpec, label32
from ledger.orders.signing import Acceptance, Handover

router = APIRouter(prefix="/jobs", tags=["jobs"])

Hex32 = r"^(0x)?[0-9a-fA-F]{64}$"
AddressPattern = r"^0x[0-9a-fA-F]{40}$"
SignaturePattern = r"^(0x)?[0-9a-fA-F]{130}$"


# --- bodies -------------------------------------------------------------------------------
class JobIn(BaseModel):
    design_id: str = Field(pattern=Hex32, description="SHA-256 of the design file")
    quantity: Uint64 = Field(gt=0)
    price: Uint128 = Field(gt=0, description="token units (1e-6 for dUSD)")
    deadline: Uint48 = Field(gt=0, description="delivery deadline, unix seconds")
    token: str | None = Field(default=None, pattern=AddressPattern, description="default: dUSD")
    spec_hash: str | None = Field(default=None, pattern=Hex32, description="order document hash")
    review_period: Uint32 | None = Field(
        default=None,
        gt=0,
        le=MAX_REVIEW_PERIOD,
        description="seconds the buyer has to accept or dispute each delivery (default 14 days)",
    )


class SplitIn(BaseModel):
    factory: str = Field(pattern=AddressPattern)
    step: str = Field(min_length=1, description="process step or lot label, ≤ 32 bytes")
    quantity: Uint64 = Field(gt=0)
    share_ppm: Uint32 = Field(gt=0, lt=PPM_SCALE, description="parts per million of the price")
    depends_on: list[SplitIndex] = Field(default_factory=list, description="earlier split ids")


class SplitsIn(BaseModel):
    splits: list[SplitIn] = Field(min_length=1, max_length=64)


class SignedAcceptanceIn(BaseModel):
    nonce: SignedUint256
    deadline: SignedUint256 = Field(gt=0, description="last unix time the signature is valid")
    signature: str = Field(pattern=SignaturePattern)


class HandoverIn(BaseModel):
    from_split: SplitIndex
    to_split: SplitIndex
    lot: str = Field(description="lot label (≤ 32 bytes) or 0x + 64 hex digits")
    quantity: SignedUint64 = Field(gt=0)
    deadline: SignedUint256 = Field(gt=0, description="last unix time the signatures are valid")
    from_signature: str | None = Field(default=None, pattern=SignaturePattern)
    to_signature: str | None = Field(default=None, pattern=SignaturePattern)


class DeliverIn(BaseModel):
    evidence_hash: str | None = Field(default=None, pattern=Hex32)


# --- responses ----------------------------------------------------------------------------
class EthersTypedData(BaseModel):
    """The arguments of ethers v6 `signer.signTypedData(domain, types, message)`."""

    domain: dict[str, Any]
    types: dict[str, list[dict[str, str]]] = Field(description="without EIP712Domain")
    primaryType: str
    message: dict[str, Any]


class TypedDataOut(BaseModel):
    """The eth_signTypedData_v4 JSON at the top level (for a wallet), and `ethers`: the same
    record in ethers v6's shape. Both sign the same EIP-712 digest."""

    types: dict[str, list[dict[str, str]]] = Field(description="with EIP712Domain")
    primaryType: str  # the eth_signTypedData_v4 field name
    domain: dict[str, Any]
    message: dict[str, Any]
    ethers: EthersTypedData


def _view(node: Node, job_id: int) -> JobView:
    return node.jobs.view(job_id)


def _party(allowed: dict[str, str], session: Session, action: str) -> None:
    """Refuse (403) a member who holds none of the parts (`address` → part) `action` needs."""
    if session.address not in allowed:
        parts = " or ".join(f"the {part} ({who})" for who, part in allowed.items())
        raise Forbidden(f"{session.address} may not {action}: only {parts} may")


# --- reads --------------------------------------------------------------------------------
@router.get("", response_model=list[JobSummary], summary="Every order (or one party's)")
def list_jobs(
    node: NodeDep,
    party: str | None = Query(default=None, pattern=AddressPattern, description="buyer/factory"),
) -> list[JobSummary]:
    return node.jobs.list_jobs(party)


@router.get("/{job_id}", response_model=JobView, summary="An order: splits, custody, payouts")
def show_job(job_id: JobId, node: NodeDep) -> JobView:
    return _view(node, job_id)


@router.get(
    "/{job_id}/splits/{split_id}/acceptance",
    response_model=TypedDataOut,
    summary="The EIP-712 acceptance the split's factory signs (wallet and ethers shapes)",
)
def acceptance_typed_data(
    job_id: JobId,
    split_id: SplitId,
    node: NodeDep,
    deadline: Annotated[
        int | None, Query(gt=0, le=MAX_UINT256, description="default: in 24 hours")
    ] = None,
) -> dict[str, Any]:
    return eip712.served(node.jobs.typed_data(node.jobs.acceptance(job_id, split_id, deadline)))


@router.post(
    "/{job_id}/handover/typed-data",
    response_model=TypedDataOut,
    summary="The EIP-712 hand-over both factories sign (signatures in the body are ignored)",
)
def handover_typed_data(job_id: JobId, body: HandoverIn, node: NodeDep) -> dict[str, Any]:
    return eip712.served(node.jobs.typed_data(handover_record(job_id, body)))


# --- writes -------------------------------------------------------------------------------
@router.post(
    "", response_model=JobView, status_code=status.HTTP_201_CREATED, summary="Place an order"
)
def create_job(body: JobIn, node: NodeDep, session: SessionDep) -> JobView:
    job_id, _ = node.jobs.create(
        node.sender(session.address),
        body.design_id,
        body.quantity,
        body.price,
        body.deadline,
        body.token,
        body.spec_hash,
        body.review_period,
    )
    return _view(node, job_id)


@router.post("/{job_id}/fund", response_model=JobView, summary="Pay the price into escrow")
def fund(job_id: JobId, node: NodeDep, session: SessionDep) -> JobView:
    node.jobs.fund(node.sender(session.address), job_id)
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits",
    response_model=JobView,
    summary="Split by process step (shares + royalty + fee = 1,000,000 ppm)",
)
def split(job_id: JobId, body: SplitsIn, node: NodeDep, session: SessionDep) -> JobView:
    specs = [
        SplitSpec(s.factory, s.step, s.quantity, s.share_ppm, tuple(s.depends_on))
        for s in body.splits
    ]
    node.jobs.split(node.sender(session.address), job_id, specs)
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits/{split_id}/accept", response_model=JobView, summary="Accept your split"
)
def accept(job_id: JobId, split_id: SplitId, node: NodeDep, session: SessionDep) -> JobView:
    node.jobs.accept(node.sender(session.address), job_id, split_id)
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits/{split_id}/accept-signed",
    response_model=JobView,
    summary="Relay a factory's signed EIP-712 acceptance (as the buyer or that factory)",
)
def accept_signed(
    job_id: JobId, split_id: SplitId, body: SignedAcceptanceIn, node: NodeDep, session: SessionDep
) -> JobView:
    split = node.jobs.split_record(job_id, split_id)
    buyer = node.jobs.raw_job(job_id).buyer
    parts = {buyer: f"buyer of job {job_id}", split.factory: f"factory of split {split_id}"}
    _party(parts, session, f"relay the acceptance of split {split_id} of job {job_id}")
    record = Acceptance(job_id, split_id, split.factory, split.share_ppm, body.nonce, body.deadline)
    signature = eip712.signature_bytes(body.signature)
    node.jobs.accept_with_signature(node.sender(session.address), record, signature)
    return _view(node, job_id)


@router.post(
    "/{job_id}/handover",
    response_model=JobView,
    summary="Hand lots over to a dependent split, as one of its two factories",
)
def handover(job_id: JobId, body: HandoverIn, node: NodeDep, session: SessionDep) -> JobView:
    """Submitted by one of the two factories with the other's signature; the node signs the
    submitter's own side with its key (when it holds it). An empty signature of the other
    side is refused by the chain (`HandoverNotSigned`)."""
    giver = node.jobs.split_record(job_id, body.from_split).factory
    taker = node.jobs.split_record(job_id, body.to_split).factory
    parts = {
        giver: f"factory of split {body.from_split}",
        taker: f"factory of split {body.to_split}",
    }
    _party(parts, session, f"submit this hand-over of job {job_id}")
    node.jobs.handover(
        node.sender(session.address),
        handover_record(job_id, body),
        eip712.signature_bytes(body.from_signature, "from_signature"),
        eip712.signature_bytes(body.to_signature, "to_signature"),
    )
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits/{split_id}/deliver", response_model=JobView, summary="Deliver your split"
)
def deliver(
    job_id: JobId,
    split_id: SplitId,
    node: NodeDep,
    session: SessionDep,
    body: DeliverIn | None = None,
) -> JobView:
    evidence = body.evidence_hash if body else None
    node.jobs.deliver(node.sender(session.address), job_id, split_id, evidence)
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits/{split_id}/accept-delivery",
    response_model=JobView,
    summary="Accept a delivery as the buyer: the split's factory is paid",
)
def accept_delivery(
    job_id: JobId, split_id: SplitId, node: NodeDep, session: SessionDep
) -> JobView:
    node.jobs.accept_delivery(node.sender(session.address), job_id, split_id)
    return _view(node, job_id)


@router.post(
    "/{job_id}/splits/{split_id}/finalize",
    response_model=JobView,
    summary="Finalise a delivery as accepted after the buyer's review period (anyone)",
)
def finalize(job_id: JobId, split_id: SplitId, node: NodeDep, session: SessionDep) -> JobView:
    node.jobs.finalize(node.sender(session.address), job_id, split_id)
    return _view(node, job_id)


@router.post("/{job_id}/cancel", response_model=JobView, summary="Cancel before production")
def cancel(job_id: JobId, node: NodeDep, session: SessionDep) -> JobView:
    node.jobs.cancel(node.sender(session.address), job_id)
    return _view(node, job_id)


@router.post("/{job_id}/expire", response_model=JobView, summary="Expire after the deadline")
def expire(job_id: JobId, node: NodeDep, session: SessionDep) -> JobView:
    node.jobs.expire(node.sender(session.address), job_id)
    return _view(node, job_id)


def handover_record(job_id: int, body: HandoverIn) -> Handover:
    lot = label32(body.lot, "lot")
    return Handover(job_id, body.from_split, body.to_split, lot, body.quantity, body.deadline)
