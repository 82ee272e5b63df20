"""Designs over HTTP: register (by upload or by hash), certificates, verification, licences,
encrypted shares. Writes are signed by the node with the signed-in member's key.

Strangers get public chain facts only (verification, licences); listings, metadata and
certificates need a member's token, and an unrevealed design shows to its designer only."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import NodeDep, SessionDep
from api.params import MAX_UINT256
from ledger.core.errors import InvalidInput
from ledger.designs.certificates import Certificate, lookup, verify_certificate
from ledger.designs.client import design_id
from ledger.designs.files import NewDesign

router = APIRouter(prefix="/designs", tags=["designs"])

Hex32 = r"^(0x)?[0-9a-fA-F]{64}$"
AddressPattern = r"^0x[0-9a-fA-F]{40}$"


class DesignOut(BaseModel):
    design_id: str
    designer: str
    registered_at: int
    block_number: int
    status: str = Field(
        description="active | superseded | revoked | unrevealed (committed, not on chain yet)"
    )
    from_batch: bool
    revoked_at_block: int | None = None
    tx_hash: str | None = None
    parent_id: str | None = None
    metadata: dict[str, Any] | None = None
    batch_root: str | None = None


class ByHashItem(BaseModel):
    design_id: str = Field(pattern=Hex32, description="SHA-256 of the file")
    title: str | None = None
    metadata_hash: str | None = Field(
        default=None, pattern=Hex32, description="your own metadata hash (else the node's)"
    )


class ByHashIn(BaseModel):
    designs: list[ByHashItem] = Field(min_length=1, max_length=10_000)
    parent_id: str | None = Field(default=None, pattern=Hex32)


class VerdictOut(BaseModel):
    registered: bool
    design_id: str
    designer: str
    block_number: int
    block_time: int
    chain_id: int
    contract: str
    kind: str
    tx_hash: str | None
    status: str | None
    priority: str = Field(description="held | unrevealed | preceded")
    notes: list[str]


class SupersedeIn(BaseModel):
    successor_id: str = Field(pattern=Hex32)


class LicenceIn(BaseModel):
    royalty_ppm: int = Field(ge=0, le=1_000_000, description="parts per million of the price")


class LicenceOut(BaseModel):
    design_id: str
    licensee: str
    active: bool
    designer: str
    royalty_ppm: int
    block_number: int | None


class ShareIn(BaseModel):
    recipients: list[str] = Field(min_length=1, max_length=100)


class ShareOut(BaseModel):
    design_id: str
    recipient: str
    ciphertext_hash: str
    wrapped_key_hash: str
    block_number: int


class PackageOut(ShareOut):
    envelope: str = Field(description="the key envelope (canonical JSON text)")
    ciphertext: str = Field(description="the AES-256-GCM ciphertext blob, base64")


class KeyOut(BaseModel):
    address: str
    encryption_key: str
    tx_hash: str


def _certs(certs: list[Certificate]) -> list[dict[str, Any]]:
    return [c.to_json() for c in certs]


@router.get(
    "", response_model=list[DesignOut], summary="Designs on chain (and your unrevealed ones)"
)
def list_designs(
    node: NodeDep,
    session: SessionDep,
    designer: Annotated[str | None, Query(pattern=AddressPattern)] = None,
) -> list[dict[str, Any]]:
    return node.design_service().listing(designer, viewer=session.address)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register uploaded files (several files: one batch transaction)",
    response_description="one certificate (proof bundle) per file",
)
async def register_files(
    node: NodeDep,
    session: SessionDep,
    files: Annotated[list[UploadFile], File(description="design files")],
    parent_id: Annotated[str | None, Form(pattern=Hex32)] = None,
    title: Annotated[str | None, Form(max_length=500)] = None,
) -> list[dict[str, Any]]:
    items = []
    for upload in files:
        content = await upload.read()
        name = upload.filename or "design"
        items.append(NewDesign.from_bytes(content, file_name=name, title=title))
    svc = node.design_service()
    return _certs(svc.register(node.sender(session.address), items, parent_id))


@router.post(
    "/by-hash",
    status_code=status.HTTP_201_CREATED,
    summary="Register designs by their SHA-256 only (the node never sees the files)",
)
def register_hashes(body: ByHashIn, node: NodeDep, session: SessionDep) -> list[dict[str, Any]]:
    items = [
        NewDesign.from_hash(
            design_id(d.design_id),
            title=d.title,
            given_metadata_hash=design_id(d.metadata_hash, "metadata hash")
            if d.metadata_hash
            else None,
        )
        for d in body.designs
    ]
    svc = node.design_service()
    return _certs(svc.register(node.sender(session.address), items, body.parent_id))


@router.post("/verify", response_model=VerdictOut, summary="Verify a file (or hash) and bundle")
async def verify(
    node: NodeDep,
    file: Annotated[UploadFile | None, File(description="the design file")] = None,
    design: Annotated[str | None, Form(pattern=Hex32, description="or its SHA-256")] = None,
    bundle: Annotated[UploadFile | None, File(description="the certificate JSON")] = None,
) -> dict[str, Any]:
    """200 with who/when/which block; 404 not registered; 422 the bundle does not match."""
    if (file is None) == (design is None):
        raise InvalidInput("give exactly one of a file or a design id")
    content = await file.read() if file is not None else None
    did = hashlib.sha256(content).digest() if content is not None else design_id(str(design))
    w3 = node.chain.w3
    if bundle is not None:
        verdict = verify_certificate(w3, did, Certificate.loads(await bundle.read()))
    else:
        verdict = lookup(w3, node.designs.address, did)
    return verdict.as_dict()


class BatchOut(BaseModel):
    root: str
    designer: str
    count: int
    manifest_hash: str = Field(description="SHA-256 of the RFC 8785 manifest, as on chain")
    tx_hash: str
    block_number: int
    manifest: dict[str, Any] = Field(
        description="the StandardMerkleTree dump: `StandardMerkleTree.load(manifest)` of "
        "@openzeppelin/merkle-tree reads it"
    )


@router.get(
    "/batches/{root}",
    response_model=BatchOut,
    summary="A batch's whole Merkle tree, to prove any of its designs",
)
def batch(
    root: Annotated[str, Path(pattern=Hex32)], node: NodeDep, session: SessionDep
) -> dict[str, Any]:
    """Served by the node that registered the batch (404 elsewhere); while a design of the
    batch is not revealed, to its designer only (403)."""
    return node.design_service().batch(root, viewer=session.address)


@router.put(
    "/encryption-key",
    response_model=KeyOut,
    summary="Publish your X25519 key (derived from your key) as your encryption key",
)
def publish_key(node: NodeDep, session: SessionDep) -> KeyOut:
    public, receipt = node.design_service().publish_key(node.sender(session.address))
    return KeyOut(
        address=session.address,
        encryption_key="0x" + public.hex(),
        tx_hash=receipt["transactionHash"].to_0x_hex(),
    )


@router.get("/{design}", response_model=DesignOut)
def show(design: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    return node.design_service().show(design, viewer=session.address)


@router.get("/{design}/certificate", summary="The certificate this node issued")
def certificate(design: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    return node.design_service().certificate_for(design, viewer=session.address).to_json()


@router.post(
    "/{design}/reveal",
    response_model=DesignOut,
    summary="Put your committed design (or batch member) on chain now",
)
def reveal(design: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    svc = node.design_service()
    svc.certificate_for(design, viewer=session.address)
    svc.reveal(node.sender(session.address), design)
    return svc.show(design, viewer=session.address)


@router.post("/{design}/revoke", response_model=DesignOut)
def revoke(design: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    svc = node.design_service()
    svc.revoke(node.sender(session.address), design)
    return svc.show(design, viewer=session.address)


@router.post("/{design}/supersede", response_model=DesignOut)
def supersede(design: str, body: SupersedeIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    svc = node.design_service()
    svc.supersede(node.sender(session.address), design, body.successor_id)
    return svc.show(design, viewer=session.address)


@router.get("/{design}/licences/{licensee}", response_model=LicenceOut)
def licence(
    design: str,
    licensee: str,
    node: NodeDep,
    block: Annotated[
        int | None, Query(ge=0, le=MAX_UINT256, description="at this past block")
    ] = None,
) -> dict[str, Any]:
    return node.designs.licence(design, licensee, block).as_dict()


@router.put("/{design}/licences/{licensee}", response_model=LicenceOut, summary="Grant a licence")
def grant(
    design: str, licensee: str, body: LicenceIn, node: NodeDep, session: SessionDep
) -> dict[str, Any]:
    svc = node.design_service()
    sender = node.sender(session.address)
    granted = svc.grant_licence(sender, design, licensee, body.royalty_ppm)
    return granted.as_dict()  # type: ignore[no-any-return]


@router.delete("/{design}/licences/{licensee}", response_model=LicenceOut)
def revoke_licence(
    design: str, licensee: str, node: NodeDep, session: SessionDep
) -> dict[str, Any]:
    svc = node.design_service()
    revoked = svc.revoke_licence(node.sender(session.address), design, licensee)
    return revoked.as_dict()  # type: ignore[no-any-return]


@router.post(
    "/{design}/shares",
    response_model=list[ShareOut],
    status_code=status.HTTP_201_CREATED,
    summary="Share your design encrypted with licensed members (file held by this node)",
)
def share(design: str, body: ShareIn, node: NodeDep, session: SessionDep) -> list[dict[str, Any]]:
    shares = node.design_service().share(node.sender(session.address), design, body.recipients)
    return [s.as_dict() for s in shares]


@router.get(
    "/{design}/share",
    response_model=PackageOut,
    summary="Your encrypted share of a design (decrypt it with `cofab design fetch --package`)",
)
def package(design: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    return node.design_service().package(design, session.address)


@router.get(
    "/{design}/file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Your share, decrypted by this node with your key (if it holds it)",
)
def fetch(design: str, node: NodeDep, session: SessionDep) -> Response:
    account = node.sender(session.address).account
    plaintext = node.design_service().fetch(account, design)
    return Response(plaintext, media_type="application/octet-stream")
