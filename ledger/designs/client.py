"""Typed access to the DesignRegistry contract: commitments, reveals, batches, licences,
shares."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, computed_field
from web3.contract import Contract
from web3.types import TxReceipt

from ledger.core.abi import PPM_SCALE, ZERO32, checksum, hex32
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.types import Hex, Record
from ledger.designs.certificates import commitment_of
from ledger.eth.contract import call
from ledger.eth.tx import Sender

FLAG_REVOKED, FLAG_SUPERSEDED, FLAG_BATCH = 1, 2, 4


def design_id(value: str | bytes, what: str = "design id") -> bytes:
    """A design id (SHA-256 of the file) from 64 hex digits, with or without 0x, or bytes."""
    if isinstance(value, bytes):
        raw = value
    else:
        text = value.strip().lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    if len(raw) != 32:
        raise InvalidInput(f"{what} {value!r} is not a SHA-256 hash (64 hex digits)")
    return raw


def optional_id(value: str | bytes | None, what: str) -> bytes:
    return design_id(value, what) if value else ZERO32


class DesignRecord(Record):
    """A design as the registry records it."""

    design_id: Hex
    designer: str
    registered_at: int
    block_number: int
    flags: int = Field(exclude=True)
    revoked_at: int = Field(exclude=True)  # the block that revoked it; 0 if none

    @property
    def revoked(self) -> bool:
        return bool(self.flags & FLAG_REVOKED)

    @property
    def superseded(self) -> bool:
        return bool(self.flags & FLAG_SUPERSEDED)

    @computed_field(
        description="active | superseded | revoked | unrevealed (committed, not on chain yet)"
    )
    @property
    def status(self) -> str:
        return "revoked" if self.revoked else "superseded" if self.superseded else "active"

    @computed_field
    @property
    def from_batch(self) -> bool:
        return bool(self.flags & FLAG_BATCH)

    @computed_field
    @property
    def revoked_at_block(self) -> int | None:
        return self.revoked_at or None


@dataclass(frozen=True)
class Stamp:
    """When a designer recorded a commitment or a batch root: its priority."""

    registered_at: int
    block_number: int


class Licence(Record):
    """A licensee's right to a design and the royalty it pays (block_number: the licence's
    last change, None if never granted)."""

    design_id: Hex
    licensee: str
    active: bool
    designer: str
    royalty_ppm: int
    block_number: int | None


class ShareRecord(Record):
    """An encrypted share of a design recorded for one recipient: the hashes of its
    ciphertext and of its key envelope."""

    design_id: Hex
    recipient: str
    ciphertext_hash: Hex
    wrapped_key_hash: Hex
    block_number: int


class SharePackage(ShareRecord):
    """A share with its key envelope and ciphertext: what the recipient's node imports."""

    envelope: str = Field(description="the key envelope (canonical JSON text)")
    ciphertext: str = Field(description="the AES-256-GCM ciphertext blob, base64")


