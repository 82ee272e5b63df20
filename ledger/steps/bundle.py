"""Proof bundles of production steps: a typed, versioned, self-describing file, and its
export from this node's journal.

A bundle holds, per split, the signed step records with their canonical EPCIS payloads,
each step's Merkle proof, and the anchors the exporting node saw. Like an OpenTimestamps
detached timestamp, it states how its proofs are built (the Merkle tree format and the
leaf encoding), so a reader needs the file and a chain endpoint, nothing else; checking it
is `ledger.verify`'s business, against the chain alone.

Versions: 2 (current) states `version` and `merkle`; 1 (`"format": "cofab-steps/1"`, or
no version at all) is read as version 1, whose proofs are built the same way. The same
content also has a compact encoding (`ledger.steps.compact`), told apart by its first bytes.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

from web3 import Web3
from web3.contract import Contract

from ledger.core.abi import MAX_SPLITS
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.json_limits import loads as bounded_json
from ledger.core.merkle import FORMAT as TREE_FORMAT
from ledger.eth import eip712
from ledger.eth.chain import block_timestamp
from ledger.steps import compact
from ledger.steps.anchoring import LEAF_ENCODING, anchor_tree
from ledger.steps.journal import Journal
from ledger.steps.record import PRIMARY_TYPE, STEP_TYPE, Domain, ethers_document, types_document

FORMAT = "cofab-steps"
VERSION = 2
LEGACY_FORMAT = "cofab-steps/1"
MERKLE = {
    "tree": TREE_FORMAT,
    "leaf_encoding": list(LEAF_ENCODING),  # (uint64 seq, bytes32 step_hash)
    "leaf": "keccak256(keccak256(abi.encode(seq, step_hash)))",
    "pairs": "keccak256 of the two nodes sorted",
}


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"the bundle's {name} must be an integer, not {value!r}", field=name)
    return int(value)


def _uint256(value: Any, name: str) -> int:
    number = _int(value, name)
    if not 0 <= number < 2**256:
        raise InvalidInput(f"the bundle's {name} must be from 0 to 2**256 - 1", field=name)
    return number


def _address(value: Any, name: str) -> str:
    text = _str(value, name)
    if not Web3.is_address(text):
        raise InvalidInput(
            f"the bundle's {name} must be a contract address, not {text!r}", field=name
        )
    return text


def _opt_int(value: Any, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"the bundle's {name} must be a string, not {value!r}", field=name)
    return value


@dataclass(slots=True)
class AnchorClaim:
    """An anchor as the exporting node saw it: only a cross-check, the chain's events rule."""

    index: int
    from_seq: int
    to_seq: int
    root: str
    head: str
    tx_hash: str | None = None
    previous_head: str | None = None
    anchored_by: str | None = None
    block_number: int | None = None
    timestamp: int | None = None

    @classmethod
    def load(cls, d: Any) -> AnchorClaim:
        if not isinstance(d, dict):
            raise InvalidInput("an anchor of the bundle is not an object", field="anchors")
        try:
            return cls(
                index=_int(d["index"], "anchor index"),
                from_seq=_int(d["from_seq"], "anchor from_seq"),
                to_seq=_int(d["to_seq"], "anchor to_seq"),
                root=_str(d["root"], "anchor root"),
                head=_str(d["head"], "anchor head"),
                tx_hash=d.get("tx_hash"),
                previous_head=d.get("previous_head"),
                anchored_by=d.get("anchored_by"),
                block_number=_opt_int(d.get("block_number"), "anchor block_number"),
                timestamp=_opt_int(d.get("timestamp"), "anchor timestamp"),
            )
        except KeyError as exc:
            raise InvalidInput(f"an anchor of the bundle lacks {exc.args[0]!r}") from None

    def export(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "root": self.root,
            "previous_head": self.previous_head,
            "head": self.head,
            "anchored_by": self.anchored_by,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "timestamp": self.timestamp,
        }


@dataclass(slots=True)
class BundleStep:
    """One signed step as carried: the record is checked by the verifier, not here, so an
    unreadable record is a finding about that step rather than a refusal of the file."""

    record: Any
    signature: Any
    payload: Any = None  # the canonical JSON text; its SHA-256 is the signed payloadHash
    step_hash: str | None = None
    signer: str | None = None
    anchor_index: int | None = None
    proof: list[str] | None = None

    @classmethod
    def load(cls, d: Any) -> BundleStep:
        if not isinstance(d, dict):
            return cls(record=d, signature=None)
        return cls(
            record=d.get("record"),
            signature=d.get("signature"),
            payload=d.get("payload"),
            step_hash=d.get("step_hash"),
            signer=d.get("signer"),
            anchor_index=d.get("anchor_index"),
            proof=d.get("proof"),
        )

    def export(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "step_hash": self.step_hash,
            "signature": self.signature,
            "signer": self.signer,
            "payload": self.payload,
            "anchor_index": self.anchor_index,
            "proof": self.proof,
        }


