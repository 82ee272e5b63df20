"""What a node does with designs: register (single or batch), certify, claim, licence, share.

The chain is the authority; the node adds what the chain cannot see. It refuses duplicates
it knows of before sending anything (records on chain, and members of batches it
registered, which the chain holds only as a root), keeps the certificates it issued under
`<data dir>/designs/certificates/`, and keeps files, metadata documents, manifests,
ciphertexts and key envelopes in the content-addressed blob store `<data dir>/blobs/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger.blobs import BlobCorrupt, BlobStore
from ledger.consortium import MemberStatus, checksum
from ledger.designs.certificates import LEAF_ENCODING, BatchProof, Certificate
from ledger.designs.client import ZERO32, DesignRecord, ShareRecord, design_id, hex32, optional_id
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
from ledger.designs.files import NewDesign, canonical
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.merkle import StandardMerkleTree
from ledger.node import Node
from ledger.private import write_private
from ledger.tx import Sender


def blob_store(node: Node) -> BlobStore:
    return BlobStore(node.data_dir / "blobs")


class DesignService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.client = node.designs
        self.blobs = blob_store(node)
        self.certificates_dir = node.data_dir / "designs" / "certificates"

    # --- certificates kept by this node --------------------------------------------------
    def _certificate_path(self, did: bytes) -> Path:
        return self.certificates_dir / f"{did.hex()}.json"

    def certificate(self, value: str | bytes) -> Certificate | None:
        path = self._certificate_path(design_id(value))
        try:
            cert = Certificate.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cert if cert.chain_id == self.node.chain.chain_id else None

    def certificates(self) -> list[Certificate]:
        if not self.certificates_dir.is_dir():
            return []
        paths = sorted(self.certificates_dir.glob("*.json"))
        found = [Certificate.loads(p.read_text()) for p in paths]
        return [c for c in found if c.chain_id == self.node.chain.chain_id]

    def _save(self, cert: Certificate) -> None:
        write_private(self._certificate_path(cert.design_id), cert.dumps())

    # --- registration ------------------------------------------------------------------
    def _refuse_known(self, did: bytes) -> None:
        """Refuse content the node can see is registered: on chain, or in a batch it knows."""
        record = self.client.find(did)
        if record is not None:
            raise Conflict(
                f"design {hex32(did)} is already registered by {record.designer} "
                f"at block {record.block_number}"
            )
        cert = self.certificate(did)
        if cert is not None and cert.batch is not None:
            raise Conflict(
                f"design {hex32(did)} is already registered by {cert.designer} at block "
                f"{cert.block_number} (batch {hex32(cert.batch.root)})"
            )

    def _check_parent(self, sender: Sender, parent: bytes) -> None:
        record = self.ensure_recorded(sender, parent, what="parent design")
        if record.revoked:
            raise Conflict(f"parent design {hex32(parent)} is revoked")

    def register(
        self, sender: Sender, items: Sequence[NewDesign], parent: str | bytes | None = None
    ) -> list[Certificate]:
        """Register `items` for `sender`: one transaction, single or batch."""
        if not items:
            raise InvalidInput("nothing to register: give at least one file or hash")
        seen: dict[bytes, str] = {}
        for item in items:
            if item.design_id == ZERO32:
                raise InvalidInput("the zero hash is not a design id")
            if item.design_id in seen:
                raise InvalidInput(
                    f"{seen[item.design_id]} and {item.label} have the same content "
                    f"({hex32(item.design_id)}): register it once"
                )
            seen[item.design_id] = item.label
        if not self.node.consortium.has_role(sender.address, 4):
            raise Forbidden(f"{sender.address} is not an active member with the designer role")
        parent_id = optional_id(parent, "parent design id")
        for item in items:
            self._refuse_known(item.design_id)
        if parent_id != ZERO32:
            self._check_parent(sender, parent_id)
        if len(items) == 1:
            certs = [self._register_one(sender, items[0], parent_id)]
        else:
            certs = self._register_batch(sender, items, parent_id)
        for item, cert in zip(items, certs, strict=True):
            self.blobs.put(canonical(item.metadata))
            content = item.read()
            if content is not None:
                self.blobs.put(content)
            self._save(cert)
        return certs

    def _certificate(
        self, receipt: TxReceipt, item: NewDesign, parent: bytes, batch: BatchProof | None
    ) -> Certificate:
        block = self.node.chain.w3.eth.get_block(receipt["blockNumber"])
        return Certificate(
            design_id=item.design_id,
            designer=str(receipt["from"]),
            metadata_hash=item.metadata_hash,
            parent_id=parent if parent != ZERO32 else None,
            chain_id=self.node.chain.chain_id,
            contract=self.client.address,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            block_hash=block["hash"].to_0x_hex(),
            block_time=int(block["timestamp"]),
            batch=batch,
            metadata=item.metadata,
        )

    def _register_one(self, sender: Sender, item: NewDesign, parent: bytes) -> Certificate:
        receipt = self.client.register(sender, item.design_id, parent, item.metadata_hash)
        return self._certificate(receipt, item, parent, None)

    def _register_batch(
        self, sender: Sender, items: Sequence[NewDesign], parent: bytes
    ) -> list[Certificate]:
        values = [[i.design_id, i.metadata_hash, parent] for i in items]
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
        manifest = canonical(tree.dump())
        manifest_hash = hashlib.sha256(manifest).digest()
        receipt = self.client.register_batch(sender, tree.root, len(items), manifest_hash)
        self.blobs.put(manifest)
        return [
            self._certificate(
                receipt,
                item,
                parent,
                BatchProof(tree.root, len(items), manifest_hash, tuple(tree.proof(n))),
            )
            for n, item in enumerate(items)
        ]

    # --- on-chain records --------------------------------------------------------------
    def claim(self, sender: Sender, value: str | bytes) -> DesignRecord:
        """Record a batch member on chain from the certificate this node holds."""
        did = design_id(value)
        cert = self.certificate(did)
        if cert is None or cert.batch is None:
            record = self.client.find(did)
            if record is not None:
                return record
            raise NotFound(f"this node holds no batch certificate for design {hex32(did)}")
        b = cert.batch
        self.client.claim(
            sender, b.root, did, cert.metadata_hash, cert.parent_id or ZERO32, list(b.proof)
        )
        return self.client.design(did)

    def ensure_recorded(
        self, sender: Sender, value: str | bytes, what: str = "design"
    ) -> DesignRecord:
        """The on-chain record of a design, claiming it first if it is a known batch member."""
        did = design_id(value, f"{what} id")
        record = self.client.find(did)
        if record is not None:
            return record
        cert = self.certificate(did)
        if cert is not None and cert.batch is not None:
            return self.claim(sender, did)
        raise NotFound(f"{what} {hex32(did)} is not registered")

    def show(self, value: str | bytes) -> dict[str, Any]:
        did = design_id(value)
        record = self.client.find(did)
        cert = self.certificate(did)
        if record is None and cert is None:
            raise NotFound(f"design {hex32(did)} is not registered")
        data: dict[str, Any] = (
            record.as_dict()
            if record
            else {
                "design_id": hex32(did),
                "designer": cert.designer,  # type: ignore[union-attr]
                "registered_at": cert.block_time,  # type: ignore[union-attr]
                "block_number": cert.block_number,  # type: ignore[union-attr]
                "status": "unclaimed",
                "from_batch": True,
                "revoked_at_block": None,
            }
        )
        if cert is not None:
            data["tx_hash"] = cert.tx_hash
            data["parent_id"] = hex32(cert.parent_id) if cert.parent_id else None
            data["metadata"] = cert.metadata
            data["batch_root"] = hex32(cert.batch.root) if cert.batch else None
        return data

    def listing(self, designer: str | None = None) -> list[dict[str, Any]]:
        """Designs recorded on chain (registered or claimed), then this node's unclaimed ones."""
        filters = {"designer": checksum(designer, "designer")} if designer else {}
        ids: dict[bytes, None] = {}
        for name in ("DesignRegistered", "DesignClaimed"):
            for event in self.client.events(name, **filters):
                ids[bytes(event["args"]["designId"])] = None
        for cert in self.certificates():
            if designer is None or cert.designer == filters.get("designer"):
                ids[cert.design_id] = None
        rows = [self.show(did) for did in ids]
        return sorted(rows, key=lambda r: (r["block_number"], r["design_id"]))

    def revoke(self, sender: Sender, value: str | bytes) -> DesignRecord:
        did = self.ensure_recorded(sender, value).design_id
        self.client.revoke(sender, did)
        return self.client.design(did)

    def supersede(self, sender: Sender, value: str | bytes, successor: str | bytes) -> DesignRecord:
        did = self.ensure_recorded(sender, value).design_id
        new = self.ensure_recorded(sender, successor, what="successor design").design_id
        self.client.supersede(sender, did, new)
        return self.client.design(did)

    def grant_licence(
        self, sender: Sender, value: str | bytes, licensee: str, royalty_ppm: int
    ) -> Any:
        who = checksum(licensee, "licensee")
        try:
            member = self.node.consortium.member(who)
        except NotFound:
            raise NotFound(f"{who} is not a member of the consortium: no licence") from None
        if member.status is not MemberStatus.ACTIVE:
            raise Conflict(f"member {who} is suspended: no licence")
        did = self.ensure_recorded(sender, value).design_id
        self.client.grant_licence(sender, did, who, royalty_ppm)
        return self.client.licence(did, who)

    def revoke_licence(self, sender: Sender, value: str | bytes, licensee: str) -> Any:
        did = design_id(value)
        self.client.revoke_licence(sender, did, licensee)
        return self.client.licence(did, licensee)

    # --- encrypted sharing -------------------------------------------------------------
    def publish_key(self, sender: Sender) -> tuple[bytes, TxReceipt]:
        """Publish the sender's derived X25519 public key as its Consortium encryption key."""
        public = public_bytes(encryption_key(bytes(sender.account.key)))
        member = self.node.consortium.member(sender.address)
        receipt = self.node.consortium.update_profile(sender, member.metadata_hash, public)
        return public, receipt

    def share(
        self,
        sender: Sender,
        value: str | bytes,
        recipients: Sequence[str],
        plaintext: bytes | None = None,
    ) -> list[ShareRecord]:
        """Encrypt the design once under a fresh key, wrap it to each licensed recipient."""
        if not recipients:
            raise InvalidInput("share with whom? give at least one member address")
        did = design_id(value)
        record = self.ensure_recorded(sender, did)
        if record.designer != sender.address:
            raise Forbidden(f"{sender.address} is not the registrant of design {hex32(did)}")
        if record.revoked:
            raise Conflict(f"design {hex32(did)} is revoked: it is shared no more")
        if plaintext is None:
            try:
                plaintext = self.blobs.get(did)
            except NotFound:
                raise InvalidInput(
                    f"this node does not hold the file of design {hex32(did)}: give the file"
                ) from None
        elif hashlib.sha256(plaintext).digest() != did:
            raise InvalidInput(f"that file is not design {hex32(did)}: its SHA-256 differs")
        targets: list[tuple[str, bytes]] = []
        for raw in dict.fromkeys(recipients):
            who = checksum(raw, "recipient")
            if not self.client.licence(did, who).active:
                raise Conflict(f"{who} holds no active licence of design {hex32(did)}: no share")
            key = self.node.consortium.member(who).encryption_key
            if key == ZERO32:
                raise Conflict(
                    f"member {who} has not published an encryption key "
                    "(`cofab design key --publish`)"
                )
            targets.append((who, key))
        file_key, blob = encrypt_file(plaintext, did)
        ciphertext_hash = hashlib.sha256(blob).digest()
        envelopes = [wrap_key(file_key, did, ciphertext_hash, who, key) for who, key in targets]
        self.blobs.put(blob)
        shares = []
        for (who, _), envelope in zip(targets, envelopes, strict=True):
            envelope_hash = bytes.fromhex(self.blobs.put(envelope.canonical()))
            self.client.record_share(sender, did, who, ciphertext_hash, envelope_hash)
            share = self.client.share_of(did, who)
            assert share is not None
            shares.append(share)
        return shares

    def _released_share(self, did: bytes, recipient: str) -> ShareRecord:
        share = self.client.share_of(did, recipient)
        if share is None:
            raise NotFound(f"no share of design {hex32(did)} to {recipient} is recorded on chain")
        if not self.client.licence(did, recipient).active:
            raise Forbidden(
                f"{recipient} holds no active licence of design {hex32(did)}: nothing is released"
            )
        return share

    def package(self, value: str | bytes, recipient: str) -> dict[str, Any]:
        """The encrypted share for `recipient` as JSON: envelope text and base64 ciphertext."""
        did, who = design_id(value), checksum(recipient, "recipient")
        share = self._released_share(did, who)
        envelope = self._blob(share.wrapped_key_hash, "key envelope")
        ciphertext = self._blob(share.ciphertext_hash, "ciphertext")
        return {
            **share.as_dict(),
            "envelope": envelope.decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }

    def _blob(self, digest: bytes, what: str) -> bytes:
        try:
            return self.blobs.get(digest)
        except BlobCorrupt:
            raise DecryptionFailed(
                f"the {what} {digest.hex()} was tampered with: it no longer matches the hash "
                "recorded on chain"
            ) from None
        except NotFound:
            raise NotFound(f"this node does not hold the {what} {digest.hex()}") from None

    def fetch(
        self, account: LocalAccount, value: str | bytes, package: dict[str, Any] | None = None
    ) -> bytes:
        """Decrypt the share of a design to `account`, checking it against the chain."""
        did = design_id(value)
        share = self._released_share(did, account.address)
        if package is None:
            envelope_raw = self._blob(share.wrapped_key_hash, "key envelope")
            ciphertext = self._blob(share.ciphertext_hash, "ciphertext")
        else:
            try:
                envelope_raw = str(package["envelope"]).encode()
                ciphertext = base64.b64decode(package["ciphertext"], validate=True)
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(
                    "the package needs 'envelope' text and base64 'ciphertext'"
                ) from None
        if hashlib.sha256(envelope_raw).digest() != share.wrapped_key_hash:
            raise DecryptionFailed(
                "the key envelope was tampered with: it does not match the hash recorded on chain"
            )
        if hashlib.sha256(ciphertext).digest() != share.ciphertext_hash:
            raise DecryptionFailed(
                "the ciphertext was tampered with: it does not match the hash recorded on chain"
            )
        envelope = Envelope.loads(envelope_raw)
        if envelope.design_id != did or envelope.ciphertext_hash != share.ciphertext_hash:
            raise DecryptionFailed("the key envelope is for another design or ciphertext")
        file_key = unwrap_key(envelope, encryption_key(bytes(account.key)))
        return decrypt_file(file_key, ciphertext, did)


def load_package(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a readable share package: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a share package")
    return data
