"""The compact encoding of a proof bundle: the same content as its JSON form, in a
sixteenth of the bytes or less, and read in parts (docs/steps.md, "Compact bundle format").

Hashes, addresses and signatures are raw bytes instead of hex; what a reader can derive
is left out and flagged (a record's `prevHash` when it is the step before's hash, its
`payloadHash` when it is the payload's SHA-256, a Merkle proof when the bundle holds its
anchor's whole range); steps come in blocks of up to `BLOCK` steps of one split, each
compressed on its own, so a checker hands blocks to its workers undecoded. A step whose
JSON is anything the typed form would not give back exactly travels as its JSON text:
reading a compact bundle always gives what its JSON form would.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, overload

from ledger.core.abi import address_from_bytes
from ledger.core.errors import InvalidInput
from ledger.core.json_limits import loads as bounded_json

MAGIC = b"cofab-steps-compact/1\n"
MEDIA_TYPE = "application/vnd.cofab.steps+compact"
SUFFIX = ".csb"  # a compact bundle file's name ends so
BLOCK = 4096  # steps per block at most
HEADER, STEPS = b"H", b"S"
ZERO32 = bytes(32)

# flags of a step
RAW = 1 << 0  # the step's JSON text follows, nothing else
PREV_LINKED = 1 << 1  # prevHash is the previous step's (in this block) step_hash
PAYLOAD_HASHED = 1 << 2  # payloadHash is the SHA-256 of the payload
NO_EVIDENCE = 1 << 3  # evidenceHash is zero
SAME_MEMBER = 1 << 4  # member is the previous step's (in this block)
NO_HASH = 1 << 5  # step_hash is null
SIGNER_IS_MEMBER = 1 << 6
NO_SIGNER = 1 << 7
NO_PAYLOAD = 1 << 8
NO_ANCHOR = 1 << 9  # anchor_index is null
NO_PROOF = 1 << 10
PROOF_DERIVED = 1 << 11  # the proof is the one of its anchor's tree over the block's split
UINT_TEXT = 1 << 12  # jobId, splitId, seq and time are decimal text (a node's export form)
KNOWN_FLAGS = (1 << 13) - 1

FIXED = struct.Struct(">HQQQQ")  # flags, jobId, splitId, seq, time
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
_FRAME = struct.Struct(">cI")  # kind, length
BLOCK_HEAD = struct.Struct(">QI")  # split id, steps
U64 = 2**64


def is_compact(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _b(text: Any, size: int) -> bytes | None:
    """The bytes of a lower-case 0x-hex string of `size` bytes, else None (not typed)."""
    if not isinstance(text, str) or len(text) != 2 + 2 * size or not text.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        return None
    return raw if _hex(raw) == text else None


def _address(text: Any) -> bytes | None:
    """20 bytes of a checksummed address (the only spelling the typed form gives back)."""
    if not isinstance(text, str) or len(text) != 42 or not text.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        return None
    return raw if address_from_bytes(raw) == text else None


def _u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < U64


def _u64_text(value: Any) -> bool:
    """Decimal text of a 64-bit unsigned integer, written as `str(int)` writes it."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and (value == "0" or value[0] != "0")
        and len(value) <= 20
        and int(value) < U64
    )


_UINTS = ("jobId", "splitId", "seq", "time")


def _seq(value: Any) -> int | None:
    """A record's `seq` as an integer, either form; None if it is neither."""
    if _u64(value):
        return int(value)
    return int(value) if _u64_text(value) else None


# --- writing ------------------------------------------------------------------------------


def _typed(step: dict[str, Any], prev: dict[str, Any] | None, derived: bool) -> bytes | None:
    """The typed form of a step given as its JSON object, or None if it has none (a text
    with no UTF-8 form, a lone surrogate, travels as its JSON, where it is escaped)."""
    try:
        return _typed_or_none(step, prev, derived)
    except UnicodeEncodeError:
        return None


