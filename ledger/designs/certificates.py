"""Design certificates: the proof bundle of a registration, and its independent verifier.

A certificate says "file with SHA-256 X was committed by D in transaction T, block N,
time t, on chain C, contract A": for a single file, the commitment
keccak256(abi.encode(X, metadata hash, parent, D, salt)) with its salt; for a batch, the
Merkle proof of the leaf (X, metadata hash, parent, D) under the batch root. Both name
the designer, so nobody else can use them. `verify_certificate` checks every one of those
claims against a JSON-RPC endpoint and nothing else: no cofab node, no keystore, no
compiler (the few ABI items it needs are spelled out below), so a third party can run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi import decode, encode
from eth_typing import HexStr
from eth_utils import is_address, keccak, to_checksum_address
from pydantic import Field
from web3 import Web3
from web3.exceptions import TransactionNotFound

from ledger.core import merkle
from ledger.core.abi import ZERO32, bytes32, hex32
from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.core.types import Hex, Record

FORMAT = "cofab-design-certificate/2"
# Batch leaves and single commitments, in this field order; both name the designer.
LEAF_FIELDS = ("design_id", "metadata_hash", "parent_id", "designer")
LEAF_ENCODING = ("bytes32", "bytes32", "bytes32", "address")
COMMITMENT_FIELDS = (*LEAF_FIELDS, "salt")
COMMITMENT_ENCODING = (*LEAF_ENCODING, "bytes32")
COMMITMENT_HASH = "keccak256(abi.encode(...))"

TOPIC_COMMITTED = keccak(text="DesignCommitted(bytes32,address)")
TOPIC_BATCH = keccak(text="BatchRegistered(bytes32,address,uint256,bytes32)")
SELECTOR_DESIGN = keccak(text="design(bytes32)")[:4]
SELECTOR_REVOKED_AT = keccak(text="revokedAt(bytes32)")[:4]
FLAG_REVOKED, FLAG_SUPERSEDED = 1, 2


class CertificateInvalid(LedgerError):
    """The bundle is unreadable, is for another file or chain, or contradicts the chain."""

    status: ClassVar[int] = 422
    title: ClassVar[str] = "Certificate does not match"
    exit_code: ClassVar[int] = 2


class NotRegistered(NotFound):
    """No registration of this content is recorded on the chain."""


def _b32(value: Any, name: str) -> bytes:
    """A 32-byte field of a certificate; a bad one makes the whole bundle corrupt."""
    if not isinstance(value, str):
        raise CertificateInvalid(f"corrupt bundle: {name} must be a 0x-hex string")
    try:
        return bytes32(value, name, optional=False)
    except InvalidInput as exc:
        raise CertificateInvalid(f"corrupt bundle: {exc}") from None


def _parent(value: Any) -> bytes | None:
    """None for no parent: zero (as written) or null (as certificates once wrote it)."""
    if value is None:
        return None
    raw = _b32(value, "parent_id")
    return None if raw == ZERO32 else raw


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CertificateInvalid(f"corrupt bundle: {name} must be a whole number")
    return value


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise CertificateInvalid(f"corrupt bundle: {name} must be an address")
    return to_checksum_address(value)


def commitment_of(
    design_id: bytes, metadata_hash: bytes, parent_id: bytes, designer: str, salt: bytes
) -> bytes:
    """The commitment `DesignRegistry.commit` records: it names the designer."""
    values = [design_id, metadata_hash, parent_id, designer, salt]
    return keccak(encode(list(COMMITMENT_ENCODING), values))


def leaf_value(
    design_id: bytes, metadata_hash: bytes, parent_id: bytes, designer: str
) -> list[Any]:
    """A batch member's leaf value, in LEAF_ENCODING order."""
    return [design_id, metadata_hash, parent_id, to_checksum_address(designer)]


@dataclass(frozen=True)
class Commitment:
    """A single design's commitment and the salt that opens it."""

    value: bytes
    salt: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "value": hex32(self.value),
            "salt": hex32(self.salt),
            "hash": COMMITMENT_HASH,
            "fields": list(COMMITMENT_FIELDS),
            "encoding": list(COMMITMENT_ENCODING),
        }

    @classmethod
    def from_json(cls, data: Any) -> Commitment:
        if not isinstance(data, dict):
            raise CertificateInvalid("corrupt bundle: commitment must be an object")
        described = (data.get("hash"), data.get("fields"), data.get("encoding"))
        if described != (COMMITMENT_HASH, list(COMMITMENT_FIELDS), list(COMMITMENT_ENCODING)):
            raise CertificateInvalid(
                f"corrupt bundle: the commitment must be {COMMITMENT_HASH} of "
                f"{list(COMMITMENT_FIELDS)} encoded as {list(COMMITMENT_ENCODING)}"
            )
        value = _b32(data.get("value"), "commitment.value")
        return cls(value, _b32(data.get("salt"), "commitment.salt"))


