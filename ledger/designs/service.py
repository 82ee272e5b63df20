"""What a node does with designs: commit (single or batch), certify, reveal, licence, share.

Registering sends only a commitment that names the designer (a single file's salted
commitment, or a batch's Merkle root), so a copy of the pending transaction is worthless.
The content hash goes on chain later, when the design is first licensed, shared, revoked,
superseded or used as a parent: the node reveals it then, from the certificate it issued.

The chain is the authority; the node adds what the chain cannot see. It refuses duplicates
it knows of before sending anything (records on chain, and its own unrevealed
commitments), keeps the certificates it issued under `<data dir>/designs/certificates/`,
and keeps files, metadata documents, manifests, ciphertexts and key envelopes in the
content-addressed blob store `<data dir>/blobs/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import Field
from web3.types import TxReceipt

from ledger.core.abi import ZERO32, checksum, hex32
from ledger.core.blobs import BlobCorrupt, BlobStore
from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.core.merkle import StandardMerkleTree
from ledger.core.private import write_private
from ledger.core.types import Hex, Record
from ledger.designs.certificates import (
    LEAF_ENCODING,
    BatchProof,
    Certificate,
    Commitment,
    commitment_of,
    leaf_value,
)
from ledger.designs.client import (
    DesignRecord,
    DesignsClient,
    Licence,
    SharePackage,
    ShareRecord,
    design_id,
    optional_id,
)
from ledger.designs.crypto import (
    DecryptionFailed,
    Envelope,
    commitment_salt,
    decrypt_file,
    encrypt_file,
    encryption_key,
    public_bytes,
    unwrap_key,
    wrap_key,
)
from ledger.designs.files import NewDesign, canonical
from ledger.eth.chain import Chain
from ledger.eth.tx import Builder, Sender
from ledger.membership.consortium import ConsortiumClient, MemberStatus
from ledger.membership.roles import Role


class DesignView(Record):
    """A design as a node shows it: the registry's record (or, before it is revealed, the
    node's certificate) and what the node's certificate adds."""

    design_id: Hex
    designer: str
    registered_at: int
    block_number: int
    status: str = Field(
        description="active | superseded | revoked | unrevealed (committed, not on chain yet)"
    )
    from_batch: bool
    revoked_at_block: int | None = None
    tx_hash: str | None = None
    parent_id: Hex | None = Field(default=None, description="the version it derives from")
    successor_id: Hex | None = Field(
        default=None, description="the newer version that superseded it (status superseded)"
    )
    metadata: dict[str, Any] | None = None
    batch_root: Hex | None = None


class DesignService:
    """Registration, certificates, licences and shares, over the node's chain and data dir.

    Built by `Node.design_service`; it gets its collaborators rather than the node so the
    domain never imports the composition root.
    """

    def __init__(
        self,
        chain: Chain,
        client: DesignsClient,
        consortium: ConsortiumClient,
        data_dir: Path,
    ) -> None:
        self.chain = chain
        self.client = client
        self.consortium = consortium
        self.blobs = BlobStore(data_dir / "blobs")
        self.certificates_dir = data_dir / "designs" / "certificates"

    # --- certificates kept by this node --------------------------------------------------
    def _certificate_path(self, did: bytes) -> Path:
        return self.certificates_dir / f"{did.hex()}.json"

    def certificate(self, value: str | bytes) -> Certificate | None:
        path = self._certificate_path(design_id(value))
        try:
            cert = Certificate.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cert if cert.chain_id == self.chain.chain_id else None

    def certificates(self) -> list[Certificate]:
        if not self.certificates_dir.is_dir():
            return []
        paths = sorted(self.certificates_dir.glob("*.json"))
        found = [Certificate.loads(p.read_text()) for p in paths]
        return [c for c in found if c.chain_id == self.chain.chain_id]

    def _save(self, cert: Certificate) -> None:
        write_private(self._certificate_path(cert.design_id), cert.dumps())

    # --- registration ------------------------------------------------------------------
    def _refuse_known(self, did: bytes) -> None:
        """Refuse content the node can see is registered: on chain, or committed by it."""
        record = self.client.find(did)
        if record is not None:
            raise Conflict(
                f"design {hex32(did)} is already registered by {record.designer} "
                f"at block {record.block_number}"
            )
        cert = self.certificate(did)
        if cert is not None:
            where = f" (batch {hex32(cert.batch.root)})" if cert.batch else ""
            raise Conflict(
                f"design {hex32(did)} is already registered by {cert.designer} at block "
                f"{cert.block_number}{where}, not revealed yet"
            )

    def _check_parent(self, sender: Sender, parent: bytes) -> None:
        """The parent must be recorded on chain, or committed by the same designer through
        this node (it is then revealed just before its first child)."""
        record = self.client.find(parent)
        cert = self.certificate(parent)
        if record is None and (cert is None or cert.designer != sender.address):
            raise NotFound(f"parent design {hex32(parent)} is not registered")
        if record is not None and record.revoked:
            raise Conflict(f"parent design {hex32(parent)} is revoked")

    def register(
        self, sender: Sender, items: Sequence[NewDesign], parent: str | bytes | None = None
    ) -> list[Certificate]:
        """Commit `items` for `sender`: one transaction, single or batch. Nothing reveals
        the content hashes until a design is used (see `reveal`)."""
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
        if not self.consortium.has_role(sender.address, Role.DESIGNER):
            raise Forbidden(f"{sender.address} is not an active member with the designer role")
        parent_id = optional_id(parent, "parent design id")
        for item in items:
            self._refuse_known(item.design_id)
        if parent_id != ZERO32:
            self._check_parent(sender, parent_id)
        if len(items) == 1 and not isinstance(sender, Builder):
            certs = [self._register_one(sender, items[0], parent_id)]
        else:
            # a single commitment's salt is derived from the designer's key: a designer who
            # signs elsewhere (a Builder) registers one file as a batch of one instead
            certs = self._register_batch(sender, items, parent_id)
        for item, cert in zip(items, certs, strict=True):
            self.blobs.put(canonical(item.metadata))
            self._keep_file(item)
            self._save(cert)
        return certs

    def _keep_file(self, item: NewDesign) -> None:
        """Keep the design's file in the blob store, if the node has it; never the whole
        of a large file in memory (an upload is already on disk, staged)."""
        if item.staged is not None:
            item.staged.commit()
        elif item.content is not None:
            self.blobs.put(item.content)
        elif item.path is not None:
            self.blobs.put_file(item.path)

    def _certificate(
        self,
        receipt: TxReceipt,
        item: NewDesign,
        parent: bytes,
        designer: str,
        *,
        commitment: Commitment | None = None,
        batch: BatchProof | None = None,
    ) -> Certificate:
        block = self.chain.w3.eth.get_block(receipt["blockNumber"])
        return Certificate(
            design_id=item.design_id,
            designer=designer,
            metadata_hash=item.metadata_hash,
            parent_id=parent if parent != ZERO32 else None,
            chain_id=self.chain.chain_id,
            contract=self.client.address,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            block_hash=block["hash"].to_0x_hex(),
            block_time=int(block["timestamp"]),
            commitment=commitment,
            batch=batch,
            metadata=item.metadata,
        )

    def _register_one(self, sender: Sender, item: NewDesign, parent: bytes) -> Certificate:
        did, meta = item.design_id, item.metadata_hash
        salt = commitment_salt(bytes(sender.account.key), did, meta, parent)
        value = commitment_of(did, meta, parent, sender.address, salt)
        if self.client.commitment(value, sender.address) is not None:
            # committed before (its certificate was lost): certify that commitment again
            [event] = self.client.events(
                "DesignCommitted", commitment=value, designer=sender.address
            )
            receipt = self.chain.w3.eth.get_transaction_receipt(event["transactionHash"])
        else:
            receipt = self.client.commit(sender, value)
        return self._certificate(
            receipt, item, parent, sender.address, commitment=Commitment(value, salt)
        )

    def _register_batch(
        self, sender: Sender, items: Sequence[NewDesign], parent: bytes
    ) -> list[Certificate]:
        values = [leaf_value(i.design_id, i.metadata_hash, parent, sender.address) for i in items]
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
        manifest = canonical(tree.dump())
        manifest_hash = hashlib.sha256(manifest).digest()
        if self.client.batch(tree.root, sender.address) is not None:
            # registered before (signed elsewhere and relayed, or its certificates lost):
            # certify that registration
            [event] = self.client.events("BatchRegistered", root=tree.root, designer=sender.address)
            receipt = self.chain.w3.eth.get_transaction_receipt(event["transactionHash"])
        else:
            receipt = self.client.register_batch(sender, tree.root, len(items), manifest_hash)
        self.blobs.put(manifest)
        return [
            self._certificate(
                receipt,
                item,
                parent,
                sender.address,
                batch=BatchProof(tree.root, len(items), manifest_hash, tuple(tree.proof(n))),
            )
            for n, item in enumerate(items)
        ]

    # --- reveals -----------------------------------------------------------------------
    def _revealed(self, cert: Certificate) -> DesignRecord | None:
        """The chain's record of this very registration, once it is revealed."""
        record = self.client.find(cert.design_id)
        if record is None or record.designer != cert.designer:
            return None
        return record if record.block_number == cert.block_number else None

    def reveal(
        self, sender: Sender, value: str | bytes, cert: Certificate | None = None
    ) -> DesignRecord:
        """Put a design on chain from its certificate (this node's, or one given): reveal
        its commitment, or claim it from its batch. The record is the certificate's
        designer's, dated at the commitment's block, whoever sends it."""
        did = design_id(value)
        record = self.client.find(did)
        cert = cert or self.certificate(did)
        if cert is None:
            if record is not None:
                return record
            raise NotFound(f"this node holds no certificate for design {hex32(did)}")
        if cert.design_id != did:
            raise InvalidInput(f"that certificate is for design {hex32(cert.design_id)}")
        if (cert.chain_id, cert.contract) != (self.chain.chain_id, self.client.address):
            raise InvalidInput(
                f"that certificate is for registry {cert.contract} on chain {cert.chain_id}"
            )
        revealed = self._revealed(cert)
        if revealed is not None:
            return revealed
        parent = self.certificate(cert.parent) if cert.parent_id else None
        if parent is not None and parent.designer == cert.designer:
            self.reveal(sender, parent.design_id)  # the parent first: the chain checks it
        if cert.commitment is not None:
            self.client.reveal(
                sender, did, cert.metadata_hash, cert.parent, cert.designer, cert.commitment.salt
            )
        else:
            assert cert.batch is not None
            b = cert.batch
            self.client.claim(
                sender, b.root, cert.designer, did, cert.metadata_hash, cert.parent, list(b.proof)
            )
        return self.client.design(did)

    def ensure_recorded(
        self, sender: Sender, value: str | bytes, what: str = "design"
    ) -> DesignRecord:
        """The on-chain record of a design, revealing it first if this node committed it
        for `sender` (nobody reveals another designer's design through the node)."""
        did = design_id(value, f"{what} id")
        record = self.client.find(did)
        if record is not None:
            return record
        cert = self.certificate(did)
        if cert is not None and cert.designer == sender.address:
            return self.reveal(sender, did)
        raise NotFound(f"{what} {hex32(did)} is not registered")

    def versions(self, did: bytes) -> tuple[bytes | None, bytes | None]:
        """(parent, successor) of a recorded design, from the registry's events: the version
        it derives from and the one that superseded it (None when there is none)."""
        recorded = [
            event
            for name in ("DesignRegistered", "DesignClaimed")
            for event in self.client.events(name, designId=did)
        ]
        parent = bytes(recorded[-1]["args"]["parentId"]) if recorded else ZERO32
        superseded = self.client.events("DesignSuperseded", designId=did)
        successor = bytes(superseded[-1]["args"]["successorId"]) if superseded else None
        return (parent if parent != ZERO32 else None), successor

    def show(
        self,
        value: str | bytes,
        viewer: str | None = None,
        versions: tuple[bytes | None, bytes | None] | None = None,
    ) -> DesignView:
        """A design as the chain records it, with what this node knows of it. An
        unrevealed design is shown only to its designer (`viewer`; None: the operator).
        `versions` (parent, successor) when the caller read them already."""
        did = design_id(value)
        record = self.client.find(did)
        cert = self.certificate(did)
        if cert is not None and not (
            self._revealed(cert) or (record is None and _may_see(cert, viewer))
        ):
            cert = None  # another registration, or an unrevealed one: its designer's business
        data: dict[str, Any]
        if record is not None:
            data = record.model_dump()
        elif cert is not None:
            data = {
                "design_id": did,
                "designer": cert.designer,
                "registered_at": cert.block_time,
                "block_number": cert.block_number,
                "status": "unrevealed",
                "from_batch": cert.batch is not None,
            }
        else:
            raise NotFound(f"design {hex32(did)} is not registered")
        if record is not None:
            parent, successor = versions if versions is not None else self.versions(did)
            data["parent_id"] = parent
            data["successor_id"] = successor
        if cert is not None:
            data["tx_hash"] = cert.tx_hash
            data["parent_id"] = cert.parent_id or None
            data["metadata"] = cert.metadata
            data["batch_root"] = cert.batch.root if cert.batch else None
        return DesignView(**data)

    def listing(self, designer: str | None = None, viewer: str | None = None) -> list[DesignView]:
        """Designs recorded on chain, then this node's unrevealed ones: all of them for the
        operator (`viewer` None), else only the viewer's own."""
        filters = {"designer": checksum(designer, "designer")} if designer else {}
        ids: dict[bytes, None] = {}
        parents: dict[bytes, bytes | None] = {}
        for name in ("DesignRegistered", "DesignClaimed"):
            for event in self.client.events(name, **filters):
                did = bytes(event["args"]["designId"])
                ids[did] = None
                parent = bytes(event["args"]["parentId"])
                parents[did] = parent if parent != ZERO32 else None
        successors = {
            bytes(e["args"]["designId"]): bytes(e["args"]["successorId"])
            for e in self.client.events("DesignSuperseded", **filters)
        }
        for cert in self.certificates():
            mine = designer is None or cert.designer == filters.get("designer")
            if mine and _may_see(cert, viewer):
                ids[cert.design_id] = None
        rows = [self.show(did, viewer, (parents.get(did), successors.get(did))) for did in ids]
        return sorted(rows, key=lambda r: (r.block_number, r.design_id))

    def certificate_for(self, value: str | bytes, viewer: str | None = None) -> Certificate:
        """The certificate this node issued: to its designer (or the operator), and to
        anyone once the chain records that very registration (its salt is public then)."""
        cert = self.certificate(value)
        if cert is None or not (_may_see(cert, viewer) or self._revealed(cert)):
            shown = hex32(design_id(value))
            raise NotFound(f"this node holds no certificate for design {shown} that you may see")
        return cert

    def batch(self, root: str | bytes, viewer: str | None = None) -> dict[str, Any]:
        """A batch's whole Merkle tree (the manifest whose SHA-256 its registration names)
        with the chain's record of it, so anyone it is shown to can prove any member. Its
        leaves name every design of the batch, so while one of them is not revealed it is
        shown to the designer (or the operator) only."""
        r = design_id(root, "batch root")
        events = self.client.events("BatchRegistered", root=r)
        if not events:
            raise NotFound(f"no batch {hex32(r)} is registered")
        held = [e for e in events if self.blobs.has(bytes(e["args"]["manifestHash"]))]
        if not held:
            raise NotFound(
                f"this node does not hold the manifest of batch {hex32(r)}: the node that "
                f"registered it (for {events[0]['args']['designer']}) does"
            )
        event = held[0]
        designer = checksum(event["args"]["designer"], "designer")
        manifest_hash = bytes(event["args"]["manifestHash"])
        manifest = json.loads(self.blobs.get(manifest_hash))
        if viewer is not None and checksum(viewer, "viewer") != designer:
            hidden = [
                v for v in manifest["values"] if self.client.find(design_id(v["value"][0])) is None
            ]
            if hidden:
                raise Forbidden(
                    f"{len(hidden)} of the {len(manifest['values'])} designs of batch "
                    f"{hex32(r)} are not revealed yet: only its designer {designer} sees "
                    "the batch until they are"
                )
        return {
            "root": hex32(r),
            "designer": designer,
            "count": int(event["args"]["count"]),
            "manifest_hash": hex32(manifest_hash),
            "tx_hash": event["transactionHash"].to_0x_hex(),
            "block_number": int(event["blockNumber"]),
            "manifest": manifest,
        }

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
    ) -> Licence:
        who = checksum(licensee, "licensee")
        try:
            member = self.consortium.member(who)
        except NotFound:
            raise NotFound(f"{who} is not a member of the consortium: no licence") from None
        if member.status is not MemberStatus.ACTIVE:
            raise Conflict(f"member {who} is suspended: no licence")
        if not self.consortium.has_role(sender.address, Role.DESIGNER):
            raise Forbidden(f"{sender.address} is not an active member with the designer role")
        did = self.ensure_recorded(sender, value).design_id
        self.client.grant_licence(sender, did, who, royalty_ppm)
        return self.client.licence(did, who)

    def revoke_licence(self, sender: Sender, value: str | bytes, licensee: str) -> Licence:
        did = design_id(value)
        self.client.revoke_licence(sender, did, licensee)
        return self.client.licence(did, licensee)

    # --- encrypted sharing -------------------------------------------------------------
    def publish_key(self, sender: Sender) -> tuple[bytes, TxReceipt]:
        """Publish the sender's derived X25519 public key as its Consortium encryption key."""
        public = public_bytes(encryption_key(bytes(sender.account.key)))
        member = self.consortium.member(sender.address)
        receipt = self.consortium.update_profile(sender, member.metadata_hash, public)
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
        record = self.client.find(did)
        if record is not None and record.designer != sender.address:
            raise Forbidden(f"{sender.address} is not the registrant of design {hex32(did)}")
        if record is not None and record.revoked:
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
            who: str = checksum(raw, "recipient")
            if not self.client.licence(did, who).active:
                raise Conflict(f"{who} holds no active licence of design {hex32(did)}: no share")
            key = self.consortium.member(who).encryption_key
            if key == ZERO32:
                raise Conflict(
                    f"member {who} has not published an encryption key "
                    "(`cofab design key --publish`)"
                )
            targets.append((who, key))
        # only a licensed design is shared, and licensing put it on chain: nothing to reveal
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

    def package(self, value: str | bytes, recipient: str) -> SharePackage:
        """The encrypted share for `recipient`: envelope text and base64 ciphertext."""
        did, who = design_id(value), checksum(recipient, "recipient")
        share = self._released_share(did, who)
        envelope = self._blob(share.wrapped_key_hash, "key envelope")
        ciphertext = self._blob(share.ciphertext_hash, "ciphertext")
        return SharePackage(
            **dict(share),
            envelope=envelope.decode(),
            ciphertext=base64.b64encode(ciphertext).decode(),
        )

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
            envelope_raw, ciphertext = _package_parts(package)
        envelope = _checked(share, envelope_raw, ciphertext)
        file_key = unwrap_key(envelope, encryption_key(bytes(account.key)))
        return decrypt_file(file_key, ciphertext, did)

    def import_package(self, package: dict[str, Any], recipient: str) -> ShareRecord:
        """Keep a share package fetched from the designer's node in this node's store, so
        `recipient` decrypts it here (`fetch`): only a share the chain records to a member
        who is licensed now, with the envelope and ciphertext whose hashes it records."""
        if not isinstance(package, dict) or "design_id" not in package:
            raise InvalidInput("a share package names its design_id", field="design_id")
        did = design_id(str(package["design_id"]))
        share = self._released_share(did, checksum(recipient, "recipient"))
        envelope_raw, ciphertext = _package_parts(package)
        _checked(share, envelope_raw, ciphertext)
        self.blobs.put(envelope_raw)
        self.blobs.put(ciphertext)
        return share


