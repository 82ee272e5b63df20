"""Design IP on the real DesignRegistry (eth-tester): priority, versions, batches and claims,
licences and their history, certificates, encrypted sharing, and the blob store."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from conftest import admit, new_account
from ledger import merkle
from ledger.blobs import BlobCorrupt, BlobStore
from ledger.compiler import artifact
from ledger.designs.certificates import (
    LEAF_ENCODING,
    Certificate,
    CertificateInvalid,
    NotRegistered,
    lookup,
    verify_certificate,
)
from ledger.designs.client import ZERO32
from ledger.designs.crypto import (
    DecryptionFailed,
    Envelope,
    decrypt_file,
    encrypt_file,
    encryption_key,
    public_bytes,
    unwrap_key,
    wrap_key,
)
from ledger.designs.files import NewDesign, sha256_files
from ledger.designs.service import DesignService
from ledger.errors import Conflict, ContractRevert, Forbidden, InvalidInput, NotFound
from ledger.node import Node
from ledger.roles import Role
from ledger.settings import NODE_MODULES
from ledger.tx import Sender

DESIGNER = int(Role.DESIGNER)


# --- helpers --------------------------------------------------------------------------
@pytest.fixture
def svc(node: Node) -> DesignService:
    return DesignService(node)


@pytest.fixture
def designer(node: Node) -> Sender:
    return admit(node, DESIGNER)


def drawing(label: str = "") -> NewDesign:
    content = f"solid {label}\n".encode() + os.urandom(64)
    return NewDesign.from_bytes(content, file_name=f"{label or 'part'}.step", title=label or None)


def reverted(exc: pytest.ExceptionInfo[ContractRevert], error: str) -> str:
    assert exc.value.error == error, exc.value.message
    return exc.value.message


def suspend(node: Node, account: str) -> None:
    node.consortium.propose_suspend(node.sender(), account)


def registry_state(node: Node, svc: DesignService) -> tuple[Any, ...]:
    """What a refused action must leave untouched."""
    return node.chain.block_number(), sorted(p.name for p in svc.blobs.root.rglob("*"))


# --- registration and priority ----------------------------------------------------------
def test_single_registration_records_designer_time_block_and_fits_the_gas_target(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    item = drawing("bracket")
    [cert] = svc.register(designer, [item])
    record = node.designs.design(item.design_id)
    assert record.designer == designer.address == cert.designer
    assert record.block_number == cert.block_number and record.registered_at == cert.block_time
    assert record.status == "active" and not record.from_batch
    receipt = node.chain.w3.eth.get_transaction_receipt(cert.tx_hash)
    assert receipt["gasUsed"] <= 55_000
    [event] = node.designs.events("DesignRegistered", designId=item.design_id)
    assert event["args"]["designer"] == designer.address
    assert event["args"]["metadataHash"] == item.metadata_hash
    assert event["args"]["parentId"] == ZERO32
    # the node keeps the file and its metadata document by hash
    assert svc.blobs.get(item.design_id) == item.content
    assert svc.blobs.has(item.metadata_hash)


def test_duplicate_content_is_refused_naming_the_existing_registration(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    item = drawing()
    [cert] = svc.register(designer, [item])
    rival = admit(node, DESIGNER)
    before = registry_state(node, svc)
    with pytest.raises(Conflict) as refused:
        svc.register(rival, [item])
    assert designer.address in refused.value.message
    assert f"block {cert.block_number}" in refused.value.message
    assert registry_state(node, svc) == before
    # the contract refuses it too, to anyone, the registrant included
    for who in (rival, designer):
        with pytest.raises(ContractRevert) as exc:
            node.designs.register(who, item.design_id, ZERO32, item.metadata_hash)
        message = reverted(exc, "DesignExists")
        assert designer.address in message and str(cert.block_number) in message
    # the same content twice in one request is refused before anything is sent
    other = drawing()
    with pytest.raises(InvalidInput, match="same content"):
        svc.register(designer, [other, other])
    assert node.designs.find(other.design_id) is None


def test_versions_need_a_registered_unrevoked_parent(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    v1, v2, v3, orphan = drawing("v1"), drawing("v2"), drawing("v3"), drawing()
    svc.register(designer, [v1])
    [cert] = svc.register(designer, [v2], parent=v1.design_id)
    assert cert.parent_id == v1.design_id
    [event] = node.designs.events("DesignRegistered", designId=v2.design_id)
    assert event["args"]["parentId"] == v1.design_id

    unknown = hashlib.sha256(b"never registered").digest()
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, orphan.design_id, unknown, orphan.metadata_hash)
    assert unknown.hex() in reverted(exc, "UnknownParent")
    with pytest.raises(NotFound, match="parent design"):
        svc.register(designer, [orphan], parent=unknown)

    svc.revoke(designer, v1.design_id)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, v3.design_id, v1.design_id, v3.metadata_hash)
    reverted(exc, "ParentRevoked")
    before = registry_state(node, svc)
    with pytest.raises(Conflict, match="revoked"):
        svc.register(designer, [v3], parent=v1.design_id)
    assert registry_state(node, svc) == before
    assert node.designs.find(v3.design_id) is None


def test_only_active_designers_register(node: Node, svc: DesignService, factory: Sender) -> None:
    item = drawing()
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(factory, item.design_id, ZERO32, item.metadata_hash)
    assert factory.address in reverted(exc, "NotDesigner")
    with pytest.raises(ContractRevert) as exc:
        node.designs.register_batch(factory, keccak(b"root"), 2, ZERO32)
    reverted(exc, "NotDesigner")
    with pytest.raises(Forbidden, match="designer role"):
        svc.register(factory, [item])

    designer = admit(node, DESIGNER)
    suspend(node, designer.address)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, item.design_id, ZERO32, item.metadata_hash)
    reverted(exc, "NotDesigner")
    assert node.designs.find(item.design_id) is None


# --- batches ----------------------------------------------------------------------------
def test_batch_proofs_verify_in_solidity_and_in_python(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    items = [drawing(f"p{i}") for i in range(5)]
    certs = svc.register(designer, items)
    roots = {c.batch.root for c in certs if c.batch}
    assert len(roots) == 1 and len({c.tx_hash for c in certs}) == 1
    root = roots.pop()
    batch = node.designs.batch(root)
    assert batch is not None and batch.designer == designer.address
    for item, cert in zip(items, certs, strict=True):
        assert cert.batch is not None and cert.batch.count == 5
        value = [item.design_id, item.metadata_hash, ZERO32]
        proof = list(cert.batch.proof)
        assert merkle.verify(root, LEAF_ENCODING, value, proof)
        assert node.designs.verify_member(root, *value, proof)
        assert node.designs.leaf_hash(*value) == merkle.leaf_hash(LEAF_ENCODING, value)
        # the unclaimed member is not a design record yet, but its certificate verifies
        assert node.designs.find(item.design_id) is None
        verdict = verify_certificate(node.chain.w3, item.design_id, cert)
        assert verdict.kind == "batch" and verdict.priority == "unclaimed"
    # a proof for another member, or for content that is not in the batch, fails
    wrong = [items[0].design_id, items[0].metadata_hash, ZERO32]
    assert not node.designs.verify_member(root, *wrong, list(certs[1].batch.proof))  # type: ignore[union-attr]
    with pytest.raises(ContractRevert) as exc:
        node.designs.claim(designer, root, *wrong, list(certs[1].batch.proof))  # type: ignore[union-attr]
    reverted(exc, "InvalidProof")
    # the manifest (the tree document) is kept under the hash the chain recorded
    manifest = json.loads(svc.blobs.get(certs[0].batch.manifest_hash))  # type: ignore[union-attr]
    assert merkle.StandardMerkleTree.load(manifest).root == root
    with pytest.raises(ContractRevert) as exc:
        node.designs.register_batch(designer, root, 5, ZERO32)
    reverted(exc, "BatchExists")
    with pytest.raises(ContractRevert) as exc:
        node.designs.register_batch(designer, keccak(b"x"), 0, ZERO32)
    reverted(exc, "EmptyBatch")


def test_claim_enforces_batch_priority_against_later_registrations(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    a, b = drawing("a"), drawing("b")
    certs = svc.register(designer, [a, b])
    # the node that registered the batch refuses the same content itself
    with pytest.raises(Conflict, match="batch"):
        svc.register(designer, [a])
    # claiming records the member with the batch's block and designer
    record = svc.claim(new_sender(node), a.design_id)
    assert record.designer == designer.address and record.from_batch
    assert record.block_number == certs[0].block_number
    rival = admit(node, DESIGNER)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(rival, a.design_id, ZERO32, a.metadata_hash)
    assert str(certs[0].block_number) in reverted(exc, "DesignExists")
    with pytest.raises(ContractRevert) as exc:
        svc.claim(designer, a.design_id)
    reverted(exc, "DesignExists")

    # member b was not claimed: a rival's later single registration goes through on chain…
    node.designs.register(rival, b.design_id, ZERO32, b.metadata_hash)
    factory = admit(node, int(Role.FACTORY))
    node.designs.grant_licence(rival, b.design_id, factory.address, 10_000)
    assert node.designs.licence(b.design_id, factory.address).active
    # …until the earlier batch member is claimed: priority goes to the earliest block
    record = svc.claim(designer, b.design_id)
    assert record.designer == designer.address
    assert record.block_number == certs[1].block_number
    [preempted] = node.designs.events("DesignPreempted", designId=b.design_id)
    assert preempted["args"]["displacedDesigner"] == rival.address
    assert not node.designs.licence(b.design_id, factory.address).active  # the rival's lapsed
    verdict = verify_certificate(node.chain.w3, b.design_id, certs[1])
    assert verdict.priority == "held" and verdict.status == "active"


def new_sender(node: Node) -> Sender:
    """Anyone may claim: a non-member account pays for the proof."""
    return node.add_signer(new_account())


# --- revocation, supersession, licences ------------------------------------------------
def test_licences_grant_revoke_and_history_at_past_blocks(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    item = drawing()
    svc.register(designer, [item])
    assert not node.designs.licence(item.design_id, factory.address).active
    licence = svc.grant_licence(designer, item.design_id, factory.address, 25_000)
    granted_at = node.chain.block_number()
    assert licence.active and licence.royalty_ppm == 25_000 and licence.designer == designer.address
    svc.grant_licence(designer, item.design_id, factory.address, 40_000)
    raised_at = node.chain.block_number()
    revoked = svc.revoke_licence(designer, item.design_id, factory.address)
    revoked_at = node.chain.block_number()
    assert not revoked.active

    at = node.designs.licence
    assert not at(item.design_id, factory.address, granted_at - 1).active
    assert at(item.design_id, factory.address, granted_at).royalty_ppm == 25_000
    assert at(item.design_id, factory.address, granted_at).active
    assert at(item.design_id, factory.address, raised_at).royalty_ppm == 40_000
    assert not at(item.design_id, factory.address, revoked_at).active
    with pytest.raises(ContractRevert) as exc:
        at(item.design_id, factory.address, revoked_at + 100)
    reverted(exc, "FutureBlock")
    [granted, _] = node.designs.events("LicenceGranted", designId=item.design_id)
    assert granted["args"]["royaltyPpm"] == 25_000
    assert granted["args"]["licensee"] == factory.address

    with pytest.raises(ContractRevert) as exc:
        svc.revoke_licence(designer, item.design_id, factory.address)
    reverted(exc, "NoLicence")


def test_licence_refusals(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    item = drawing()
    svc.register(designer, [item])
    stranger = new_account().address
    before = registry_state(node, svc)
    with pytest.raises(NotFound, match="not a member"):
        svc.grant_licence(designer, item.design_id, stranger, 1)
    assert registry_state(node, svc) == before
    contract = node.designs.contract.functions
    with pytest.raises(ContractRevert) as exc:
        designer.transact(contract.grantLicence(item.design_id, stranger, 1))
    assert stranger in reverted(exc, "LicenseeNotMember")
    with pytest.raises(ContractRevert) as exc:
        designer.transact(contract.grantLicence(item.design_id, factory.address, 1_000_001))
    reverted(exc, "InvalidRoyalty")
    with pytest.raises(InvalidInput, match="out of range"):
        svc.grant_licence(designer, item.design_id, factory.address, 1_000_001)
    other = admit(node, DESIGNER)
    with pytest.raises(ContractRevert) as exc:
        svc.grant_licence(other, item.design_id, factory.address, 1)
    reverted(exc, "NotRegistrant")
    with pytest.raises(ContractRevert) as exc:
        node.designs.grant_licence(designer, drawing().design_id, factory.address, 1)
    assert exc.value.error == "UnknownDesign" and exc.value.status == 404
    suspend(node, factory.address)
    with pytest.raises(Conflict, match="suspended"):
        svc.grant_licence(designer, item.design_id, factory.address, 1)


def test_revocation_and_supersession(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    v1, v2 = drawing("v1"), drawing("v2")
    svc.register(designer, [v1])
    svc.register(designer, [v2], parent=v1.design_id)
    svc.grant_licence(designer, v1.design_id, factory.address, 5_000)
    licensed_at = node.chain.block_number()

    with pytest.raises(ContractRevert) as exc:
        svc.supersede(designer, v1.design_id, v1.design_id)
    reverted(exc, "InvalidSuccessor")
    record = svc.supersede(designer, v1.design_id, v2.design_id)
    assert record.status == "superseded"
    assert node.designs.licence(v1.design_id, factory.address).active  # existing licence stays
    buyer = admit(node, int(Role.BUYER))
    with pytest.raises(ContractRevert) as exc:
        svc.grant_licence(designer, v1.design_id, buyer.address, 1)
    reverted(exc, "DesignIsSuperseded")

    intruder = admit(node, DESIGNER)
    with pytest.raises(ContractRevert) as exc:
        svc.revoke(intruder, v1.design_id)
    reverted(exc, "NotRegistrant")
    record = svc.revoke(designer, v1.design_id)
    assert record.revoked and record.revoked_at_block == node.chain.block_number()
    assert not node.designs.licence(v1.design_id, factory.address).active
    assert node.designs.licence(v1.design_id, factory.address, licensed_at).active
    with pytest.raises(ContractRevert) as exc:
        svc.revoke(designer, v1.design_id)
    reverted(exc, "DesignIsRevoked")
    # revoked content keeps its priority: nobody registers it again
    with pytest.raises(Conflict, match="already registered"):
        svc.register(intruder, [v1])
    # a suspended designer can still revoke
    suspend(node, designer.address)
    assert svc.revoke(designer, v2.design_id).revoked


# --- certificates -----------------------------------------------------------------------
def test_certificate_verification_outcomes(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    item = drawing("housing")
    [cert] = svc.register(designer, [item])
    w3 = node.chain.w3
    round_trip = Certificate.loads(cert.dumps())
    assert round_trip == cert
    verdict = verify_certificate(w3, item.design_id, round_trip)
    assert (verdict.designer, verdict.block_number) == (designer.address, cert.block_number)
    assert verdict.priority == "held" and verdict.status == "active"
    assert verdict.block_time == w3.eth.get_block(cert.block_number)["timestamp"]
    assert lookup(w3, node.designs.address, item.design_id).designer == designer.address

    with pytest.raises(NotRegistered, match="not registered"):
        lookup(w3, node.designs.address, hashlib.sha256(b"unknown").digest())
    text = cert.dumps()
    for corrupt in (text[: len(text) // 2], "[]", "{}", text.replace('"0x', '"0xzz', 1)):
        with pytest.raises(CertificateInvalid, match="corrupt bundle"):
            Certificate.loads(corrupt)
    with pytest.raises(CertificateInvalid, match="does not match the bundle"):
        verify_certificate(w3, hashlib.sha256(b"another file").digest(), cert)

    def forged(**changes: Any) -> Certificate:
        return Certificate.from_json({**cert.to_json(), **changes})

    cases = {
        "wrong chain": forged(chain_id=cert.chain_id + 1),
        "not on this chain": forged(tx_hash="0x" + "ab" * 32),
        "is in block": forged(block_number=cert.block_number - 1),
        "is dated": forged(block_time=cert.block_time + 1),
        "not the bundle's designer": forged(designer=new_account().address),
        "metadata hash differs": forged(metadata_hash="0x" + "11" * 32),
        "did not register": forged(contract=node.consortium.address),
    }
    for message, bad in cases.items():
        with pytest.raises(CertificateInvalid, match=message):
            verify_certificate(w3, item.design_id, bad)


def test_batch_certificate_with_a_forged_proof_is_refused(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    certs = svc.register(designer, [drawing("a"), drawing("b"), drawing("c")])
    cert = certs[0]
    assert verify_certificate(node.chain.w3, cert.design_id, cert).kind == "batch"
    data = cert.to_json()
    data["batch"]["proof"] = [*reversed(data["batch"]["proof"]), "0x" + "00" * 32]
    with pytest.raises(CertificateInvalid, match="Merkle proof"):
        verify_certificate(node.chain.w3, cert.design_id, Certificate.from_json(data))
    data = cert.to_json()
    data["batch"]["count"] = 4
    with pytest.raises(CertificateInvalid, match="batch size"):
        verify_certificate(node.chain.w3, cert.design_id, Certificate.from_json(data))


def test_the_verifier_abi_matches_the_contract() -> None:
    """The third-party verifier spells its few ABI items out; they must match the build."""
    abi = artifact("DesignRegistry").abi

    def signature(item: dict[str, Any]) -> str:
        return f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"

    events = {signature(i) for i in abi if i["type"] == "event"}
    functions = {signature(i): i for i in abi if i["type"] == "function"}
    assert "DesignRegistered(bytes32,address,bytes32,bytes32)" in events
    assert "BatchRegistered(bytes32,address,uint256,bytes32)" in events
    outputs = [c["type"] for c in functions["design(bytes32)"]["outputs"][0]["components"]]
    assert outputs == ["address", "uint40", "uint40", "uint8"]
    assert "revokedAt(bytes32)" in functions


# --- encrypted sharing ------------------------------------------------------------------
@pytest.fixture
def licensed(node: Node, svc: DesignService, designer: Sender, factory: Sender) -> NewDesign:
    """A design registered by `designer`, licensed to `factory`, whose key is published."""
    item = drawing("frame")
    svc.register(designer, [item])
    svc.publish_key(factory)
    svc.grant_licence(designer, item.design_id, factory.address, 30_000)
    return item


def test_share_and_fetch_round_trip(
    node: Node, svc: DesignService, designer: Sender, factory: Sender, licensed: NewDesign
) -> None:
    published = node.consortium.member(factory.address).encryption_key
    assert published == public_bytes(encryption_key(bytes(factory.account.key)))
    [share] = svc.share(designer, licensed.design_id, [factory.address])
    [event] = node.designs.events("DesignShared", designId=licensed.design_id)
    assert event["args"]["recipient"] == factory.address
    assert event["args"]["ciphertextHash"] == share.ciphertext_hash
    ciphertext = svc.blobs.get(share.ciphertext_hash)
    assert licensed.content is not None and licensed.content not in ciphertext
    assert svc.fetch(factory.account, licensed.design_id) == licensed.content
    package = svc.package(licensed.design_id, factory.address)
    assert svc.fetch(factory.account, licensed.design_id, package) == licensed.content
    # the designer holds no share to itself; a member without a licence gets nothing
    with pytest.raises(NotFound, match="no share"):
        svc.fetch(designer.account, licensed.design_id)


def test_tampered_ciphertext_is_refused(
    node: Node, svc: DesignService, designer: Sender, factory: Sender, licensed: NewDesign
) -> None:
    [share] = svc.share(designer, licensed.design_id, [factory.address])
    package = svc.package(licensed.design_id, factory.address)
    raw = bytearray(svc.blobs.get(share.ciphertext_hash))
    raw[-1] ^= 1
    forged = {**package, "ciphertext": base64.b64encode(bytes(raw)).decode()}
    with pytest.raises(DecryptionFailed, match="tampered"):
        svc.fetch(factory.account, licensed.design_id, forged)
    forged = {**package, "envelope": package["envelope"].replace('"nonce":"0x', '"nonce":"0x0')}
    with pytest.raises(DecryptionFailed, match="tampered"):
        svc.fetch(factory.account, licensed.design_id, forged)
    svc.blobs.path(share.ciphertext_hash).write_bytes(bytes(raw))  # altered on disk
    with pytest.raises(DecryptionFailed, match="tampered"):
        svc.fetch(factory.account, licensed.design_id)
    # AES-GCM itself refuses a flipped bit even when the hash check is bypassed
    key, blob = encrypt_file(b"drawing", hashlib.sha256(b"drawing").digest())
    with pytest.raises(DecryptionFailed, match="tampered"):
        decrypt_file(key, blob[:-1] + bytes([blob[-1] ^ 1]), hashlib.sha256(b"drawing").digest())


def test_revoked_licence_gets_no_new_share_and_no_release(
    node: Node, svc: DesignService, designer: Sender, factory: Sender, licensed: NewDesign
) -> None:
    svc.share(designer, licensed.design_id, [factory.address])
    svc.revoke_licence(designer, licensed.design_id, factory.address)
    before = registry_state(node, svc)
    with pytest.raises(Conflict, match="no active licence"):
        svc.share(designer, licensed.design_id, [factory.address])
    assert registry_state(node, svc) == before
    with pytest.raises(ContractRevert) as exc:
        node.designs.record_share(
            designer, licensed.design_id, factory.address, b"\1" * 32, b"\2" * 32
        )
    reverted(exc, "NoLicence")
    with pytest.raises(Forbidden, match="no active licence"):
        svc.fetch(factory.account, licensed.design_id)


def test_share_refusals(node: Node, svc: DesignService, designer: Sender, factory: Sender) -> None:
    item = drawing()
    svc.register(designer, [item])
    svc.grant_licence(designer, item.design_id, factory.address, 0)
    with pytest.raises(Conflict, match="encryption key"):
        svc.share(designer, item.design_id, [factory.address])  # key not published yet
    svc.publish_key(factory)
    with pytest.raises(InvalidInput, match="SHA-256 differs"):
        svc.share(designer, item.design_id, [factory.address], b"another file")
    other = admit(node, DESIGNER)
    with pytest.raises(Forbidden, match="not the registrant"):
        svc.share(other, item.design_id, [factory.address])
    assert node.designs.share_of(item.design_id, factory.address) is None


def test_key_wrapping_is_bound_to_the_recipient() -> None:
    alice, mallory = new_account(), new_account()
    did = hashlib.sha256(b"part").digest()
    key, blob = encrypt_file(b"part", did)
    ct_hash = hashlib.sha256(blob).digest()
    alice_x = encryption_key(bytes(alice.key))
    envelope = wrap_key(key, did, ct_hash, alice.address, public_bytes(alice_x))
    again = Envelope.loads(envelope.canonical())
    assert unwrap_key(again, alice_x) == key
    assert encryption_key(bytes(alice.key)).private_bytes_raw() == alice_x.private_bytes_raw()
    with pytest.raises(DecryptionFailed, match="another encryption key"):
        unwrap_key(again, encryption_key(bytes(mallory.key)))
    with pytest.raises(InvalidInput, match="no X25519"):
        wrap_key(key, did, ct_hash, alice.address, ZERO32)


# --- files and blobs --------------------------------------------------------------------
def test_hashing_matches_hashlib_on_many_files(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(os.urandom(i * 700_001))
        paths.append(path)
    seen: list[int] = []
    digests = sha256_files(paths, seen.append, workers=3)
    assert digests == [hashlib.sha256(p.read_bytes()).digest() for p in paths]
    assert sum(seen) == sum(p.stat().st_size for p in paths)
    with pytest.raises(InvalidInput, match="directory"):
        sha256_files([tmp_path])


def test_blob_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digest = store.put(b"payload")
    assert digest == hashlib.sha256(b"payload").hexdigest()
    assert store.put(b"payload") == digest and store.has(digest) and store.has("0x" + digest)
    assert store.get(bytes.fromhex(digest)) == b"payload"
    assert not [p for p in store.root.rglob(".tmp-*")]
    with pytest.raises(NotFound):
        store.get(hashlib.sha256(b"absent").hexdigest())
    with pytest.raises(InvalidInput, match="SHA-256"):
        store.get("xyz")
    store.path(digest).write_bytes(b"paylaod")
    with pytest.raises(BlobCorrupt, match="corrupt"):
        store.get(digest)


def test_batch_certificate_proof_checks_with_the_npm_library(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    """The manual check docs/designs.md gives: StandardMerkleTree.verify from npm."""
    certs = svc.register(designer, [drawing(f"n{i}") for i in range(4)])
    js = (
        "const { StandardMerkleTree } = require(process.argv[1]);"
        "const c = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const leaf = [c.design_id, c.metadata_hash, c.parent_id ?? '0x' + '00'.repeat(32)];"
        "console.log(StandardMerkleTree.verify(c.batch.root, c.batch.leaf_encoding, leaf,"
        " c.batch.proof));"
    )
    lib = str(NODE_MODULES / "@openzeppelin" / "merkle-tree")
    for cert in (certs[0], certs[3]):
        out = subprocess.run(
            ["node", "-e", js, lib], input=cert.dumps(), capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "true"
    forged = certs[0].to_json()
    forged["metadata_hash"] = "0x" + "22" * 32
    out = subprocess.run(
        ["node", "-e", js, lib],
        input=json.dumps(forged),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "false"