class StepList(Sequence[BundleStep]):
    """A split's steps as read from JSON, each made a BundleStep only when first read: a
    checker hands the objects as read (`raws`) to its workers instead."""

    def __init__(self, raw: list[Any]) -> None:
        self.raw = raw
        self._loaded: list[BundleStep] | None = None

    def _all(self) -> list[BundleStep]:
        if self._loaded is None:
            self._loaded = [BundleStep.load(s) for s in self.raw]
        return self._loaded

    def raws(self) -> list[tuple[Any, Any, Any, Any]]:
        """(record, signature, payload, step hash) of each step, as BundleStep reads them."""
        return [
            (d.get("record"), d.get("signature"), d.get("payload"), d.get("step_hash"))
            if isinstance(d, dict)
            else (d, None, None, None)
            for d in self.raw
        ]

    def __len__(self) -> int:
        return len(self.raw)

    @overload
    def __getitem__(self, i: int) -> BundleStep: ...
    @overload
    def __getitem__(self, i: slice) -> list[BundleStep]: ...
    def __getitem__(self, i: int | slice) -> BundleStep | list[BundleStep]:
        return self._all()[i]

    def __iter__(self) -> Iterator[BundleStep]:
        return iter(self._all())


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off Python's cycle collector: reading a large bundle makes millions of
    objects, none in a cycle, and each full collection would walk them all again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(slots=True)
class SplitEvidence:
    split_id: int
    steps: Sequence[BundleStep] = field(default_factory=list)  # compact.Blocks when lazy
    anchors: list[AnchorClaim] = field(default_factory=list)

    @classmethod
    def load(cls, d: Any) -> SplitEvidence:
        if not isinstance(d, dict) or "split_id" not in d:
            raise InvalidInput("a split of the bundle lacks 'split_id'", field="splits")
        steps, anchors = d.get("steps") or [], d.get("anchors") or []
        if not isinstance(steps, list) or not isinstance(anchors, list):
            raise InvalidInput("a split's steps and anchors must be lists", field="splits")
        return cls(
            split_id=_int(d["split_id"], "split_id"),
            steps=StepList(steps),
            anchors=[AnchorClaim.load(a) for a in anchors],
        )

    def export(self) -> dict[str, Any]:
        return {
            "split_id": self.split_id,
            "anchors": [a.export() for a in self.anchors],
            "steps": [s.export() for s in self.steps],
        }