@dataclass(frozen=True)
class BatchProof:
    root: bytes
    count: int
    manifest_hash: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": hex32(self.root),
            "count": self.count,
            "manifest_hash": hex32(self.manifest_hash),
            "leaf_fields": list(LEAF_FIELDS),
            "leaf_encoding": list(LEAF_ENCODING),
            "proof": [hex32(p) for p in self.proof],
        }

    @classmethod
    def from_json(cls, data: Any) -> BatchProof:
        if not isinstance(data, dict):
            raise CertificateInvalid("corrupt bundle: batch must be an object")
        if data.get("leaf_encoding") != list(LEAF_ENCODING):
            raise CertificateInvalid(f"corrupt bundle: leaf_encoding must be {list(LEAF_ENCODING)}")
        if data.get("leaf_fields") != list(LEAF_FIELDS):
            raise CertificateInvalid(f"corrupt bundle: leaf_fields must be {list(LEAF_FIELDS)}")
        proof = data.get("proof")
        if not isinstance(proof, list):
            raise CertificateInvalid("corrupt bundle: batch.proof must be a list")
        return cls(
            root=_b32(data.get("root"), "batch.root"),
            count=_int(data.get("count"), "batch.count"),
            manifest_hash=_b32(data.get("manifest_hash"), "batch.manifest_hash"),
            proof=tuple(_b32(p, "batch.proof[]") for p in proof),
        )


@dataclass(frozen=True)
class Certificate:
    design_id: bytes
    designer: str
    metadata_hash: bytes
    parent_id: bytes | None
    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    commitment: Commitment | None = None
    batch: BatchProof | None = None
    metadata: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "batch" if self.batch else "single"

    @property
    def parent(self) -> bytes:
        return self.parent_id or ZERO32

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "design_id": hex32(self.design_id),
            "designer": self.designer,
            "metadata_hash": hex32(self.metadata_hash),
            # zero, not null, for no parent: the leaf and commitment value as encoded, so
            # `StandardMerkleTree.verify(root, leaf_encoding, [design_id, metadata_hash,
            # parent_id, designer], proof)` takes the certificate's fields as they are
            "parent_id": hex32(self.parent),
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_time": self.block_time,
            "commitment": self.commitment.to_json() if self.commitment else None,
            "batch": self.batch.to_json() if self.batch else None,
            "metadata": self.metadata,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, data: Any) -> Certificate:
        if not isinstance(data, dict):
            raise CertificateInvalid("corrupt bundle: not a JSON object")
        if data.get("format") != FORMAT:
            raise CertificateInvalid(
                f"corrupt bundle: format must be {FORMAT!r}, got {data.get('format')!r}"
            )
        parent = data.get("parent_id")
        commitment = data.get("commitment")
        batch = data.get("batch")
        metadata = data.get("metadata")
        if (commitment is None) == (batch is None):
            raise CertificateInvalid("corrupt bundle: give exactly one of commitment and batch")
        return cls(
            design_id=_b32(data.get("design_id"), "design_id"),
            designer=_address(data.get("designer"), "designer"),
            metadata_hash=_b32(data.get("metadata_hash"), "metadata_hash"),
            parent_id=_parent(parent),
            chain_id=_int(data.get("chain_id"), "chain_id"),
            contract=_address(data.get("contract"), "contract"),
            tx_hash=hex32(_b32(data.get("tx_hash"), "tx_hash")),
            block_number=_int(data.get("block_number"), "block_number"),
            block_hash=hex32(_b32(data.get("block_hash"), "block_hash")),
            block_time=_int(data.get("block_time"), "block_time"),
            commitment=None if commitment is None else Commitment.from_json(commitment),
            batch=None if batch is None else BatchProof.from_json(batch),
            metadata=metadata if isinstance(metadata, dict) else None,
        )

    @classmethod
    def loads(cls, text: str | bytes) -> Certificate:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise CertificateInvalid("corrupt bundle: not valid JSON (truncated?)") from None
        return cls.from_json(data)