def _typed_or_none(
    step: dict[str, Any], prev: dict[str, Any] | None, derived: bool
) -> bytes | None:
    rec = step.get("record")
    if not isinstance(rec, dict) or list(rec) != [
        "jobId",
        "splitId",
        "seq",
        "prevHash",
        "bizStep",
        "payloadHash",
        "evidenceHash",
        "time",
        "member",
    ]:
        return None
    flags = 0
    if not all(_u64(rec[k]) for k in _UINTS):
        if not all(_u64_text(rec[k]) for k in _UINTS):
            return None
        flags = UINT_TEXT
    prev_hash, payload_hash = _b(rec["prevHash"], 32), _b(rec["payloadHash"], 32)
    evidence, member = _b(rec["evidenceHash"], 32), _address(rec["member"])
    signature, biz = _b(step.get("signature"), 65), rec["bizStep"]
    if (
        prev_hash is None
        or payload_hash is None
        or evidence is None
        or member is None
        or signature is None
        or not isinstance(biz, str)
    ):
        return None
    out = [b""]
    if prev is not None and prev.get("step_hash") == rec["prevHash"]:
        flags |= PREV_LINKED
    else:
        out.append(prev_hash)
    biz_raw = biz.encode()
    if len(biz_raw) >= 2**16:
        return None
    out += [U16.pack(len(biz_raw)), biz_raw]
    payload = step.get("payload")
    if isinstance(payload, str) and hashlib.sha256(payload.encode()).digest() == payload_hash:
        flags |= PAYLOAD_HASHED
    else:
        out.append(payload_hash)
    if evidence == ZERO32:
        flags |= NO_EVIDENCE
    else:
        out.append(evidence)
    if prev is not None and prev["record"]["member"] == rec["member"]:
        flags |= SAME_MEMBER
    else:
        out.append(member)
    out.append(signature)
    step_hash = step.get("step_hash")
    if step_hash is None:
        flags |= NO_HASH
    elif (raw := _b(step_hash, 32)) is not None:
        out.append(raw)
    else:
        return None
    signer = step.get("signer")
    if signer is None:
        flags |= NO_SIGNER
    elif signer == rec["member"]:
        flags |= SIGNER_IS_MEMBER
    elif (raw := _address(signer)) is not None:
        out.append(raw)
    else:
        return None
    if payload is None:
        flags |= NO_PAYLOAD
    elif isinstance(payload, str):
        text = payload.encode()
        out += [U32.pack(len(text)), text]
    else:
        return None
    anchor = step.get("anchor_index")
    if anchor is None:
        flags |= NO_ANCHOR
    elif _u64(anchor):
        out.append(struct.pack(">Q", anchor))
    else:
        return None
    proof = step.get("proof")
    if proof is None:
        flags |= NO_PROOF
    elif derived:
        flags |= PROOF_DERIVED
    elif isinstance(proof, list) and len(proof) < 2**16:
        nodes = [n for p in proof if (n := _b(p, 32)) is not None]
        if len(nodes) != len(proof):
            return None
        out += [U16.pack(len(nodes)), *nodes]
    else:
        return None
    out[0] = FIXED.pack(flags, *(int(rec[k]) for k in _UINTS))
    return b"".join(out)


def _derived_proofs(steps: list[Any], anchors: list[dict[str, Any]], held: list[Any]) -> set[int]:
    """Positions of the steps whose proof a reader rebuilds from the split's steps it holds
    (`held`: these and those of other entries naming the same split)."""
    trees = _trees([_key(s) for s in held], anchors)
    out = set()
    for i, s in enumerate(steps):
        key = _key(s)
        got = trees.get(s.get("anchor_index")) if key else None
        proof = got.get(key[0]) if got is not None and key is not None else None
        if proof is not None and s.get("proof") == [_hex(p) for p in proof]:
            out.add(i)
    return out


def _key(step: Any) -> tuple[int, bytes] | None:
    """(seq, stated hash) of a step the typed form can carry, as proofs are rebuilt from."""
    rec = step.get("record") if isinstance(step, dict) else None
    seq = _seq(rec.get("seq")) if isinstance(rec, dict) else None
    if seq is None:
        return None
    raw = _b(step.get("step_hash"), 32)
    return (seq, raw) if raw is not None else None