@dataclass
class Bundle:
    chain_id: int
    traceability: str
    job_id: int
    splits: list[SplitEvidence]
    version: int = VERSION
    domain: dict[str, Any] | None = None
    types: dict[str, Any] | None = None
    sha256: str | None = field(default=None, compare=False, repr=False)  # of the file read

    @classmethod
    def load(cls, source: str | bytes | dict[str, Any] | Bundle) -> Bundle:
        """Read a bundle (JSON text or parsed); refuse what is not one, naming the problem."""
        if isinstance(source, Bundle):
            return source
        if isinstance(source, (str, bytes)):
            raw = source.encode() if isinstance(source, str) else source
            if compact.is_compact(raw):
                return cls._load_compact(raw)
            with gc_paused():
                try:
                    parsed = bounded_json(raw, "the bundle")
                except ValueError as exc:
                    raise InvalidInput(
                        f"the bundle is not JSON (truncated or corrupt?): {exc}"
                    ) from None
                loaded = cls.load(parsed)
            loaded.sha256 = hashlib.sha256(raw).hexdigest()
            return loaded
        if not isinstance(source, dict):
            raise InvalidInput("a step bundle is a JSON object", field="format")
        version = _version(source)
        for key in ("chain_id", "traceability", "job_id", "splits"):
            if key not in source:
                raise InvalidInput(f"the bundle lacks {key!r}", field=key)
        if not isinstance(source["splits"], list):
            raise InvalidInput("the bundle's splits must be a list", field="splits")
        distinct = {
            repr(s.get("split_id")) if isinstance(s, dict) else "" for s in source["splits"]
        }
        if len(distinct) > MAX_SPLITS:  # each split listed costs the checker a chain call
            raise InvalidInput(
                f"a bundle holds the steps of one order, whose splits are at most "
                f"{MAX_SPLITS}; this one lists {len(distinct)}",
                field="splits",
            )
        return cls(
            chain_id=_int(source["chain_id"], "chain_id"),
            traceability=_address(source["traceability"], "traceability"),
            job_id=_uint256(source["job_id"], "job_id"),
            splits=[SplitEvidence.load(s) for s in source["splits"]],
            version=version,
            domain=source.get("domain"),
            types=source.get("types"),
        )

    @classmethod
    def _load_compact(cls, raw: bytes) -> Bundle:
        header, blocks = compact.read(raw)
        loaded = cls.load(header)
        for split in loaded.splits:
            found = blocks.get(split.split_id)
            if found is not None:
                split.steps = found
        loaded.sha256 = hashlib.sha256(raw).hexdigest()
        return loaded

    def compact(self) -> bytes:
        """The compact encoding (docs/steps.md, "Compact bundle format")."""
        return compact.encode(self.export())

    def digest(self) -> str:
        """SHA-256 of the file this bundle was read from; of its current-version JSON with
        sorted keys when it was not read from one."""
        if self.sha256 is None:
            text = json.dumps(self.export(), sort_keys=True, separators=(",", ":"))
            self.sha256 = hashlib.sha256(text.encode()).hexdigest()
        return self.sha256

    def export(self) -> dict[str, Any]:
        """The current version's JSON object (whatever version was read)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "merkle": MERKLE,
            "chain_id": self.chain_id,
            "traceability": self.traceability,
            "domain": self.domain,
            "types": self.types,
            "job_id": self.job_id,
            "splits": [s.export() for s in self.splits],
        }

    def steps(self) -> int:
        return sum(len(s.steps) for s in self.splits)


def _version(d: dict[str, Any]) -> int:
    fmt = d.get("format")
    if fmt == LEGACY_FORMAT:
        return 1
    if fmt != FORMAT:
        raise InvalidInput(
            f"not a cofab step bundle (format {fmt!r}, expected {FORMAT!r})", field="format"
        )
    version = d.get("version", 1)
    if isinstance(version, bool) or version not in (1, VERSION):
        raise InvalidInput(
            f"bundle version {version!r} is not one this cofab reads (1 to {VERSION})",
            field="version",
        )
    merkle = d.get("merkle")
    if version >= 2:
        if not isinstance(merkle, dict):
            raise InvalidInput("a version 2 bundle states its Merkle format", field="merkle")
        encoding = merkle.get("leaf_encoding")
        if (
            merkle.get("tree") != TREE_FORMAT
            or not isinstance(encoding, (list, tuple))
            or tuple(encoding) != tuple(LEAF_ENCODING)
        ):
            raise InvalidInput(
                f"the bundle's proofs use tree {merkle.get('tree')!r} with leaves "
                f"{merkle.get('leaf_encoding')!r}; this cofab checks {TREE_FORMAT!r} with "
                f"{list(LEAF_ENCODING)}",
                field="merkle",
            )
    return int(version)


# --- anchors as the chain records them ----------------------------------------------


@dataclass(frozen=True)
class Anchor:
    split_id: int
    index: int
    from_seq: int
    to_seq: int
    root: bytes
    previous_head: bytes
    head: bytes
    anchored_by: str
    tx_hash: str
    block: int
    timestamp: int

    @classmethod
    def of_event(cls, args: Any, tx_hash: str, block: int, timestamp: int) -> Anchor:
        return cls(
            int(args["splitId"]),
            int(args["index"]),
            int(args["fromSeq"]),
            int(args["toSeq"]),
            bytes(args["root"]),
            bytes(args["previousHead"]),
            bytes(args["head"]),
            str(args["anchoredBy"]),
            tx_hash,
            block,
            timestamp,
        )

    def as_dict(self) -> dict[str, Any]:
        """The bundle's form of an anchor."""
        return {
            "split_id": self.split_id,
            "index": self.index,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "root": "0x" + self.root.hex(),
            "previous_head": "0x" + self.previous_head.hex(),
            "head": "0x" + self.head.hex(),
            "anchored_by": self.anchored_by,
            "tx_hash": self.tx_hash,
            "block_number": self.block,
            "timestamp": self.timestamp,
        }


