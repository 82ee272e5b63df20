"""The ProductionStep record: its EIP-712 types, domain and hashes.

The same bytes are signed by cofab, by ethers.js `signTypedData` and by a wallet's
`eth_signTypedData_v4` with `typed_data()` below; `digest` is what is signed, and it is
also the step's identity (its hash) in the hash chain and the anchor Merkle tree.
`bizStep` carries any EPCIS 2.0 bizStep as the payload writes it: a GS1 CBV word
(`BIZ_STEPS`) or a URI of one's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from eth_utils import is_address, to_checksum_address

from ledger.core.errors import InvalidInput
from ledger.core.hashing import keccak
from ledger.core.settings import EIP712_DOMAIN_NAME, EIP712_DOMAIN_VERSION
from ledger.eth import eip712
from ledger.eth.eip712 import DOMAIN_TYPE
from ledger.steps.epcis import BIZ_STEPS as BIZ_STEPS  # re-exported: the CBV words
from ledger.steps.epcis import check_biz_step

_checksum = lru_cache(maxsize=4096)(to_checksum_address)
"""EIP-55 form of an address: a step's member is one of few factories, so cached."""

ZERO = b"\x00" * 32
UINT64_MAX = 2**64 - 1

STEP_TYPE = [
    {"name": "jobId", "type": "uint256"},
    {"name": "splitId", "type": "uint256"},
    {"name": "seq", "type": "uint64"},
    {"name": "prevHash", "type": "bytes32"},
    {"name": "bizStep", "type": "string"},
    {"name": "payloadHash", "type": "bytes32"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "time", "type": "uint64"},
    {"name": "member", "type": "address"},
]
PRIMARY_TYPE = "ProductionStep"
TYPE_STRING = (
    "ProductionStep(uint256 jobId,uint256 splitId,uint64 seq,bytes32 prevHash,string bizStep,"
    "bytes32 payloadHash,bytes32 evidenceHash,uint64 time,address member)"
)


TYPE_HASH = keccak(TYPE_STRING.encode())
_FIELD = {
    "job_id": "jobId",
    "split_id": "splitId",
    "seq": "seq",
    "time": "time",
    "prev_hash": "prevHash",
    "payload_hash": "payloadHash",
    "evidence_hash": "evidenceHash",
}
"""The signed message's name of each Step attribute, as errors name it."""
_DOMAIN_TYPE_HASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@lru_cache(maxsize=4096)
def _is_address(text: str) -> bool:
    """Cached: a split's thousands of steps name the same member."""
    return bool(is_address(text))


@lru_cache(maxsize=4096)
def _address_bytes(text: str) -> bytes:
    """The 20 bytes of a `0x` address (cached: a split's steps name the same member)."""
    return bytes.fromhex(text[2:])


@lru_cache(maxsize=256)
def _string_hash(text: str) -> bytes:
    return keccak(text.encode())


@dataclass(frozen=True)
class Domain:
    chain_id: int
    verifying_contract: str
    name: str = EIP712_DOMAIN_NAME
    version: str = EIP712_DOMAIN_VERSION

    @property
    def separator(self) -> bytes:
        return _separator(self.name, self.version, self.chain_id, self.verifying_contract)

    @cached_property
    def prefix(self) -> bytes:
        """What a step's struct hash is appended to before hashing it into its digest."""
        return b"\x19\x01" + self.separator

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@lru_cache(maxsize=64)
def _separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    return keccak(
        _DOMAIN_TYPE_HASH
        + _string_hash(name)
        + _string_hash(version)
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(contract[2:])
    )


