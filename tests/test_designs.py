"""Design IP on the real DesignRegistry (eth-tester): commit-reveal priority and the
front-running attacks it defeats, versions, batches and claims, licences and their
history, certificates, encrypted sharing, and the blob store."""

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
from web3.types import RPCEndpoint

from kit import admit, new_account
from ledger.core import merkle
from ledger.core.blobs import BlobCorrupt, BlobStore
from ledger.core.errors import Conflict, ContractRevert, Forbidden, InvalidInput, NotFound
from ledger.core.settings import NODE_MODULES
from ledger.designs.certificates import (
    LEAF_ENCODING,
    Certificate,
    CertificateInvalid,
    Commitment,
    NotRegistered,
    commitment_of,
    leaf_value,
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
from ledger.eth.compiler import artifact
from ledger.eth.tx import Sender, decode_raw
from ledger.membership.roles import Role
from ledger.node import Node

DESIGNER = int(Role.DESIGNER)


# --- helpers --------------------------------------------------------------------------
@pytest.fixture
def svc(node: Node) -> DesignService:
    return node.design_service()


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


# --- registration: a commitment first, the content hash later ---------------------------
def test_registration_commits_without_publishing_the_content_hash_and_fits_the_gas_target(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    item = drawing("bracket")
    [cert] = svc.register(designer, [item])
    assert cert.designer == designer.address and cert.commitment is not None
    assert cert.commitment.value == commitment_of(
        item.design_id, item.metadata_hash, ZERO32, designer.address, cert.commitment.salt
    )
    assert (
        node.designs.commitment_of(
            item.design_id, item.metadata_hash, ZERO32, designer.address, cert.commitment.salt
        )
        == cert.commitment.value
    )
    w3 = node.chain.w3
    receipt = w3.eth.get_transaction_receipt(cert.tx_hash)
    assert receipt["gasUsed"] <= 55_000
    # nothing in the transaction or its log gives the content away
    sent = bytes(w3.eth.get_transaction(cert.tx_hash)["input"])
    logged = b"".join(bytes(t) for log in receipt["logs"] for t in log["topics"])
    assert item.design_id not in sent + logged + b"".join(bytes(g["data"]) for g in receipt["logs"])
    [event] = node.designs.events("DesignCommitted", commitment=cert.commitment.value)
    assert event["args"]["designer"] == designer.address
    stamp = node.designs.commitment(cert.commitment.value, designer.address)
    assert stamp is not None and stamp.block_number == cert.block_number
    assert node.designs.find(item.design_id) is None
    assert verify_certificate(w3, item.design_id, cert).priority == "unrevealed"
    # the node keeps the file and its metadata document by hash
    assert svc.blobs.get(item.design_id) == item.content
    assert svc.blobs.has(item.metadata_hash)

    # revealing records the designer with the commitment's time and block
    record = svc.reveal(designer, item.design_id)
    assert record.designer == designer.address and record.status == "active"
    assert (record.block_number, record.registered_at) == (cert.block_number, cert.block_time)
    assert not record.from_batch
    [event] = node.designs.events("DesignRegistered", designId=item.design_id)
    assert event["args"]["designer"] == designer.address
    assert event["args"]["metadataHash"] == item.metadata_hash
    assert event["args"]["parentId"] == ZERO32
    assert event["args"]["commitment"] == cert.commitment.value
    assert event["args"]["commitBlock"] == cert.block_number
    verdict = verify_certificate(w3, item.design_id, cert)
    assert verdict.priority == "held" and verdict.status == "active"


def test_licensing_and_sharing_reveal_lazily(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    item = drawing("lazy")
    [cert] = svc.register(designer, [item])
    assert node.designs.find(item.design_id) is None
    svc.grant_licence(designer, item.design_id, factory.address, 10_000)
    record = node.designs.design(item.design_id)
    assert record.designer == designer.address and record.block_number == cert.block_number
    assert node.designs.licence(item.design_id, factory.address).active
    # a second design goes on chain when it is first shared (after its licence)
    other = drawing("shared")
    svc.register(designer, [other])
    svc.publish_key(factory)
    with pytest.raises(ContractRevert) as exc:
        node.designs.grant_licence(designer, other.design_id, factory.address, 0)
    assert "not revealed" in reverted(exc, "UnknownDesign")
    svc.grant_licence(designer, other.design_id, factory.address, 0)
    [share] = svc.share(designer, other.design_id, [factory.address])
    assert share.recipient == factory.address


def test_duplicate_content_is_refused_naming_the_existing_registration(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    item = drawing()
    [cert] = svc.register(designer, [item])
    rival = admit(node, DESIGNER)
    before = registry_state(node, svc)
    # the node refuses what it committed, revealed or not
    with pytest.raises(Conflict) as refused:
        svc.register(rival, [item])
    assert designer.address in refused.value.message
    assert f"block {cert.block_number}" in refused.value.message
    assert registry_state(node, svc) == before
    svc.reveal(designer, item.design_id)
    with pytest.raises(Conflict, match="already registered"):
        svc.register(rival, [item])
    # the contract refuses a later reveal of the same content, to anyone, the registrant too
    for who in (rival, designer):
        with pytest.raises(ContractRevert) as exc:
            node.designs.register(who, item.design_id, ZERO32, item.metadata_hash)
        message = reverted(exc, "DesignExists")
        assert designer.address in message and str(cert.block_number) in message
    assert node.designs.design(item.design_id).designer == designer.address
    # the same commitment twice is refused too
    value = cert.commitment.value  # type: ignore[union-attr]
    with pytest.raises(ContractRevert) as exc:
        node.designs.commit(designer, value)
    assert str(cert.block_number) in reverted(exc, "CommitmentExists")
    # the same content twice in one request is refused before anything is sent
    other = drawing()
    with pytest.raises(InvalidInput, match="same content"):
        svc.register(designer, [other, other])
    assert node.designs.find(other.design_id) is None


def test_a_lost_certificate_is_issued_again_from_the_chain(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    """The salt derives from the designer's key: a mined commitment always opens again."""
    item = drawing()
    [cert] = svc.register(designer, [item])
    for path in svc.certificates_dir.glob("*.json"):
        path.unlink()
    height = node.chain.block_number()
    [again] = svc.register(designer, [item])
    assert again == cert and node.chain.block_number() == height  # nothing sent
    elsewhere = _with(cert, contract=node.consortium.address)
    with pytest.raises(InvalidInput, match="certificate is for registry"):
        svc.reveal(designer, item.design_id, elsewhere)
    assert svc.reveal(designer, item.design_id).block_number == cert.block_number


def test_versions_need_a_registered_unrevoked_parent(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    v1, v2, v3, orphan = drawing("v1"), drawing("v2"), drawing("v3"), drawing()
    svc.register(designer, [v1])
    [cert] = svc.register(designer, [v2], parent=v1.design_id)
    assert cert.parent_id == v1.design_id
    # revealing the version reveals its parent first
    svc.reveal(designer, v2.design_id)
    assert node.designs.find(v1.design_id) is not None
    [event] = node.designs.events("DesignRegistered", designId=v2.design_id)
    assert event["args"]["parentId"] == v1.design_id

    unknown = hashlib.sha256(b"never registered").digest()
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, orphan.design_id, unknown, orphan.metadata_hash)
    assert unknown.hex() in reverted(exc, "UnknownParent")
    with pytest.raises(NotFound, match="parent design"):
        svc.register(designer, [orphan], parent=unknown)
    # another designer's unrevealed design is no parent of yours
    rival = admit(node, DESIGNER)
    mine = drawing("mine")
    svc.register(designer, [mine])
    with pytest.raises(NotFound, match="parent design"):
        svc.register(rival, [orphan], parent=mine.design_id)
    assert node.designs.find(mine.design_id) is None

    svc.revoke(designer, v1.design_id)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, v3.design_id, v1.design_id, v3.metadata_hash)
    reverted(exc, "ParentRevoked")
    before = registry_state(node, svc)
    with pytest.raises(Conflict, match="revoked"):
        svc.register(designer, [v3], parent=v1.design_id)
    assert registry_state(node, svc) == before
    assert node.designs.find(v3.design_id) is None


def test_only_active_designers_commit(node: Node, svc: DesignService, factory: Sender) -> None:
    item = drawing()
    with pytest.raises(ContractRevert) as exc:
        node.designs.commit(factory, keccak(b"commitment"))
    assert factory.address in reverted(exc, "MissingRole")
    with pytest.raises(ContractRevert) as exc:
        node.designs.register_batch(factory, keccak(b"root"), 2, ZERO32)
    reverted(exc, "MissingRole")
    with pytest.raises(Forbidden, match="designer role"):
        svc.register(factory, [item])

    designer = admit(node, DESIGNER)
    with pytest.raises(ContractRevert) as exc:
        node.designs.commit(designer, ZERO32)
    reverted(exc, "ZeroHash")
    suspend(node, designer.address)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(designer, item.design_id, ZERO32, item.metadata_hash)
    reverted(exc, "MissingRole")
    assert node.designs.find(item.design_id) is None


# --- front-running: copies of pending transactions are worthless --------------------------
def _signed(node: Node, who: Sender, to: str, data: bytes) -> Any:
    """`who` signs a call of `data` to `to` (as read from a pending transaction)."""
    node.chain.ensure_gas(who.address)
    tx = {
        "to": to,
        "data": data,
        "gas": 300_000,
        "nonce": node.chain.w3.eth.get_transaction_count(who.address),
        "chainId": node.chain.chain_id,
        **node.chain.fee_fields(),
    }
    return who.account.sign_transaction(tx)


def _calldata(fn: Any) -> bytes:
    return bytes.fromhex(fn._encode_transaction_data().removeprefix("0x"))


def _one_block(node: Node, *signed: Any) -> list[Any]:
    """Mine `signed` in one block, in this order: a copier paying a higher gas price is
    ordered before the transaction it copied."""
    w3 = node.chain.w3
    w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        hashes = [w3.eth.send_raw_transaction(s.raw_transaction) for s in signed]
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    return receipts


def test_a_copied_commitment_is_worthless_to_the_copier(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    """A designer copies a pending commit with a higher gas price: its copy lands first,
    the author's commit still counts, and the copy can never be revealed."""
    copier = admit(node, DESIGNER)
    item = drawing("victim")
    registry = node.designs.contract
    salt = os.urandom(32)
    value = commitment_of(item.design_id, item.metadata_hash, ZERO32, designer.address, salt)
    pending = _signed(node, designer, registry.address, _calldata(registry.functions.commit(value)))
    copy = _signed(node, copier, registry.address, pending_input(pending))
    copied, own = _one_block(node, copy, pending)
    assert copied["status"] == own["status"] == 1  # the copy does not block the author
    block = own["blockNumber"]
    assert node.designs.commitment(value, designer.address).block_number == block  # type: ignore[union-attr]
    assert node.designs.commitment(value, copier.address).block_number == block  # type: ignore[union-attr]

    # the copier can open its copy neither as itself nor with the author's values
    for who in (copier.address,):
        with pytest.raises(ContractRevert) as exc:
            node.designs.reveal(copier, item.design_id, item.metadata_hash, ZERO32, who, salt)
        assert copier.address in reverted(exc, "UnknownCommitment")
    assert node.designs.find(item.design_id) is None
    # a certificate naming the copier does not open the commitment; naming the author, it
    # does not match the copier's transaction
    cert = _certificate(node, item, designer.address, value, salt, copied)
    with pytest.raises(CertificateInvalid, match="does not open"):
        verify_certificate(node.chain.w3, item.design_id, _with(cert, designer=copier.address))
    with pytest.raises(CertificateInvalid, match="registrant on chain is"):
        verify_certificate(node.chain.w3, item.design_id, cert)

    # the author reveals: the design is the author's, dated at the shared block
    node.designs.reveal(
        designer, item.design_id, item.metadata_hash, ZERO32, designer.address, salt
    )
    record = node.designs.design(item.design_id)
    assert (record.designer, record.block_number) == (designer.address, block)
    own_cert = _certificate(node, item, designer.address, value, salt, own)
    assert verify_certificate(node.chain.w3, item.design_id, own_cert).priority == "held"


def pending_input(signed: Any) -> bytes:
    """What a pool watcher reads of a pending transaction: its input data."""
    return bytes(decode_raw(bytes(signed.raw_transaction)).fields["data"])


def _certificate(
    node: Node, item: NewDesign, designer: str, value: bytes, salt: bytes, receipt: Any
) -> Certificate:
    block = node.chain.w3.eth.get_block(receipt["blockNumber"])
    return Certificate(
        design_id=item.design_id,
        designer=designer,
        metadata_hash=item.metadata_hash,
        parent_id=None,
        chain_id=node.chain.chain_id,
        contract=node.designs.address,
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        block_hash=block["hash"].to_0x_hex(),
        block_time=int(block["timestamp"]),
        commitment=Commitment(value, salt),
    )


def _with(cert: Certificate, **changes: Any) -> Certificate:
    return Certificate.from_json({**cert.to_json(), **changes})


def test_a_copied_batch_root_and_rebuilt_claims_are_worthless(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    """The copier registers the author's pending root first, then rebuilds claims from the
    author's later claims: no leaf proves under the copier's record (leaves name the
    author), and the author's batch and claims go through."""
    copier = admit(node, DESIGNER)
    items = [drawing(f"b{i}") for i in range(3)]
    values = [leaf_value(i.design_id, i.metadata_hash, ZERO32, designer.address) for i in items]
    tree = merkle.StandardMerkleTree.of(values, LEAF_ENCODING)
    registry = node.designs.contract
    fn = registry.functions.registerBatch(tree.root, 3, ZERO32)
    pending = _signed(node, designer, registry.address, _calldata(fn))
    copy = _signed(node, copier, registry.address, pending_input(pending))
    copied, own = _one_block(node, copy, pending)
    assert copied["status"] == own["status"] == 1  # no BatchExists for the author
    block = own["blockNumber"]
    assert node.designs.batch(tree.root, designer.address).block_number == block  # type: ignore[union-attr]

    # the author claims member 0; the copier replays it for itself, and tries member 1
    # with the proof and values it read from the author's claim
    node.designs.claim(designer, tree.root, designer.address, *values[0][:3], tree.proof(0))
    assert node.designs.design(items[0].design_id).designer == designer.address
    for n in (0, 1):
        did, meta, parent, _ = values[n]
        with pytest.raises(ContractRevert) as exc:
            node.designs.claim(copier, tree.root, copier.address, did, meta, parent, tree.proof(n))
        reverted(exc, "InvalidProof")
        assert not node.designs.verify_member(
            tree.root, copier.address, did, meta, parent, tree.proof(n)
        )
    # claiming for the author, whoever sends it, records the author: copying is harmless
    node.designs.claim(copier, tree.root, designer.address, *values[1][:3], tree.proof(1))
    assert node.designs.design(items[1].design_id).designer == designer.address
    assert node.designs.find(items[2].design_id) is None
    with pytest.raises(ContractRevert) as exc:
        node.designs.claim(copier, keccak(b"none"), designer.address, *values[2][:3], [])
    reverted(exc, "UnknownBatch")
    with pytest.raises(ContractRevert) as exc:
        node.designs.register_batch(designer, tree.root, 3, ZERO32)
    assert str(block) in reverted(exc, "BatchExists")


def test_a_copied_reveal_records_the_author(
    node: Node, svc: DesignService, designer: Sender
) -> None:
    copier = admit(node, DESIGNER)
    item = drawing()
    [cert] = svc.register(designer, [item])
    assert cert.commitment is not None
    registry = node.designs.contract
    fn = registry.functions.reveal(
        item.design_id, item.metadata_hash, ZERO32, designer.address, cert.commitment.salt
    )
    pending = _signed(node, designer, registry.address, _calldata(fn))
    copy = _signed(node, copier, registry.address, pending_input(pending))
    copied, own = _one_block(node, copy, pending)
    assert copied["status"] == 1 and own["status"] == 0  # the same reveal, sent twice
    record = node.designs.design(item.design_id)
    assert (record.designer, record.block_number) == (designer.address, cert.block_number)
    # the copier cannot turn the salt it saw into a reveal of its own
    with pytest.raises(ContractRevert) as exc:
        node.designs.reveal(
            copier, item.design_id, item.metadata_hash, ZERO32, copier.address, cert.commitment.salt
        )
    reverted(exc, "UnknownCommitment")
    assert verify_certificate(node.chain.w3, item.design_id, cert).priority == "held"


def test_front_running_a_reveal_cannot_take_priority(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    """A rival learns the content hash from a pending reveal and commits and reveals it
    ahead of it, in the same block or earlier: its commitment is later, so the author's
    reveal displaces it, its licences lapsing."""
    rival = admit(node, DESIGNER)
    item = drawing()
    [cert] = svc.register(designer, [item])
    assert cert.commitment is not None
    registry = node.designs.contract
    reveal = registry.functions.reveal(
        item.design_id, item.metadata_hash, ZERO32, designer.address, cert.commitment.salt
    )
    pending = _signed(node, designer, registry.address, _calldata(reveal))
    salt = os.urandom(32)
    theirs = commitment_of(item.design_id, item.metadata_hash, ZERO32, rival.address, salt)
    commit = _signed(node, rival, registry.address, _calldata(registry.functions.commit(theirs)))
    fn = registry.functions.reveal(item.design_id, item.metadata_hash, ZERO32, rival.address, salt)
    accomplice = new_sender(node)  # a second account sends the reveal in the same block
    early = _signed(node, accomplice, registry.address, _calldata(fn))
    committed, revealed, own = _one_block(node, commit, early, pending)
    assert committed["status"] == revealed["status"] == own["status"] == 1
    record = node.designs.design(item.design_id)
    assert (record.designer, record.block_number) == (designer.address, cert.block_number)
    [preempted] = node.designs.events("DesignPreempted", designId=item.design_id)
    assert preempted["transactionHash"] == own["transactionHash"]
    assert preempted["args"]["displacedDesigner"] == rival.address
    assert preempted["args"]["displacedBlock"] == own["blockNumber"]
    with pytest.raises(ContractRevert) as exc:
        node.designs.reveal(rival, item.design_id, item.metadata_hash, ZERO32, rival.address, salt)
    assert designer.address in reverted(exc, "DesignExists")
    assert verify_certificate(node.chain.w3, item.design_id, cert).priority == "held"

    # the author's reveal is held up: the rival's later commitment is revealed first and
    # licensed, then the author's reveal displaces it
    late = drawing()
    [late_cert] = svc.register(designer, [late])
    node.designs.register(rival, late.design_id, ZERO32, late.metadata_hash)
    node.designs.grant_licence(rival, late.design_id, factory.address, 10_000)
    assert node.designs.licence(late.design_id, factory.address).active
    record = svc.reveal(designer, late.design_id)
    assert (record.designer, record.block_number) == (designer.address, late_cert.block_number)
    [preempted] = node.designs.events("DesignPreempted", designId=late.design_id)
    assert preempted["args"]["displacedDesigner"] == rival.address
    assert preempted["args"]["commitment"] == late_cert.commitment.value  # type: ignore[union-attr]
    assert not node.designs.licence(late.design_id, factory.address).active


def test_the_node_reveals_nobody_elses_design(
    node: Node, svc: DesignService, designer: Sender, factory: Sender
) -> None:
    """Another designer on the same node cannot get a design revealed by acting on it."""
    rival = admit(node, DESIGNER)
    item = drawing()
    svc.register(designer, [item])
    before = registry_state(node, svc)
    for attempt in (
        lambda: svc.grant_licence(rival, item.design_id, factory.address, 1),
        lambda: svc.revoke(rival, item.design_id),
        lambda: svc.supersede(rival, item.design_id, item.design_id),
    ):
        with pytest.raises(NotFound, match="not registered"):
            attempt()
    with pytest.raises(Conflict, match="no active licence"):
        svc.share(rival, item.design_id, [factory.address], item.content)
    # nor its designer by a refused share: only a licensed (so revealed) design is shared
    with pytest.raises(Conflict, match="no active licence"):
        svc.share(designer, item.design_id, [factory.address])
    assert registry_state(node, svc) == before
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
    batch = node.designs.batch(root, designer.address)
    assert batch is not None and batch.block_number == certs[0].block_number
    assert node.designs.batch(root, new_account().address) is None
    for item, cert in zip(items, certs, strict=True):
        assert cert.batch is not None and cert.batch.count == 5
        value = leaf_value(item.design_id, item.metadata_hash, ZERO32, designer.address)
        proof = list(cert.batch.proof)
        assert merkle.verify(root, LEAF_ENCODING, value, proof)
        assert node.designs.verify_member(root, designer.address, *value[:3], proof)
        assert node.designs.leaf_hash(*value) == merkle.leaf_hash(LEAF_ENCODING, value)
        # the unclaimed member is not a design record yet, but its certificate verifies
        assert node.designs.find(item.design_id) is None
        verdict = verify_certificate(node.chain.w3, item.design_id, cert)
        assert verdict.kind == "batch" and verdict.priority == "unrevealed"
    # a proof for another member, or for content that is not in the batch, fails
    wrong = [items[0].design_id, items[0].metadata_hash, ZERO32]
    other_proof = list(certs[1].batch.proof)  # type: ignore[union-attr]
    assert not node.designs.verify_member(root, designer.address, *wrong, other_proof)
    with pytest.raises(ContractRevert) as exc:
        node.designs.claim(designer, root, designer.address, *wrong, other_proof)
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
    # anyone may present the proof: the record is the batch designer's, at its block
    record = svc.reveal(new_sender(node), a.design_id)
    assert record.designer == designer.address and record.from_batch
    assert record.block_number == certs[0].block_number
    rival = admit(node, DESIGNER)
    with pytest.raises(ContractRevert) as exc:
        node.designs.register(rival, a.design_id, ZERO32, a.metadata_hash)
    assert str(certs[0].block_number) in reverted(exc, "DesignExists")
    proof = list(certs[0].batch.proof)  # type: ignore[union-attr]
    with pytest.raises(ContractRevert) as exc:
        node.designs.claim(
            designer, certs[0].batch.root, designer.address, a.design_id, a.metadata_hash,  # type: ignore[union-attr]
            ZERO32, proof,
        )  # fmt: skip
    reverted(exc, "DesignExists")

    # member b was not claimed: a rival's later registration goes through on chain…
    node.designs.register(rival, b.design_id, ZERO32, b.metadata_hash)
    factory = admit(node, int(Role.FACTORY))
    node.designs.grant_licence(rival, b.design_id, factory.address, 10_000)
    assert node.designs.licence(b.design_id, factory.address).active
    # …until the earlier batch member is claimed: priority goes to the earliest block
    record = svc.reveal(designer, b.design_id)
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
    assert registry_state(node, svc) == before  # not even revealed
    assert node.designs.find(item.design_id) is None
    svc.reveal(designer, item.design_id)
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
    assert verdict.priority == "unrevealed" and verdict.status is None
    with pytest.raises(NotRegistered, match="not revealed yet"):
        lookup(w3, node.designs.address, item.design_id)  # the chain alone knows nothing yet
    svc.reveal(designer, item.design_id)
    verdict = verify_certificate(w3, item.design_id, round_trip)
    assert verdict.priority == "held" and verdict.status == "active"
    assert verdict.block_time == w3.eth.get_block(cert.block_number)["timestamp"]
    assert lookup(w3, node.designs.address, item.design_id).designer == designer.address

    with pytest.raises(NotRegistered, match="not registered"):
        lookup(w3, node.designs.address, hashlib.sha256(b"unknown").digest())
    text = cert.dumps()
    both = {**cert.to_json(), "batch": {}}
    for corrupt in (
        text[: len(text) // 2],
        "[]",
        "{}",
        text.replace('"0x', '"0xzz', 1),
        json.dumps({**cert.to_json(), "commitment": None}),
        json.dumps(both),
        text.replace('"bytes32"', '"bytes"', 1),
    ):
        with pytest.raises(CertificateInvalid, match="corrupt bundle"):
            Certificate.loads(corrupt)
    with pytest.raises(CertificateInvalid, match="does not match the bundle"):
        verify_certificate(w3, hashlib.sha256(b"another file").digest(), cert)

    def forged(**changes: Any) -> Certificate:
        return Certificate.from_json({**cert.to_json(), **changes})

    assert cert.commitment is not None
    someone = new_account().address
    salt = os.urandom(32)
    theirs = commitment_of(item.design_id, item.metadata_hash, ZERO32, someone, salt)
    opens = "does not open to the bundle's design"
    cases = [
        ("wrong chain", forged(chain_id=cert.chain_id + 1)),
        ("not on this chain", forged(tx_hash="0x" + "ab" * 32)),
        ("is in block", forged(block_number=cert.block_number - 1)),
        ("is dated", forged(block_time=cert.block_time + 1)),
        (opens, forged(designer=someone)),
        (opens, forged(metadata_hash="0x" + "11" * 32)),
        (opens, forged(parent_id="0x" + "22" * 32)),
        (opens, forged(commitment=Commitment(cert.commitment.value, salt).to_json())),
        ("did not commit", forged(designer=someone, commitment=Commitment(theirs, salt).to_json())),
        ("did not commit", forged(contract=node.consortium.address)),
    ]
    for message, bad in cases:
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
    assert "DesignCommitted(bytes32,address)" in events
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
    package = svc.package(licensed.design_id, factory.address).model_dump(mode="json")
    assert svc.fetch(factory.account, licensed.design_id, package) == licensed.content
    # the designer holds no share to itself; a member without a licence gets nothing
    with pytest.raises(NotFound, match="no share"):
        svc.fetch(designer.account, licensed.design_id)


def test_tampered_ciphertext_is_refused(
    node: Node, svc: DesignService, designer: Sender, factory: Sender, licensed: NewDesign
) -> None:
    [share] = svc.share(designer, licensed.design_id, [factory.address])
    package = svc.package(licensed.design_id, factory.address).model_dump(mode="json")
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
        "const leaf = c.batch.leaf_fields.map((f) => c[f] ?? '0x' + '00'.repeat(32));"
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