class BlockTimes:
    """Block timestamps, each asked of the chain once."""

    def __init__(self, w3: Web3, known: dict[int, int] | None = None) -> None:
        self.w3 = w3
        self._time: dict[int, int] = dict(known or {})

    def __call__(self, number: int) -> int:
        if number not in self._time:
            self._time[number] = block_timestamp(self.w3, number)
        return self._time[number]


def anchors_of(
    trace: Contract, job_id: int, block_time: Callable[[int], int], split_id: int | None = None
) -> dict[int, list[Anchor]]:
    """A job's (or one split's) anchors by split, in index order, from the chain's events."""
    filters: dict[str, Any] = {"jobId": job_id}
    if split_id is not None:
        filters["splitId"] = split_id
    out: dict[int, list[Anchor]] = defaultdict(list)
    for log in trace.events.StepsAnchored().get_logs(from_block=0, argument_filters=filters):
        block = int(log["blockNumber"])
        a = Anchor.of_event(
            log["args"], log["transactionHash"].to_0x_hex(), block, block_time(block)
        )
        out[a.split_id].append(a)
    return {s: sorted(v, key=lambda a: a.index) for s, v in out.items()}


# --- export ----------------------------------------------------------------------------


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


STEP_TYPES = {PRIMARY_TYPE: STEP_TYPE}


def build(
    journal: Journal, contract: Contract, chain_id: int, job_id: int, split_id: int | None = None
) -> Bundle:
    """The bundle of a job's (or one split's) steps held in this node's journal."""
    stored = journal.steps(job_id, split_id)
    if not stored:
        raise NotFound(f"no steps of job {job_id}" + (f" split {split_id}" if split_id else ""))
    anchors = anchors_of(contract, job_id, BlockTimes(contract.w3), split_id)
    by_split: dict[int, list[Any]] = {}
    for s in stored:
        by_split.setdefault(s.step.split_id, []).append(s)
    splits = []
    for sid in sorted(by_split):
        mine = by_split[sid]
        by_seq = {s.step.seq: s for s in mine}
        proofs: dict[int, tuple[int, list[bytes]]] = {}
        claims = []
        for a in anchors.get(sid, []):
            claims.append(AnchorClaim.load(a.as_dict()))
            rng = [by_seq.get(q) for q in range(a.from_seq, a.to_seq + 1)]
            if any(r is None for r in rng):
                continue  # this node lacks part of the range: those steps export unproven
            tree = anchor_tree([(r.step.seq, r.step_hash) for r in rng if r])
            for i, r in enumerate(rng):
                if r:
                    proofs[r.step.seq] = (a.index, tree.proof(i))
        steps = []
        for s in mine:
            payload = journal.payload(s.step.payload_hash)
            proof = proofs.get(s.step.seq)
            steps.append(
                BundleStep(
                    record=eip712.decimal_strings(STEP_TYPES, PRIMARY_TYPE, s.step.message()),
                    step_hash=_hex(s.step_hash),
                    signature=_hex(s.signature),
                    signer=s.signer,
                    payload=payload.decode() if payload else None,
                    anchor_index=proof[0] if proof else None,
                    proof=[_hex(p) for p in proof[1]] if proof else None,
                )
            )
        splits.append(SplitEvidence(sid, steps, claims))
    return Bundle(
        chain_id=chain_id,
        traceability=contract.address,
        job_id=job_id,
        splits=splits,
        domain=Domain(chain_id, contract.address).as_dict(),
        # the v4 shape, and ethers' (`verifyTypedData(ethers.domain, ethers.types, record)`)
        types={**types_document(), "ethers": ethers_document(Domain(chain_id, contract.address))},
    )


class Encoding(StrEnum):
    """How a bundle is written: its JSON object, or the compact form of the same content."""

    JSON = "json"
    COMPACT = "compact"

    @classmethod
    def of_path(cls, path: Path) -> Encoding:
        return cls.COMPACT if path.name.endswith(compact.SUFFIX) else cls.JSON


def encoded(bundle: dict[str, Any], encoding: Encoding) -> bytes:
    """A bundle's JSON object as the bytes of a file in `encoding`."""
    if encoding is Encoding.COMPACT:
        return compact.encode(bundle)
    return (json.dumps(bundle, indent=1) + "\n").encode()


def export(
    journal: Journal, contract: Contract, chain_id: int, job_id: int, split_id: int | None = None
) -> dict[str, Any]:
    """The bundle as its JSON object (the current version)."""
    return build(journal, contract, chain_id, job_id, split_id).export()