def _trees(
    keys: Sequence[tuple[int, bytes] | None], anchors: list[dict[str, Any]]
) -> dict[Any, dict[int, list[bytes]]]:
    """anchor index -> {seq: proof} for each anchor claim whose whole range the keys hold
    exactly once."""
    from ledger.steps.anchoring import anchor_tree  # the chain's tree format, defined once

    by_seq: dict[int, bytes | None] = {}
    for k in keys:
        if k is not None:
            by_seq[k[0]] = None if k[0] in by_seq else k[1]  # a seq given twice: no tree
    out: dict[Any, dict[int, list[bytes]]] = {}
    for a in anchors:
        if not isinstance(a, dict):
            continue
        lo, hi = a.get("from_seq"), a.get("to_seq")
        if not (isinstance(lo, int) and isinstance(hi, int) and _u64(lo) and _u64(hi)):
            continue
        if hi < lo or hi - lo >= len(by_seq):  # more steps than the bundle holds: no tree
            continue
        rng = [(q, h) for q in range(lo, hi + 1) if (h := by_seq.get(q)) is not None]
        if len(rng) != hi - lo + 1:
            continue
        tree = anchor_tree(rng)
        out[a.get("index")] = {q: tree.proof(i) for i, (q, _) in enumerate(rng)}
    return out


def _frame(kind: bytes, body: bytes) -> bytes:
    return _FRAME.pack(kind, len(body)) + body


def header_frame(bundle: dict[str, Any], level: int = 6) -> bytes:
    """The magic and the header frame of a bundle's JSON object (its steps left out)."""
    header = {k: v for k, v in bundle.items() if k != "splits"}
    header["splits"] = [
        {k: v for k, v in s.items() if k != "steps"} for s in bundle.get("splits") or []
    ]
    return MAGIC + _frame(HEADER, zlib.compress(json.dumps(header).encode(), level))


def block_frame(split_id: int, steps: Sequence[Any], derived: Any = (), level: int = 6) -> bytes:
    """A frame of up to BLOCK steps of one split; `derived` holds the positions (in
    `steps`) whose proof a reader rebuilds, so it is left out."""
    out, prev = [], None
    for i, step in enumerate(steps):
        typed = _typed(step, prev, i in derived) if isinstance(step, dict) else None
        if typed is None:
            text = json.dumps(step).encode()
            typed = FIXED.pack(RAW, 0, 0, 0, 0) + U32.pack(len(text)) + text
            prev = None
        else:
            prev = step
        out.append(typed)
    body = zlib.compress(b"".join(out), level)
    return _frame(STEPS, BLOCK_HEAD.pack(split_id, len(out)) + body)


def encode(bundle: dict[str, Any], level: int = 6) -> bytes:
    """The compact form of a bundle given as its (current-version) JSON object."""
    parts = [header_frame(bundle, level)]
    splits = bundle.get("splits") or []
    # a reader merges the blocks of every entry naming one split and rebuilds proofs from
    # them with the anchors of the last such entry: a proof is left out only if that
    # view gives it back
    merged: dict[Any, list[Any]] = {}
    anchors: dict[Any, list[Any]] = {}
    for split in splits:
        key = repr(split.get("split_id"))
        merged.setdefault(key, []).extend(split.get("steps") or [])
        anchors[key] = split.get("anchors") or []
    for split in splits:
        steps = split.get("steps") or []
        key = repr(split.get("split_id"))
        derived = _derived_proofs(steps, anchors[key], merged[key])
        for start in range(0, len(steps), BLOCK):
            mine = {i - start for i in derived if start <= i < start + BLOCK}
            parts.append(block_frame(split["split_id"], steps[start : start + BLOCK], mine, level))
    return b"".join(parts)


# --- reading ------------------------------------------------------------------------------