def _package_parts(package: dict[str, Any]) -> tuple[bytes, bytes]:
    """A share package's key envelope and ciphertext bytes."""
    try:
        return (
            str(package["envelope"]).encode(),
            base64.b64decode(package["ciphertext"], validate=True),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("the package needs 'envelope' text and base64 'ciphertext'") from None


def _checked(share: ShareRecord, envelope_raw: bytes, ciphertext: bytes) -> Envelope:
    """The envelope, once it and the ciphertext match the hashes the share records on chain."""
    if hashlib.sha256(envelope_raw).digest() != share.wrapped_key_hash:
        raise DecryptionFailed(
            "the key envelope was tampered with: it does not match the hash recorded on chain"
        )
    if hashlib.sha256(ciphertext).digest() != share.ciphertext_hash:
        raise DecryptionFailed(
            "the ciphertext was tampered with: it does not match the hash recorded on chain"
        )
    envelope = Envelope.loads(envelope_raw)
    if envelope.design_id != share.design_id or envelope.ciphertext_hash != share.ciphertext_hash:
        raise DecryptionFailed("the key envelope is for another design or ciphertext")
    return envelope


def _may_see(cert: Certificate, viewer: str | None) -> bool:
    """A certificate opens its commitment: only its designer (or the operator) sees it."""
    return viewer is None or checksum(viewer, "viewer") == cert.designer


def load_package(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a readable share package: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a share package")
    return data