class Verdict(Record):
    """What the chain says about a design: who, when, which block, and who holds priority."""

    registered: bool = True
    design_id: Hex
    designer: str
    block_number: int
    block_time: int
    chain_id: int
    contract: str
    kind: str
    tx_hash: str | None = None
    status: str | None = None  # active | revoked | superseded on chain; None: not revealed yet
    priority: str = Field(default="held", description="held | unrevealed | preceded")
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class OnChain:
    designer: str
    registered_at: int
    block_number: int
    flags: int
    revoked_at: int

    @property
    def status(self) -> str:
        if self.flags & FLAG_REVOKED:
            return "revoked"
        return "superseded" if self.flags & FLAG_SUPERSEDED else "active"


def _eth_call(w3: Web3, contract: str, data: bytes) -> bytes:
    try:
        return bytes(
            w3.eth.call({"to": to_checksum_address(contract), "data": HexStr(hex32(data))})
        )
    except Exception as exc:  # noqa: BLE001 - any failure means the contract is not a registry
        raise CertificateInvalid(
            f"{contract} does not answer as a cofab DesignRegistry: {exc.__class__.__name__}"
        ) from None


def on_chain_record(w3: Web3, contract: str, did: bytes) -> OnChain | None:
    """The registry's current record of `did`, read with a raw eth_call."""
    raw = _eth_call(w3, contract, SELECTOR_DESIGN + did)
    if len(raw) < 128:
        raise CertificateInvalid(f"{contract} does not answer as a cofab DesignRegistry")
    designer, registered_at, block, flags = decode(["address", "uint40", "uint40", "uint8"], raw)
    if int(designer, 16) == 0:
        return None
    (revoked_at,) = decode(["uint256"], _eth_call(w3, contract, SELECTOR_REVOKED_AT + did))
    return OnChain(to_checksum_address(designer), registered_at, block, flags, revoked_at)


def lookup(w3: Web3, contract: str, did: bytes) -> Verdict:
    """Who registered `did` according to the registry's storage alone (no bundle)."""
    if not is_address(contract):
        raise CertificateInvalid(f"{contract!r} is not a contract address")
    contract = to_checksum_address(contract)
    if not bytes(w3.eth.get_code(contract)):
        raise CertificateInvalid(f"there is no contract at {contract} on this chain")
    record = on_chain_record(w3, contract, did)
    if record is None:
        raise NotRegistered(
            f"not registered: no design {hex32(did)} is recorded by {contract} (a design whose "
            "commitment is not revealed yet is found only with its certificate: --proof)"
        )
    revoked = [f"revoked by its designer at block {record.revoked_at}"]
    return Verdict(
        design_id=did,
        designer=record.designer,
        block_number=record.block_number,
        block_time=record.registered_at,
        chain_id=int(w3.eth.chain_id),
        contract=contract,
        kind="batch" if record.flags & 4 else "single",
        status=record.status,
        notes=revoked if record.revoked_at else [],
    )


def _log_of(receipt: Any, contract: str, topic0: bytes, topic1: bytes) -> Any:
    for log in receipt["logs"]:
        topics = [bytes(t) for t in log["topics"]]
        if (
            log["address"].lower() == contract.lower()
            and len(topics) >= 2
            and topics[0] == topic0
            and topics[1] == topic1
        ):
            return log
    return None


def _topic_address(topic: bytes) -> str:
    return to_checksum_address(topic[-20:])


def _wrong_registrant(topic: bytes) -> str:
    return f"the registrant on chain is {_topic_address(topic)}, not the bundle's designer"