@dataclass(frozen=True)
class Step:
    """One production step of a split, as signed."""

    job_id: int
    split_id: int
    seq: int
    prev_hash: bytes
    biz_step: str
    payload_hash: bytes
    evidence_hash: bytes
    time: int
    member: str

    def __post_init__(self) -> None:
        for name in ("job_id", "split_id"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v < 2**256:
                raise InvalidInput(f"{name} must be a non-negative integer", field=_FIELD[name])
        for name in ("seq", "time"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= UINT64_MAX:
                raise InvalidInput(
                    f"{name} must be an integer from 0 to 2**64-1", field=_FIELD[name]
                )
        for name in ("prev_hash", "payload_hash", "evidence_hash"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != 32:
                raise InvalidInput(f"{name} must be 32 bytes", field=_FIELD[name])
        if not isinstance(self.member, str) or not _is_address(self.member):
            raise InvalidInput(f"member {self.member!r} is not an address", field="member")
        if not isinstance(self.biz_step, str):
            raise InvalidInput("bizStep must be a string", field="bizStep")
        check_biz_step(self.biz_step)

    def struct_hash(self) -> bytes:
        return _struct_hash(
            self.job_id,
            self.split_id,
            self.seq,
            self.prev_hash,
            self.biz_step,
            self.payload_hash,
            self.evidence_hash,
            self.time,
            _address_bytes(self.member),
        )

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 signing hash; also the step's hash in its chain and in anchors."""
        return keccak(domain.prefix + self.struct_hash())

    def message(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "splitId": self.split_id,
            "seq": self.seq,
            "prevHash": "0x" + self.prev_hash.hex(),
            "bizStep": self.biz_step,
            "payloadHash": "0x" + self.payload_hash.hex(),
            "evidenceHash": "0x" + self.evidence_hash.hex(),
            "time": self.time,
            "member": _checksum(self.member),
        }

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> Step:
        fields = _everyday(m)
        if fields is not None:  # every field already checked as __post_init__ checks it
            step = object.__new__(cls)
            step.__dict__.update(zip(_NAMES, fields[:9], strict=True))
            return step
        return cls._read(m)

    @classmethod
    def _read(cls, m: dict[str, Any]) -> Step:
        """Any record, read field by field, each checked twice (here and in __post_init__),
        with the refusal naming what is wrong."""
        try:
            return cls(
                job_id=_integer(m["jobId"], "jobId"),
                split_id=_integer(m["splitId"], "splitId"),
                seq=_integer(m["seq"], "seq"),
                prev_hash=_b32(m["prevHash"], "prevHash"),
                biz_step=m["bizStep"],
                payload_hash=_b32(m["payloadHash"], "payloadHash"),
                evidence_hash=_b32(m.get("evidenceHash") or "0x" + "00" * 32, "evidenceHash"),
                time=_integer(m["time"], "time"),
                member=str(m["member"]),
            )
        except KeyError as exc:
            field = str(exc.args[0])
            raise InvalidInput(f"step field {field!r} is missing", field=field) from None
        except (TypeError, ValueError):
            raise InvalidInput("step fields must be numbers and 0x-hex strings") from None


def _struct_hash(  # the layout checker._block_run writes inline, for speed
    job_id: int,
    split_id: int,
    seq: int,
    prev_hash: bytes,
    biz_step: str,
    payload_hash: bytes,
    evidence_hash: bytes,
    time: int,
    member: bytes,
) -> bytes:
    return keccak(
        b"".join(
            (
                TYPE_HASH,
                job_id.to_bytes(32, "big"),
                split_id.to_bytes(32, "big"),
                seq.to_bytes(32, "big"),
                prev_hash,
                _string_hash(biz_step),
                payload_hash,
                evidence_hash,
                time.to_bytes(32, "big"),
                PAD12,
                member,
            )
        )
    )


Fields = tuple[int, int, int, bytes, bytes, int, str, bytes]
"""(job id, split id, seq, prev hash, payload hash, time, member, digest) of a record."""


def _plain_uint(value: Any, limit: int) -> int | None:
    """`value` when it is a JSON integer or a plain decimal string below `limit`, else None."""
    if type(value) is int:
        return value if 0 <= value < limit else None
    if type(value) is str and value.isdigit() and value.isascii():
        if (value[0] == "0" and len(value) > 1) or len(value) > 78:  # 2**256 has 78 digits
            return None
        number = int(value)
        return number if number < limit else None
    return None


def _plain_b32(value: Any) -> bytes | None:
    """The bytes of a `0x` + 64 hex digits string, else None."""
    if type(value) is not str or len(value) != 66 or value[:2] != "0x":
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


_U256, _U64 = 2**256, UINT64_MAX + 1
PAD12 = bytes(12)  # an address's left padding to 32 bytes
_NAMES = (
    "job_id",
    "split_id",
    "seq",
    "prev_hash",
    "biz_step",
    "payload_hash",
    "evidence_hash",
    "time",
    "member",
)


_KNOWN: dict[tuple[str, str], bytes] = {}
"""(member, bizStep) pairs read before -> the member's 20 bytes: a split's steps repeat
the same few, and both checks are pure."""
_ZERO_TEXT = "0x" + "00" * 32


def _member_and_biz(member: Any, biz: Any) -> bytes | None:
    """The member's 20 bytes when it is a `0x` address and `biz` a valid bizStep."""
    if type(member) is not str or type(biz) is not str:
        return None
    raw = _KNOWN.get((member, biz))
    if raw is not None:
        return raw
    if len(member) != 42 or member[:2] != "0x" or not _is_address(member):
        return None
    try:
        check_biz_step(biz)
    except InvalidInput:
        return None
    raw = bytes.fromhex(member[2:])
    if len(_KNOWN) < 4096:
        _KNOWN[(member, biz)] = raw
    return raw


def _uint(value: Any, limit: int) -> int | None:
    """`_plain_uint`, with JSON integers answered inline (the usual case)."""
    if type(value) is int:
        return value if 0 <= value < limit else None
    return _plain_uint(value, limit)


def _everyday(
    m: Any,
) -> tuple[int, int, int, bytes, str, bytes, bytes, int, str, bytes] | None:
    """A record's Step fields (in field order) and its member's 20 bytes, when it is in its
    everyday form: integers as JSON integers or decimal strings, hashes as `0x` + 64 hex
    digits, a `0x` address, a valid bizStep. None for any other form, which
    `Step.from_message` reads (or refuses) the long way; where both read a record they
    read the same fields (tests/test_step_fast_path.py compares them)."""
    if type(m) is not dict:
        return None
    get = m.get
    job, split = _uint(get("jobId"), _U256), _uint(get("splitId"), _U256)
    seq, when = _uint(get("seq"), _U64), _uint(get("time"), _U64)
    prev, payload = _plain_b32(get("prevHash")), _plain_b32(get("payloadHash"))
    evidence_text = get("evidenceHash")
    if evidence_text is None or evidence_text == _ZERO_TEXT:
        evidence: bytes | None = ZERO
    else:
        evidence = _plain_b32(evidence_text)
    member, biz = get("member"), get("bizStep")
    member_raw = _member_and_biz(member, biz)
    if (
        job is None
        or split is None
        or seq is None
        or when is None
        or prev is None
        or payload is None
        or evidence is None
        or member_raw is None
    ):
        return None
    return job, split, seq, prev, str(biz), payload, evidence, when, str(member), member_raw


def read_record(m: Any, domain: Domain) -> Fields | None:
    """The fields and digest of a signed record in its everyday form, without building a
    Step: the verifier's hot path. None for any other form (see `_everyday`)."""
    fields = _everyday(m)
    if fields is None:
        return None
    job, split, seq, prev, biz, payload, evidence, when, member, member_raw = fields
    struct = _struct_hash(job, split, seq, prev, biz, payload, evidence, when, member_raw)
    digest = keccak(domain.prefix + struct)
    return job, split, seq, prev, payload, when, member, digest


def _integer(value: Any, name: str) -> int:
    """A JSON integer or its decimal string, as signed: 2.9, 10.0, "0x0" or true would be
    read as another number than the one the signer saw, so they are refused."""
    return eip712.uint(value, name)


def _b32(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = bytes.fromhex(str(value).removeprefix("0x"))
        except ValueError:
            raise InvalidInput(f"{name} is not hex", field=name) from None
    if len(raw) != 32:
        raise InvalidInput(f"{name} must be 32 bytes", field=name)
    return raw


def typed_data(step: Step, domain: Domain) -> dict[str, Any]:
    """The eth_signTypedData_v4 document for a step (what ethers.js and wallets sign)."""
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, PRIMARY_TYPE: STEP_TYPE},
        "primaryType": PRIMARY_TYPE,
        "domain": domain.as_dict(),
        "message": step.message(),
    }


def ethers_document(domain: Domain) -> dict[str, Any]:
    """The domain and types as ethers v6 `signTypedData(domain, types, message)` takes them."""
    return {
        "domain": domain.as_dict(),
        "types": {PRIMARY_TYPE: STEP_TYPE},
        "primaryType": PRIMARY_TYPE,
    }


def types_document() -> dict[str, Any]:
    """The types alone in the eth_signTypedData_v4 shape (with EIP712Domain)."""
    return {
        "primaryType": PRIMARY_TYPE,
        "types": {"EIP712Domain": DOMAIN_TYPE, PRIMARY_TYPE: STEP_TYPE},
        "typeString": TYPE_STRING,
        "typeHash": "0x" + TYPE_HASH.hex(),
    }