class DesignsClient:
    def __init__(self, contract: Contract, from_block: int = 0) -> None:
        self.contract = contract
        self.from_block = from_block

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # --- reads -----------------------------------------------------------------------
    def find(self, value: str | bytes) -> DesignRecord | None:
        did = design_id(value)
        designer, registered_at, block, flags = call(self.contract.functions.design(did))
        if int(designer, 16) == 0:
            return None
        revoked_at = int(call(self.contract.functions.revokedAt(did)))
        return DesignRecord(
            design_id=did,
            designer=designer,
            registered_at=registered_at,
            block_number=block,
            flags=flags,
            revoked_at=revoked_at,
        )

    def design(self, value: str | bytes) -> DesignRecord:
        record = self.find(value)
        if record is None:
            raise NotFound(f"design {hex32(design_id(value))} is not registered on chain")
        return record

    @staticmethod
    def _stamp(raw: Any) -> Stamp | None:
        registered_at, block = raw
        return Stamp(int(registered_at), int(block)) if block else None

    def commitment(self, commitment: bytes, designer: str) -> Stamp | None:
        fn = self.contract.functions.commitmentStamp(commitment, checksum(designer, "designer"))
        return self._stamp(call(fn))

    def batch(self, root: bytes, designer: str) -> Stamp | None:
        fn = self.contract.functions.batch(root, checksum(designer, "designer"))
        return self._stamp(call(fn))

    def verify_member(
        self,
        root: bytes,
        designer: str,
        did: bytes,
        metadata_hash: bytes,
        parent: bytes,
        proof: Sequence[bytes],
    ) -> bool:
        fn = self.contract.functions.verifyMember(
            root, designer, did, metadata_hash, parent, list(proof)
        )
        return bool(call(fn))

    def leaf_hash(self, did: bytes, metadata_hash: bytes, parent: bytes, designer: str) -> bytes:
        fn = self.contract.functions.leafHash(did, metadata_hash, parent, designer)
        return bytes(call(fn))

    def commitment_of(
        self, did: bytes, metadata_hash: bytes, parent: bytes, designer: str, salt: bytes
    ) -> bytes:
        fn = self.contract.functions.commitmentOf(did, metadata_hash, parent, designer, salt)
        return bytes(call(fn))

    def licence(self, value: str | bytes, licensee: str, block: int | None = None) -> Licence:
        did, who = design_id(value), checksum(licensee, "licensee")
        if block is None:
            fn = self.contract.functions.licenceOf(did, who)
        else:
            if block < 0:
                raise InvalidInput("block must be 0 or more")
            fn = self.contract.functions.licenceAt(did, who, block)
        active, designer, royalty = call(fn)
        return Licence(
            design_id=did,
            licensee=who,
            active=bool(active),
            designer=designer,
            royalty_ppm=int(royalty),
            block_number=block,
        )

    def share_of(self, value: str | bytes, recipient: str) -> ShareRecord | None:
        did, who = design_id(value), checksum(recipient, "recipient")
        ciphertext, wrapped, block = call(self.contract.functions.shareOf(did, who))
        if int(block) == 0:
            return None
        return ShareRecord(
            design_id=did,
            recipient=who,
            ciphertext_hash=bytes(ciphertext),
            wrapped_key_hash=bytes(wrapped),
            block_number=int(block),
        )

    def licences(self, value: str | bytes) -> list[Licence]:
        """Every licence of a design ever granted, in grant order, as it stands now."""
        did = design_id(value)
        granted = self.events("LicenceGranted", designId=did)
        licensees = dict.fromkeys(str(e["args"]["licensee"]) for e in granted)
        return [self.licence(did, a) for a in licensees]

    def shares(self, value: str | bytes) -> list[ShareRecord]:
        """The design's encrypted shares on the chain, one a recipient (its latest)."""
        did = design_id(value)
        shared = self.events("DesignShared", designId=did)
        recipients = dict.fromkeys(str(e["args"]["recipient"]) for e in shared)
        records = [self.share_of(did, a) for a in recipients]
        return [r for r in records if r is not None]

    def events(self, name: str, **filters: Any) -> list[Any]:
        """Every `name` event of the registry (optionally filtered on indexed arguments)."""
        event = getattr(self.contract.events, name)
        return list(event.get_logs(from_block=self.from_block, argument_filters=filters or None))

    # --- writes ----------------------------------------------------------------------
    def commit(self, sender: Sender, commitment: bytes) -> TxReceipt:
        return sender.transact(self.contract.functions.commit(commitment))

    def reveal(
        self,
        sender: Sender,
        did: bytes,
        metadata_hash: bytes,
        parent: bytes,
        designer: str,
        salt: bytes,
    ) -> TxReceipt:
        fn = self.contract.functions.reveal(did, metadata_hash, parent, designer, salt)
        return sender.transact(fn)

    def register(
        self,
        sender: Sender,
        did: bytes,
        parent: bytes,
        metadata_hash: bytes,
        salt: bytes | None = None,
    ) -> TxReceipt:
        """Commit, then reveal once the commitment is mined: for content that may be public
        at once. The content hash is sent only after the commitment holds the priority."""
        salt = salt if salt is not None else os.urandom(32)
        self.commit(sender, commitment_of(did, metadata_hash, parent, sender.address, salt))
        return self.reveal(sender, did, metadata_hash, parent, sender.address, salt)

    def register_batch(
        self, sender: Sender, root: bytes, count: int, manifest_hash: bytes
    ) -> TxReceipt:
        return sender.transact(self.contract.functions.registerBatch(root, count, manifest_hash))

    def claim(
        self,
        sender: Sender,
        root: bytes,
        designer: str,
        did: bytes,
        metadata_hash: bytes,
        parent: bytes,
        proof: Sequence[bytes],
    ) -> TxReceipt:
        fn = self.contract.functions.claim(root, designer, did, metadata_hash, parent, list(proof))
        return sender.transact(fn)

    def revoke(self, sender: Sender, value: str | bytes) -> TxReceipt:
        return sender.transact(self.contract.functions.revoke(design_id(value)))

    def supersede(self, sender: Sender, value: str | bytes, successor: str | bytes) -> TxReceipt:
        fn = self.contract.functions.supersede(design_id(value), design_id(successor, "successor"))
        return sender.transact(fn)

    def grant_licence(
        self, sender: Sender, value: str | bytes, licensee: str, royalty_ppm: int
    ) -> TxReceipt:
        if not 0 <= royalty_ppm <= PPM_SCALE:
            raise InvalidInput(
                f"royalty {royalty_ppm} ppm is out of range: 0..{PPM_SCALE} (1,000,000 = 100%)"
            )
        fn = self.contract.functions.grantLicence(
            design_id(value), checksum(licensee, "licensee"), royalty_ppm
        )
        return sender.transact(fn)

    def revoke_licence(self, sender: Sender, value: str | bytes, licensee: str) -> TxReceipt:
        fn = self.contract.functions.revokeLicence(design_id(value), checksum(licensee, "licensee"))
        return sender.transact(fn)

    def record_share(
        self,
        sender: Sender,
        value: str | bytes,
        recipient: str,
        ciphertext_hash: bytes,
        wrapped_key_hash: bytes,
    ) -> TxReceipt:
        fn = self.contract.functions.recordShare(
            design_id(value), checksum(recipient, "recipient"), ciphertext_hash, wrapped_key_hash
        )
        return sender.transact(fn)