def verify_certificate(w3: Web3, file_digest: bytes, cert: Certificate) -> Verdict:
    """Check `cert` for the file hashing to `file_digest` against the chain behind `w3`.

    Raises CertificateInvalid (file/bundle mismatch, wrong chain, or any claim of the
    bundle the chain contradicts); returns the Verdict otherwise.
    """
    if file_digest != cert.design_id:
        raise CertificateInvalid(
            f"the file does not match the bundle: the file's SHA-256 is {file_digest.hex()}, "
            f"the bundle certifies {cert.design_id.hex()}"
        )
    chain_id = int(w3.eth.chain_id)
    if chain_id != cert.chain_id:
        raise CertificateInvalid(
            f"wrong chain: the bundle is for chain {cert.chain_id}, "
            f"the endpoint is chain {chain_id}"
        )
    try:
        receipt = w3.eth.get_transaction_receipt(HexStr(cert.tx_hash))
    except TransactionNotFound:
        receipt = None
    if receipt is None:
        raise CertificateInvalid(f"transaction {cert.tx_hash} is not on this chain")
    if receipt["status"] != 1:
        raise CertificateInvalid(f"transaction {cert.tx_hash} reverted: it registered nothing")
    if int(receipt["blockNumber"]) != cert.block_number:
        raise CertificateInvalid(
            f"transaction {cert.tx_hash} is in block {receipt['blockNumber']}, "
            f"not {cert.block_number} as the bundle says"
        )
    block = w3.eth.get_block(cert.block_number)
    if block["hash"].to_0x_hex() != cert.block_hash.lower():
        raise CertificateInvalid(f"block {cert.block_number} has another hash on this chain")
    if int(block["timestamp"]) != cert.block_time:
        raise CertificateInvalid(
            f"block {cert.block_number} is dated {block['timestamp']}, not {cert.block_time}"
        )
    if cert.commitment is not None:
        commitment = cert.commitment
        expected = commitment_of(
            cert.design_id, cert.metadata_hash, cert.parent, cert.designer, commitment.salt
        )
        if expected != commitment.value:
            raise CertificateInvalid(
                "the commitment does not open to the bundle's design, metadata hash, parent, "
                "designer and salt"
            )
        log = _log_of(receipt, cert.contract, TOPIC_COMMITTED, commitment.value)
        if log is None:
            raise CertificateInvalid(
                f"transaction {cert.tx_hash} did not commit {commitment.value.hex()} "
                f"in contract {cert.contract}"
            )
        topics = [bytes(t) for t in log["topics"]]
        if _topic_address(topics[2]) != cert.designer:
            raise CertificateInvalid(_wrong_registrant(topics[2]))
    else:
        batch = cert.batch
        assert batch is not None
        log = _log_of(receipt, cert.contract, TOPIC_BATCH, batch.root)
        if log is None:
            raise CertificateInvalid(
                f"transaction {cert.tx_hash} did not register batch {batch.root.hex()} "
                f"in contract {cert.contract}"
            )
        topics = [bytes(t) for t in log["topics"]]
        if _topic_address(topics[2]) != cert.designer:
            raise CertificateInvalid(_wrong_registrant(topics[2]))
        count, manifest = decode(["uint256", "bytes32"], bytes(log["data"]))
        if count != batch.count or manifest != batch.manifest_hash:
            raise CertificateInvalid("the batch size or manifest hash differs from the bundle's")
        value = leaf_value(cert.design_id, cert.metadata_hash, cert.parent, cert.designer)
        if not merkle.verify(batch.root, LEAF_ENCODING, value, list(batch.proof)):
            raise CertificateInvalid(
                f"the Merkle proof does not place design {cert.design_id.hex()} of "
                f"{cert.designer} under batch root {batch.root.hex()}"
            )
    priority, status, notes = _priority(w3, cert)
    return Verdict(
        design_id=cert.design_id,
        designer=cert.designer,
        block_number=cert.block_number,
        block_time=cert.block_time,
        chain_id=chain_id,
        contract=cert.contract,
        kind=cert.kind,
        tx_hash=cert.tx_hash,
        status=status,
        priority=priority,
        notes=notes,
    )


def _priority(w3: Web3, cert: Certificate) -> tuple[str, str | None, list[str]]:
    """Compare the bundle's registration with the registry's current record of the content:
    the priority, the status on chain (None unless this registration is the recorded one)
    and notes that explain them."""
    record = on_chain_record(w3, cert.contract, cert.design_id)
    if record is None:
        return (
            "unrevealed",
            None,
            [
                "committed, not revealed on chain yet: this certificate is the evidence; "
                "`cofab design reveal` records it"
            ],
        )
    same = record.designer == cert.designer and record.block_number == cert.block_number
    if same:
        revoked = [f"revoked by its designer at block {record.revoked_at}"]
        return "held", record.status, revoked if record.revoked_at else []
    if record.block_number < cert.block_number or (
        record.block_number == cert.block_number and record.designer != cert.designer
    ):
        return (
            "preceded",
            None,
            [
                f"priority is held by an earlier registration: {record.designer} at block "
                f"{record.block_number}"
            ],
        )
    return (
        "unrevealed",
        None,
        [
            f"the chain records a later registration ({record.designer}, block "
            f"{record.block_number}); this earlier one takes priority once revealed"
        ],
    )