def frames(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(kind, body) of each frame of a compact bundle."""
    view, at = memoryview(data), len(MAGIC)
    while at < len(data):
        if at + _FRAME.size > len(data):
            raise InvalidInput("the compact bundle is truncated (a frame header is cut off)")
        kind, size = _FRAME.unpack_from(view, at)
        at += _FRAME.size
        if at + size > len(data):
            raise InvalidInput("the compact bundle is truncated (a frame is cut off)")
        yield kind, view[at : at + size]
        at += size


MIN_PACKED_STEP = 16
"""Compressed bytes a block's step takes at least: a real step carries 64 bytes that do
not compress (its signature), so only a crafted block repeating its steps over and over
comes under this. The bound keeps the steps a file can make a checker examine in
proportion to its size (a 4 MiB request body: at most 262,144 steps)."""

MAX_INFLATED = 64 << 20
"""Bytes a header or a block may inflate to: far above a real block of 4,096 steps (about
2 MiB), and a bound on what a small, crafted file can make a reader hold."""


def inflate(body: bytes | memoryview) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_INFLATED)
    except zlib.error as exc:
        raise InvalidInput(f"a block of the compact bundle is corrupt: {exc}") from None
    if inflater.unconsumed_tail:
        raise InvalidInput(
            f"a block of the compact bundle inflates to more than {MAX_INFLATED >> 20} MiB"
        )
    if not inflater.eof:
        raise InvalidInput("a block of the compact bundle is corrupt: incomplete or truncated")
    return out


def decode_block(block: bytes) -> tuple[int, list[dict[str, Any]]]:
    """(split id, steps as their JSON objects) of one STEPS frame's body; proofs flagged
    as derived are left as `...` here (`fill_proofs` rebuilds them)."""
    try:
        split_id, count = BLOCK_HEAD.unpack_from(block, 0)
        data = inflate(memoryview(block)[BLOCK_HEAD.size :])
        return split_id, _steps(data, count)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"a block of the compact bundle is corrupt: {exc}") from None


def _steps(data: bytes, count: int) -> list[dict[str, Any]]:
    # checker._block_run walks the same fields straight into hashes: change both together
    out: list[dict[str, Any]] = []
    at, prev = 0, None
    hexes = bytes.hex
    for _ in range(count):
        flags, job, split, seq, when = FIXED.unpack_from(data, at)
        at += FIXED.size
        if flags & ~KNOWN_FLAGS:
            raise InvalidInput(
                f"a compact step has flags this reader does not know (0x{flags:04x}): the "
                "bundle was written by a newer cofab"
            )
        if flags & RAW:
            (n,) = U32.unpack_from(data, at)
            step = bounded_json(data[at + 4 : at + 4 + n], "a step of the compact bundle")
            at += 4 + n
            out.append(step)
            prev = None
            continue
        if flags & PREV_LINKED:
            if prev is None:
                raise InvalidInput("a compact step links to no previous step")
            prev_hash = prev["step_hash"]
        else:
            prev_hash = "0x" + hexes(data[at : at + 32])
            at += 32
        (n,) = U16.unpack_from(data, at)
        biz = data[at + 2 : at + 2 + n].decode()
        at += 2 + n
        payload_hash = None
        if not flags & PAYLOAD_HASHED:
            payload_hash = "0x" + hexes(data[at : at + 32])
            at += 32
        if flags & NO_EVIDENCE:
            evidence = "0x" + "00" * 32
        else:
            evidence = "0x" + hexes(data[at : at + 32])
            at += 32
        if flags & SAME_MEMBER:
            if prev is None:
                raise InvalidInput("a compact step names no previous member")
            member = prev["record"]["member"]
        else:
            member = address_from_bytes(data[at : at + 20])
            at += 20
        signature = "0x" + hexes(data[at : at + 65])
        at += 65
        step_hash = None
        if not flags & NO_HASH:
            step_hash = "0x" + hexes(data[at : at + 32])
            at += 32
        if flags & NO_SIGNER:
            signer = None
        elif flags & SIGNER_IS_MEMBER:
            signer = member
        else:
            signer = address_from_bytes(data[at : at + 20])
            at += 20
        payload = None
        if not flags & NO_PAYLOAD:
            (n,) = U32.unpack_from(data, at)
            payload = data[at + 4 : at + 4 + n].decode()
            at += 4 + n
        if payload_hash is None:
            if payload is None:
                raise InvalidInput("a compact step's payload hash refers to no payload")
            payload_hash = "0x" + hashlib.sha256(payload.encode()).hexdigest()
        anchor = None
        if not flags & NO_ANCHOR:
            (anchor,) = struct.unpack_from(">Q", data, at)
            at += 8
        proof: Any = None
        if flags & PROOF_DERIVED:
            proof = ...  # rebuilt from the split's steps
        elif not flags & NO_PROOF:
            (n,) = U16.unpack_from(data, at)
            at += 2
            proof = ["0x" + hexes(data[at + 32 * i : at + 32 * i + 32]) for i in range(n)]
            at += 32 * n
        if at > len(data):
            raise InvalidInput("a block of the compact bundle is truncated")
        step = {
            "record": step_record(
                flags, job, split, seq, when, prev_hash, biz, payload_hash, evidence, member
            ),
            "step_hash": step_hash,
            "signature": signature,
            "signer": signer,
            "payload": payload,
            "anchor_index": anchor,
            "proof": proof,
        }
        out.append(step)
        prev = step
    if at != len(data):
        raise InvalidInput("a block of the compact bundle has bytes past its steps")
    return out


def step_record(
    flags: int,
    job: int,
    split: int,
    seq: int,
    when: int,
    prev_hash: str,
    biz: str,
    payload_hash: str,
    evidence: str,
    member: str,
) -> dict[str, Any]:
    """A typed step's record as its JSON object (one definition for every reader)."""
    if flags & UINT_TEXT:
        return {
            "jobId": str(job),
            "splitId": str(split),
            "seq": str(seq),
            "prevHash": prev_hash,
            "bizStep": biz,
            "payloadHash": payload_hash,
            "evidenceHash": evidence,
            "time": str(when),
            "member": member,
        }
    return {
        "jobId": job,
        "splitId": split,
        "seq": seq,
        "prevHash": prev_hash,
        "bizStep": biz,
        "payloadHash": payload_hash,
        "evidenceHash": evidence,
        "time": when,
        "member": member,
    }


def fill_proofs(steps: list[Any], anchors: list[dict[str, Any]]) -> None:
    """Rebuild the proofs flagged as derived (left as `...` by `decode_block`)."""
    if not any(isinstance(s, dict) and s.get("proof") is ... for s in steps):
        return
    trees = _trees([_key(s) for s in steps], anchors)
    for s in steps:
        if isinstance(s, dict) and s.get("proof") is ...:
            seq = _seq(s["record"]["seq"])
            found = trees.get(s.get("anchor_index"), {}).get(seq) if seq is not None else None
            if found is None:
                raise InvalidInput(
                    f"the compact bundle derives the proof of step {seq} from an anchor "
                    "whose steps it does not hold"
                )
            s["proof"] = [_hex(p) for p in found]


class Blocks(Sequence[Any]):
    """A split's steps held as compressed blocks, decoded (all at once) when first read:
    a checker sends the blocks to its workers as they are."""

    def __init__(self, blocks: list[bytes], counts: list[int], anchors: list[dict[str, Any]]):
        self.blocks, self.counts, self.anchors = blocks, counts, anchors
        self._steps: list[Any] | None = None

    def _all(self) -> list[Any]:
        if self._steps is None:
            from ledger.steps.bundle import BundleStep

            raw: list[dict[str, Any]] = []
            for b in self.blocks:
                raw += decode_block(b)[1]
            fill_proofs(raw, self.anchors)
            self._steps = [BundleStep.load(s) for s in raw]
        return self._steps

    def __len__(self) -> int:
        return sum(self.counts)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())


