"""Designs over HTTP: register (by upload or by hash), certificates, verification, licences,
encrypted shares. Writes are signed by the node with the signed-in member's key.

Strangers get public chain facts only (verification, licences); listings, metadata and
certificates need a member's token, and an unrevealed design shows to its designer only."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import NodeDep, SessionDep
from api.params import MAX_UINT256
from api.uploads import Buffer, Hasher, read_form
from ledger.core.blobs import BlobWriter
from ledger.core.errors import InvalidInput
from ledger.core.settings import MAX_JSON_BYTES
from ledger.designs.certificates import Certificate, Verdict, lookup, verify_certificate
from ledger.designs.client import Licence, SharePackage, ShareRecord, design_id
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
    parent_id: str | None = Field(default=None, description="the version it derives from")
    successor_id: str | None = Field(
        default=None, description="the newer version that superseded it (status superseded)"
    )
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


class SupersedeIn(BaseModel):
    successor_id: str = Field(pattern=Hex32)


class LicenceIn(BaseModel):
    royalty_ppm: int = Field(ge=0, le=1_000_000, description="parts per million of the price")


class ShareIn(BaseModel):
    recipients: list[str] = Field(min_length=1, max_length=100)


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


def _multipart(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that streams its multipart form itself."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    content = {"multipart/form-data": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


_BINARY = {"type": "string", "format": "binary"}
_HEX32 = {"type": "string", "pattern": Hex32}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register uploaded files (several files: one batch transaction)",
    response_description="one certificate (proof bundle) per file",
    openapi_extra=_multipart(
        {
            "files": {"type": "array", "items": _BINARY, "description": "design files"},
            "parent_id": _HEX32,
            "title": {"type": "string", "maxLength": 500},
        },
        ["files"],
    ),
)
async def register_files(
    request: Request, node: NodeDep, session: SessionDep
) -> list[dict[str, Any]]:
    """Each file is hashed and written to the blob store as it arrives (constant memory,
    up to `$COFAB_MAX_UPLOAD_BYTES` per request), and kept only if registration succeeds."""
    svc = node.design_service()
    staged: list[BlobWriter] = []

    def stage(_name: str) -> BlobWriter:
        staged.append(svc.blobs.writer())
        return staged[-1]

    try:
        form = await read_form(request, {"files": stage}, frozenset({"parent_id", "title"}))
        title = form.fields.get("title")
        if title is not None and len(title) > 500:
            raise InvalidInput("title may be at most 500 characters", field="title")
        parent_id = form.fields.get("parent_id") or None
        if parent_id is not None and not re.fullmatch(Hex32, parent_id):
            raise InvalidInput(
                f"parent_id {parent_id!r} is not a SHA-256 hash (64 hex digits)", field="parent_id"
            )
        if not form.files:
            raise InvalidInput("give at least one file in 'files'", field="files")
        items = []
        for part in form.files:
            await run_in_threadpool(part.sink.finish)
            name = part.filename or "design"
            items.append(NewDesign.from_staged(part.sink, file_name=name, title=title))
        sender = node.sender(session.address)
        return _certs(await run_in_threadpool(svc.register, sender, items, parent_id))
    finally:
        for blob in staged:
            blob.discard()  # nothing if committed


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


@router.post(
    "/verify",
    response_model=Verdict,
    summary="Verify a file (or hash) and bundle",
    openapi_extra=_multipart(
        {
            "file": {**_BINARY, "description": "the design file"},
            "design": {**_HEX32, "description": "or its SHA-256"},
            "bundle": {**_BINARY, "description": "the certificate JSON"},
        }
    ),
)
async def verify(request: Request, node: NodeDep) -> Verdict:
    """200 with who/when/which block; 404 not registered; 422 the bundle does not match.
    The file is hashed as it arrives, never held in memory."""
    form = await read_form(
        request,
        {"file": lambda _name: Hasher(), "bundle": lambda name: Buffer(name, MAX_JSON_BYTES)},
        frozenset({"design"}),
    )
    for name in ("file", "bundle"):
        if sum(f.field == name for f in form.files) > 1:
            raise InvalidInput(f"give one {name}", field=name)
    file, bundle, design = form.file("file"), form.file("bundle"), form.fields.get("design")
    if (file is None) == (design is None):
        raise InvalidInput("give exactly one of a file or a design id")
    if design is not None and not re.fullmatch(Hex32, design):
        raise InvalidInput(
            f"design {design!r} is not a SHA-256 hash (64 hex digits)", field="design"
        )
    did = file.sink.digest() if file is not None else design_id(str(design))
    w3 = node.chain.w3
    if bundle is not None:
        cert = Certificate.loads(bytes(bundle.sink.data))
        verdict = await run_in_threadpool(verify_certificate, w3, did, cert)
    else:
        verdict = await run_in_threadpool(lookup, w3, node.designs.address, did)
    return verdict


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


@router.get("/{design}/licences/{licensee}", response_model=Licence)
def licence(
    design: str,
    licensee: str,
    node: NodeDep,
    block: Annotated[
        int | None, Query(ge=0, le=MAX_UINT256, description="at this past block")
    ] = None,
) -> Licence:
    return node.designs.licence(design, licensee, block)


@router.get(
    "/{design}/licences",
    response_model=list[Licence],
    summary="Every licence of a design ever granted, as it stands now (active or revoked)",
)
def licences(design: str, node: NodeDep) -> list[Licence]:
    return node.designs.licences(design)


@router.get(
    "/{design}/shares",
    response_model=list[ShareRecord],
    summary="A design's encrypted shares recorded on the chain, one per recipient",
)
def shares(design: str, node: NodeDep) -> list[ShareRecord]:
    return node.designs.shares(design)


@router.put("/{design}/licences/{licensee}", response_model=Licence, summary="Grant a licence")
def grant(
    design: str, licensee: str, body: LicenceIn, node: NodeDep, session: SessionDep
) -> Licence:
    svc = node.design_service()
    sender = node.sender(session.address)
    return svc.grant_licence(sender, design, licensee, body.royalty_ppm)


@router.delete("/{design}/licences/{licensee}", response_model=Licence)
def revoke_licence(design: str, licensee: str, node: NodeDep, session: SessionDep) -> Licence:
    svc = node.design_service()
    return svc.revoke_licence(node.sender(session.address), design, licensee)


@router.post(
    "/{design}/shares",
    response_model=list[ShareRecord],
    status_code=status.HTTP_201_CREATED,
    summary="Share your design encrypted with licensed members (file held by this node)",
)
def share(design: str, body: ShareIn, node: NodeDep, session: SessionDep) -> list[ShareRecord]:
    return node.design_service().share(node.sender(session.address), design, body.recipients)


@router.get(
    "/{design}/share",
    response_model=SharePackage,
    summary="Your encrypted share of a design (decrypt it with `cofab design fetch --package`)",
)
def package(design: str, node: NodeDep, session: SessionDep) -> SharePackage:
    return node.design_service().package(design, session.address)


@router.post(
    "/shares/import",
    response_model=ShareRecord,
    summary="Keep your share package from the designer's node here, to decrypt it on this node",
)
def import_share(body: dict[str, Any], node: NodeDep, session: SessionDep) -> ShareRecord:
    """`body` is the package `GET /designs/{id}/share` served on the designer's node."""
    return node.design_service().import_package(body, session.address)


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