def read(data: bytes) -> tuple[dict[str, Any], dict[int, Blocks]]:
    """The header (the bundle's JSON object without steps) and each split's blocks."""
    header: dict[str, Any] | None = None
    blocks: dict[int, tuple[list[bytes], list[int]]] = {}
    for kind, body in frames(data):
        if kind == HEADER and header is None:
            try:
                header = bounded_json(inflate(body), "the compact bundle's header")
            except ValueError as exc:
                raise InvalidInput(f"the compact bundle's header is not JSON: {exc}") from None
        elif kind == STEPS:
            if len(body) < BLOCK_HEAD.size:
                raise InvalidInput("a block of the compact bundle is truncated")
            split_id, count = BLOCK_HEAD.unpack_from(body, 0)
            packed = len(body) - BLOCK_HEAD.size
            if count > BLOCK or count * MIN_PACKED_STEP > packed:
                raise InvalidInput(
                    f"a block of the compact bundle declares {count:,} steps in {packed:,} "
                    f"bytes: a block holds at most {BLOCK:,} steps, each at least "
                    f"{MIN_PACKED_STEP} bytes compressed"
                )
            got = blocks.setdefault(split_id, ([], []))
            got[0].append(bytes(body))
            got[1].append(count)
        else:
            raise InvalidInput(f"the compact bundle has an unknown frame {kind!r}")
    if not isinstance(header, dict) or not isinstance(header.get("splits"), list):
        raise InvalidInput("the compact bundle has no header")
    anchors: dict[int, Any] = {}
    for s in header["splits"]:
        if not isinstance(s, dict):
            continue
        sid = s.get("split_id")
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise InvalidInput(f"the bundle's split_id must be an integer, not {sid!r}")
        anchors[sid] = s.get("anchors") or []
    known = set(anchors)
    if set(blocks) - known:
        raise InvalidInput(
            f"the compact bundle has steps of split {min(set(blocks) - known)}, "
            "which its header does not list"
        )
    return header, {sid: Blocks(b, c, anchors.get(sid) or []) for sid, (b, c) in blocks.items()}
