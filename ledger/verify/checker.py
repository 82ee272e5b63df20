"""The one step checker: every signed step of a job against the chain's anchors.

`cofab step verify`, `POST /steps/verify`, `cofab audit` and the audit API all come here,
so a bundle gets the same findings whichever asks. Built for 100,000-step bundles:

- the per-step work (parse, EIP-712 digest, payload SHA-256, signer recovery, Merkle leaf)
  runs on every core, this process taking its share;
- inclusion is checked by rebuilding each anchor's root from the steps it covers (about
  one hash per step instead of one per proof level); a partial range falls back to the
  step's own proof;
- signer authority is asked of the chain once per (member, signer, anchor block).

Steps are checked in sequence order whatever their order in the bundle, and the same step
given twice (two bundles overlapping) counts once: the verdict depends on the content only.
"""

from __future__ import annotations

import atexit
import bisect
import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import Field
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput

from ledger.core.abi import address_from_bytes
from ledger.core.errors import InvalidInput
from ledger.core.hashing import keccak, keccak_256
from ledger.core.json_limits import loads as bounded_json
from ledger.core.merkle import process_proof, root_of
from ledger.core.settings import usable_cores
from ledger.core.types import Record
from ledger.core.workers import forkserver
from ledger.eth.reverts import reverts
from ledger.steps.anchoring import step_leaf
from ledger.steps.bundle import Anchor, Bundle, BundleStep, StepList, gc_paused
from ledger.steps.compact import (
    BLOCK_HEAD,
    FIXED,
    KNOWN_FLAGS,
    NO_ANCHOR,
    NO_EVIDENCE,
    NO_HASH,
    NO_PAYLOAD,
    NO_PROOF,
    NO_SIGNER,
    PAYLOAD_HASHED,
    PREV_LINKED,
    PROOF_DERIVED,
    RAW,
    SAME_MEMBER,
    SIGNER_IS_MEMBER,
    U16,
    U32,
    Blocks,
    decode_block,
    inflate,
    step_record,
)
from ledger.steps.epcis import check_biz_step, payload_hash
from ledger.steps.record import PAD12, TYPE_HASH, ZERO, Domain, Step, read_record
from ledger.steps.signatures import recover_address, recover_addresses
from ledger.verify.authority import Window
from ledger.verify.chain import ChainFacts, facts_for
from ledger.verify.findings import ORDER, Finding, Severity, counts, verdict

PARALLEL_FROM = 4_000  # steps; below this a process pool costs more than it saves
FINDINGS_PER_KIND = 100
"""Findings of one kind in one split listed in full; the rest are counted in one more
finding. A bundle whose every step is forged would otherwise answer with (and hold in
memory) a finding per step."""
CHUNK = 2_048  # steps per task handed to a worker
HANDOVER_KEY = "cofab:handover"
PAYLOAD_OK, PAYLOAD_MISSING, PAYLOAD_MISMATCH = 0, 1, 2

# What the per-step work yields for a readable record: (seq, job_id, split_id, prev_hash,
# member, time, digest, leaf, signer, payload state, handover, stated hash agrees)
Examined = tuple[
    int, int, int, bytes, str, int, bytes, bytes, bytes | None, int, tuple[int, str] | None, bool
]
# (record, signature, payload, stated step hash) as a bundle carries them
Raw = tuple[Any, Any, Any, Any]
# (from, to) sequence ranges whose Merkle roots the per-step work rebuilds: anchors' ranges
Ranges = Sequence[tuple[int, int]]


def _signature(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            return b""
    return b""


def _handover(payload: str) -> tuple[int, str] | None:
    """(to split, lot) of a step whose payload names a hand-over, else None."""
    try:
        doc = bounded_json(payload, "the payload")
        h = doc.get(HANDOVER_KEY) if isinstance(doc, dict) else None
        if isinstance(h, dict) and "toSplit" in h:
            return int(h["toSplit"]), str(h.get("lot", ""))
    except (ValueError, TypeError, OverflowError, InvalidInput):
        pass
    return None


def examine(domain: Domain, raws: Sequence[Raw]) -> list[Examined | str]:
    """The per-step work for (record, signature, payload, stated hash) tuples: an Examined
    tuple, or the reason the record cannot be read. Pure, so it runs in any process.

    A record in its everyday form is read by `read_record` (no Step built, no second
    validation); any other goes through `Step.from_message`, which reads or refuses it.
    A payload text equal to the one before is not hashed again (a split's steps often
    carry the same event)."""
    out: list[Examined | str] = []
    append = out.append
    last_text: str | None = None
    last_hash = b""
    for record, signature, payload, stated in raws:
        fields = read_record(record, domain)
        if fields is None:
            try:
                step = Step.from_message(record)
            except Exception as exc:  # noqa: BLE001 - any unreadable record is one finding
                append(f"unreadable step record: {exc}")
                continue
            digest = step.digest(domain)
            fields = (
                step.job_id,
                step.split_id,
                step.seq,
                step.prev_hash,
                step.payload_hash,
                step.time,
                step.member,
                digest,
            )
        job_id, split_id, seq, prev_hash, signed_payload, when, member, digest = fields
        if payload is None:
            state, handover = PAYLOAD_MISSING, None
        elif isinstance(payload, str):
            if payload != last_text:
                try:
                    last_hash = payload_hash(payload.encode())
                except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text, hashed by none
                    last_hash = b""
                last_text = payload
            state = PAYLOAD_OK if last_hash == signed_payload else PAYLOAD_MISMATCH
            maybe = "handover" in payload or "\\u" in payload  # escapes could hide the key
            handover = _handover(payload) if maybe else None
        else:  # the canonical text is signed; a parsed object is not that text
            state, handover = PAYLOAD_MISMATCH, None
        append(
            (
                seq,
                job_id,
                split_id,
                prev_hash,
                member,
                when,
                digest,
                step_leaf(seq, digest),
                recover_address(digest, _signature(signature)),
                state,
                handover,
                stated is None or stated == "0x" + digest.hex(),
            )
        )
    return out


@dataclass
class Run:
    """A run of steps of one split, consecutive in sequence and hash chain, that needs no
    finding of its own: what the split-level checks need of it, without a row per step."""

    first_seq: int
    first_prev: bytes
    last_seq: int
    last_digest: bytes
    member: str
    signer: bytes
    times: list[int]
    digests: bytes  # 32 bytes per step
    leaves: bytes  # 32 bytes per step
    roots: dict[tuple[int, int], bytes]  # (from, to) seq range -> root, for ranges inside it
    handovers: list[tuple[int, tuple[int, str]]]
    edges: tuple[Any, Any] = (None, None)  # the first and last steps' records


def _run_of(rows: list[Examined | str], job_id: int, split_id: int, ranges: Ranges) -> Run | None:
    """The rows as one Run, or None if any of them needs the step-by-step checks."""
    if not rows or isinstance(rows[0], str):
        return None
    first = rows[0]
    member, signer = first[4].lower(), first[8]
    if signer is None:
        return None
    seq, head = first[0] - 1, first[3]
    handovers = []
    for r in rows:
        if (
            isinstance(r, str)
            or r[0] != seq + 1
            or r[3] != head
            or r[1] != job_id
            or r[2] != split_id
            or r[9] != PAYLOAD_OK
            or not r[11]
            or r[8] != signer
            or (r[4] != first[4] and r[4].lower() != member)
        ):
            return None
        seq, head = r[0], r[6]
        if r[10] is not None:
            handovers.append((r[0], r[10]))
    good = cast(list[Examined], rows)  # none is a str: checked above
    leaves = [r[7] for r in good]
    lo = first[0]
    roots = {(a, b): root_of(leaves[a - lo : b - lo + 1]) for a, b in ranges if lo <= a <= b <= seq}
    return Run(
        first_seq=lo,
        first_prev=first[3],
        last_seq=seq,
        last_digest=head,
        member=first[4],
        signer=signer,
        times=[r[5] for r in good],
        digests=b"".join(r[6] for r in good),
        leaves=b"".join(leaves),
        roots=roots,
        handovers=handovers,
    )


def examine_chunk(
    domain: Domain,
    raws: Sequence[Raw],
    job_id: int,
    split_id: int,
    ranges: Ranges,
) -> Run | list[Examined | str]:
    """A worker's task: a chunk of one split's steps as a Run when it needs no finding of
    its own, else its rows for the step-by-step checks."""
    rows = examine(domain, raws)
    run = _run_of(rows, job_id, split_id, ranges)
    if run is None:
        return rows
    run.edges = (raws[0][0], raws[-1][0])
    return run


def examine_block(
    domain: Domain, block: bytes, job_id: int, split_id: int, ranges: Ranges
) -> Run | list[Examined | str]:
    """`examine_chunk` of one block of a compact bundle, decoded here: read straight into
    a Run when it is one (`block_run`), else through its steps' JSON objects."""
    run = block_run(domain, block, job_id, split_id, ranges)
    if run is not None:
        return run
    steps = [BundleStep.load(s) for s in decode_block(block)[1]]
    return examine_chunk(domain, _raws(enumerate(steps)), job_id, split_id, ranges)


def block_run(
    domain: Domain, block: bytes, job_id: int, split_id: int, ranges: Ranges
) -> Run | None:
    """The Run `examine_chunk` makes of a block's decoded steps, computed from the block's
    typed fields as they lie in its bytes: no JSON object, hex text or row per step, the
    payload hashed once per distinct text. None for any block that is not such a Run, or
    that this reading is unsure of (a step kept as JSON, a damaged block, any error): the
    general path then reads it and says what it finds. tests/test_block_run.py holds the
    two equal on valid, odd and damaged blocks."""
    try:
        return _block_run(domain, block, job_id, split_id, ranges)
    except Exception:  # noqa: BLE001 - whatever it is, the general path states it
        return None


_BIZ_HASHES: dict[bytes, bytes] = {}
"""A valid bizStep's UTF-8 bytes -> its EIP-712 string hash (a block repeats a few)."""


def _biz_hash(raw: bytes) -> bytes:
    """The hash of a valid bizStep given as UTF-8 bytes; raises for any other."""
    found = _BIZ_HASHES.get(raw)
    if found is None:
        check_biz_step(raw.decode())
        found = keccak(raw)
        if len(_BIZ_HASHES) < 4096:
            _BIZ_HASHES[raw] = found
    return found


def _block_run(
    domain: Domain, block: bytes, job_id: int, split_id: int, ranges: Ranges
) -> Run | None:
    """`block_run`, raising where the block is damaged. Mirrors compact._steps field by
    field; returns None at the first step that would not fit the Run of `_run_of`."""
    count = BLOCK_HEAD.unpack_from(block, 0)[1]
    data = inflate(memoryview(block)[BLOCK_HEAD.size :])
    size = len(data)
    if not count:
        return None
    fixed, u16, u32 = FIXED.unpack_from, U16.unpack_from, U32.unpack_from
    k256, sha256 = keccak_256, hashlib.sha256
    prefix = domain.prefix
    head64 = TYPE_HASH + job_id.to_bytes(32, "big") + split_id.to_bytes(32, "big")
    unusual = ~KNOWN_FLAGS | RAW | NO_PAYLOAD
    digests: list[bytes] = []
    leaves: list[bytes] = []
    times: list[int] = []
    handovers: list[tuple[int, tuple[int, str]]] = []
    signatures: list[bytes] = []
    add_digest, add_leaf, add_time = digests.append, leaves.append, times.append
    add_signature = signatures.append
    at = 0
    head = member = last_sha = when32 = b""
    last_text: bytes | None = None  # no payload hashed yet (not even the empty one)
    stated: bytes | None = None
    stated_payload: bytes | None = None
    last_when = -1
    tells = False  # the last distinct payload may name a hand-over
    first_seq = expect = -1
    first_prev = b""
    first_record: dict[str, Any] = {}
    for i in range(count):
        flags, job, split, seq, when = fixed(data, at)
        at += FIXED.size
        if flags & unusual or job != job_id or split != split_id or (i and seq != expect):
            return None
        if flags & PREV_LINKED:
            if not i or stated is None:  # no step before, or one with no stated hash
                return None
            prev = stated
        else:
            prev = data[at : at + 32]
            at += 32
        if i and prev != head:
            return None
        (n,) = u16(data, at)
        biz = data[at + 2 : at + 2 + n]
        at += 2 + n
        if flags & PAYLOAD_HASHED:
            stated_payload = None
        else:
            stated_payload = data[at : at + 32]
            at += 32
        if flags & NO_EVIDENCE:
            evidence = ZERO
        else:
            evidence = data[at : at + 32]
            at += 32
        if flags & SAME_MEMBER:
            if not i:
                return None
        else:
            raw = data[at : at + 20]
            at += 20
            if i and raw != member:
                return None
            member = raw
        signature = data[at : at + 65]
        at += 65
        if flags & NO_HASH:
            stated = None
        else:
            stated = data[at : at + 32]
            at += 32
        if not flags & (NO_SIGNER | SIGNER_IS_MEMBER):
            at += 20
        (n,) = u32(data, at)
        text = data[at + 4 : at + 4 + n]
        at += 4 + n
        if not flags & NO_ANCHOR:
            at += 8
        if not flags & (PROOF_DERIVED | NO_PROOF):
            (n,) = u16(data, at)
            at += 2 + 32 * n
        if at > size:
            return None
        if text != last_text:
            if not text.isascii():
                text.decode()  # raises if it is no UTF-8 text
            last_text, last_sha = text, sha256(text).digest()
            tells = b"handover" in text or b"\\u" in text  # escapes could hide the key
        if stated_payload is not None and stated_payload != last_sha:
            return None
        seq32 = seq.to_bytes(32, "big")
        if when != last_when:
            when32, last_when = when.to_bytes(32, "big"), when
        digest = k256(
            prefix
            + k256(
                b"".join(
                    (
                        head64,
                        seq32,
                        prev,
                        _biz_hash(biz),
                        last_sha,
                        evidence,
                        when32,
                        PAD12,
                        member,
                    )
                )
            ).digest()
        ).digest()
        if stated is not None and stated != digest:
            return None
        add_signature(signature)
        if not i:
            first_seq, first_prev = seq, prev
            first_record = _record_of(
                flags, (job, split, seq, when), (prev, biz, last_sha, evidence, member)
            )
        if tells:
            found = _handover(text.decode())
            if found is not None:
                handovers.append((seq, found))
        add_digest(digest)
        add_leaf(k256(k256(seq32 + digest).digest()).digest())
        add_time(when)
        head, expect = digest, seq + 1
    if at != size:
        return None
    signers = recover_addresses(digests, signatures)
    signer = signers[0]
    if signer is None or signers.count(signer) != count:
        return None
    last = expect - 1
    last_record = _record_of(
        flags, (job, split, last, when), (prev, biz, last_sha, evidence, member)
    )
    lo = first_seq
    return Run(
        first_seq=lo,
        first_prev=first_prev,
        last_seq=last,
        last_digest=head,
        member=str(first_record["member"]),
        signer=signer,
        times=times,
        digests=b"".join(digests),
        leaves=b"".join(leaves),
        roots={
            (a, b): root_of(leaves[a - lo : b - lo + 1]) for a, b in ranges if lo <= a <= b <= last
        },
        handovers=handovers,
        edges=(first_record, last_record),
    )


def _record_of(
    flags: int, uints: tuple[int, int, int, int], raw: tuple[bytes, bytes, bytes, bytes, bytes]
) -> dict[str, Any]:
    """A step's record as `decode_block` gives it, from its integers (job, split, seq,
    time) and raw fields (prev hash, bizStep, payload hash, evidence hash, member)."""
    prev, biz, payload, evidence, member = raw
    return step_record(
        flags,
        *uints,
        "0x" + prev.hex(),
        biz.decode(),
        "0x" + payload.hex(),
        "0x" + evidence.hex(),
        address_from_bytes(member),
    )


def _raws(items: Iterable[tuple[int, BundleStep]]) -> list[Raw]:
    return [(it.record, it.signature, it.payload, it.step_hash) for _, it in items]


_POOL: ProcessPoolExecutor | None = None


def pool() -> ProcessPoolExecutor | None:
    """The process pool the checks run on, started once per process (None on one core).

    Workers come from a fork server started without this process's data, so a checker
    holding a large bundle never forks it; call this before reading a bundle to overlap
    the workers' start with the reading (ledger.core.workers: the fork server preloads
    the main script too)."""
    global _POOL
    if _POOL is None and usable_cores(8) > 1:
        ctx = forkserver("ledger.verify.checker")
        _POOL = ProcessPoolExecutor(max_workers=usable_cores(8), mp_context=ctx)
        atexit.register(close_pool)
    return _POOL


@dataclass
class _Part:
    """A part of the check handed to a worker, done here instead if the worker dies (killed,
    out of memory): the check still ends with its verdict, and the next one starts new
    workers."""

    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]

    def result(self) -> Any:
        try:
            return self.future.result()
        except BrokenProcessPool:
            _discard(None)
            return self.fn(*self.args)


def _discard(broken: ProcessPoolExecutor | None) -> None:
    """Forget a pool one of whose workers died (None: whichever is current and broken)."""
    global _POOL
    current = _POOL
    if current is not None and (current is broken or getattr(current, "_broken", False)):
        _POOL = None
        current.shutdown(wait=False, cancel_futures=True)


def close_pool() -> None:
    """Stop the workers (a later check starts new ones)."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
        _POOL = None


@dataclass
class SplitResult:
    split_id: int
    steps: int = 0  # distinct readable steps given
    anchored: int = 0  # of those, proven in an anchor on chain
    verified_signatures: int = 0  # signed by a key that could sign for the factory
    items: Sequence[BundleStep] = field(default_factory=list)  # distinct, in sequence order
    first: Any = None  # the first and last items' records
    last: Any = None


@dataclass
class StepsVerdict:
    job_id: int
    findings: list[Finding]
    splits: dict[int, SplitResult]

    @property
    def verdict(self) -> str:
        return verdict(self.findings)

    @property
    def ok(self) -> bool:
        return self.verdict == "clean"

    @property
    def steps(self) -> int:
        return sum(r.steps for r in self.splits.values())

    @property
    def anchored(self) -> int:
        return sum(r.anchored for r in self.splits.values())

    def report(self) -> StepsReport:
        return StepsReport(
            ok=self.ok,
            verdict=self.verdict,
            job_id=self.job_id,
            steps=self.steps,
            anchored=self.anchored,
            summary=counts(self.findings),
            findings=self.findings,
        )


class StepsReport(Record):
    """A bundle's verification as `cofab step verify --json` and `POST /steps/verify` give it."""

    ok: bool = Field(description="no critical or major finding")
    verdict: str = Field(description="clean | findings")
    job_id: int
    steps: int = Field(description="distinct readable steps given")
    anchored: int = Field(description="of those, proven in an anchor on chain")
    summary: dict[str, int] = Field(description="findings per severity")
    findings: list[Finding]


@dataclass
class _Entry:
    """A readable step with its per-step results."""

    seq: int
    step_hash: bytes
    prev_hash: bytes
    member: str
    time: int
    leaf: bytes
    signer: str | None
    item: BundleStep


Flag = Callable[..., None]


def check_steps(
    facts: ChainFacts, bundles: Sequence[Bundle], split_ids: Iterable[int]
) -> StepsVerdict:
    """Check the bundles' steps of `split_ids` against the chain's facts."""
    return start_steps(facts, bundles, split_ids).finish()


def start_steps(
    facts: ChainFacts, bundles: Sequence[Bundle], split_ids: Iterable[int]
) -> StepsCheck:
    """Hand the bundles' steps of `split_ids` to the workers and return at once: the
    caller does its own chain reads meanwhile, then calls `finish`. Of the facts, only
    the job, domain and anchors are read here; the rest only by `finish`."""
    with gc_paused():
        return StepsCheck.start(facts.job_id, facts.domain, bundles, split_ids, facts)


def rooted(anchors: Iterable[Any]) -> list[tuple[int, int]]:
    """The (from, to) ranges of `anchors` whose roots the workers rebuild: ascending and
    disjoint, as the chain's are. A bundle's own claims serve when the chain's are not
    read yet; a range no worker rooted is rooted by `_check_runs`, so claims that are
    false cost time, never a verdict, and overlapping ones no more than one root each."""
    out: list[tuple[int, int]] = []
    last = -1
    for lo, hi in sorted((a.from_seq, a.to_seq) for a in anchors):
        if last < lo <= hi:
            out.append((lo, hi))
            last = hi
    return out


def _inside(ranges: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The ranges (ascending, disjoint) lying within `lo..hi`: those a chunk expected to
    hold steps `lo..hi` can root. Each chunk gets only its own, so a bundle claiming
    many ranges costs no more per chunk than its steps do."""
    out: list[tuple[int, int]] = []
    for a, b in itertools.islice(ranges, bisect.bisect_left(ranges, (lo, -1)), None):
        if b > hi:  # and every later range starts past this one's end
            break
        out.append((a, b))
    return out


@dataclass
class StepsCheck:
    """Steps being examined by the workers, and what their split-level checks need.

    Workers examine chunks of each split while this process checks the splits whose
    chunks are back, in order. A split whose steps run unbroken from 0 needs no row per
    step here (`_check_runs`); any other falls back to the step-by-step checks, which
    state each problem."""

    facts: ChainFacts | None  # None until `finish` is given them
    job_id: int
    domain: Domain
    bundles: Sequence[Bundle]
    given: dict[int, list[tuple[int, BundleStep]]]
    claims: dict[int, list[Any]]
    lazy: dict[int, Blocks]  # compact splits: their blocks go to the workers undecoded
    listed: dict[int, StepList]  # JSON splits: their steps go to the workers as read
    parts: dict[int, list[Any]]  # per split, its chunks' futures (or results)

    @classmethod
    def start(
        cls,
        job_id: int,
        domain: Domain,
        bundles: Sequence[Bundle],
        split_ids: Iterable[int],
        facts: ChainFacts | None = None,
    ) -> StepsCheck:
        """Hand the steps to the workers. Without the chain's facts yet, the bundles' own
        anchor claims say which roots the workers rebuild (`rooted`)."""
        given: dict[int, list[tuple[int, BundleStep]]] = {s: [] for s in split_ids}
        claims: dict[int, list[Any]] = {s: [] for s in given}
        sources: dict[int, list[Sequence[BundleStep]]] = {s: [] for s in given}
        for b in bundles:
            for entry in b.splits:
                if entry.split_id in given:
                    sources[entry.split_id].append(entry.steps)
                    claims[entry.split_id] += entry.anchors
        lazy: dict[int, Blocks] = {}
        listed: dict[int, StepList] = {}
        for sid, steps in sources.items():
            if len(steps) == 1 and isinstance(steps[0], Blocks):
                lazy[sid] = steps[0]
                continue
            if len(steps) == 1 and isinstance(steps[0], StepList):
                listed[sid] = steps[0]
                continue
            items = [x for s in steps for x in enumerate(s)]
            given[sid] = _first_of_each(items) if len(steps) > 1 else items

        total = sum(len(v) for v in given.values()) + sum(
            len(v) for v in (*lazy.values(), *listed.values())
        )
        executor = pool() if total >= PARALLEL_FROM else None

        def task(fn: Callable[..., Any], *args: Any) -> Any:
            if executor is None:
                return fn(*args)
            try:
                return _Part(executor.submit(fn, *args), fn, args)
            except BrokenProcessPool:  # a worker died since the last check
                _discard(executor)
                return fn(*args)

        parts: dict[int, list[Any]] = {}
        for sid, items in given.items():
            ranges = rooted(facts.anchors.get(sid, []) if facts is not None else claims[sid])
            if sid in lazy:
                spans = itertools.accumulate(lazy[sid].counts, initial=0)
                parts[sid] = [
                    task(examine_block, domain, b, job_id, sid, _inside(ranges, lo, lo + n - 1))
                    for b, lo, n in zip(lazy[sid].blocks, spans, lazy[sid].counts, strict=False)
                ]
                continue
            raws = listed[sid].raws() if sid in listed else _raws(items)
            parts[sid] = [
                task(
                    examine_chunk,
                    domain,
                    raws[i : i + CHUNK],
                    job_id,
                    sid,
                    _inside(ranges, i, i + CHUNK - 1),
                )
                for i in range(0, len(raws), CHUNK)
            ]
        return cls(facts, job_id, domain, bundles, given, claims, lazy, listed, parts)

    def cancel(self) -> None:
        """Drop the parts no worker has begun (a check that ends without a verdict)."""
        for parts in self.parts.values():
            for p in parts:
                if isinstance(p, _Part):
                    p.future.cancel()

    def finish(self, facts: ChainFacts | None = None) -> StepsVerdict:
        """The verdict, once the workers are done, with `facts` if it was started without
        them (the facts complete by now)."""
        facts = facts or self.facts
        if facts is None:
            raise ValueError("a check started without the chain's facts needs them to finish")
        if (facts.job_id, facts.domain) != (self.job_id, self.domain):
            self.cancel()  # examined for another job or domain than the chain's: start again
            return start_steps(facts, self.bundles, list(self.given)).finish()
        self.facts = facts
        with gc_paused():
            return self._finish(facts)

    def _finish(self, facts: ChainFacts) -> StepsVerdict:
        claims, lazy, listed = self.claims, self.lazy, self.listed
        job_id = facts.job_id
        findings: list[Finding] = []
        shown: dict[tuple[int, str], int] = {}
        omitted: dict[tuple[int, str], tuple[Severity, int]] = {}

        def flag(sev: Severity, code: str, sid: int, text: str, **ev: Any) -> None:
            key = (sid, code)
            n = shown.get(key, 0)
            if n >= FINDINGS_PER_KIND:
                worst, more = omitted.get(key, (sev, 0))
                omitted[key] = (min(worst, sev, key=ORDER.__getitem__), more + 1)
                return
            shown[key] = n + 1
            findings.append(
                Finding(
                    severity=sev,
                    code=code,
                    statement=f"split {sid}: {text}",
                    evidence={"job": job_id, "split": sid, **ev},
                )
            )

        results = {}
        for sid, items in self.given.items():
            done = [p.result() if isinstance(p, _Part) else p for p in self.parts.pop(sid)]
            runs = [p for p in done if isinstance(p, Run)]
            res = SplitResult(sid)
            whole = bool(runs) and len(runs) == len(done)  # no steps: the step-by-step checks
            if whole and _check_runs(facts, sid, runs, claims[sid], res, flag):
                res.items = lazy.get(sid) or listed.get(sid) or [it for _, it in items]
                res.steps, res.first = len(res.items), runs[0].edges[0]
                res.last = runs[-1].edges[1]
                handovers = [h for r in runs for h in r.handovers]
            else:
                rows: list[Examined | str] = []
                if sid in lazy:  # decoded here only when a step needs a finding
                    items = list(enumerate(lazy[sid]))
                    rows = examine(facts.domain, _raws(items))
                else:
                    if sid in listed:
                        items = list(enumerate(listed[sid]))
                    for i, p in enumerate(done):
                        chunk = items[i * CHUNK : (i + 1) * CHUNK]
                        rows += examine(facts.domain, _raws(chunk)) if isinstance(p, Run) else p
                handovers = _check_rows(facts, sid, items, rows, claims[sid], res, flag)
            if facts.handovers is not None:
                for seq, (to_split, lot) in sorted(handovers):
                    if (sid, to_split, lot) not in facts.handovers:
                        flag(
                            Severity.MAJOR,
                            "one-sided-handover",
                            sid,
                            f"it says it handed lot {lot} to split {to_split} (step {seq}), "
                            "but the receiver never signed for it on chain",
                            seq=seq,
                        )
            results[sid] = res
        for (sid, code), (sev, more) in omitted.items():
            findings.append(
                Finding(
                    severity=sev,
                    code=code,
                    statement=f"split {sid}: {more:,} more {code} findings, not listed "
                    f"(the first {FINDINGS_PER_KIND} are)",
                    evidence={"job": job_id, "split": sid, "omitted": more},
                )
            )
        findings.sort(key=lambda f: f.sort_key())
        return StepsVerdict(job_id, findings, results)


def _check_runs(
    facts: ChainFacts, sid: int, runs: list[Run], claims: list[Any], res: SplitResult, flag: Flag
) -> bool:
    """The split-level checks of a split given as Runs: its steps run from 0 unbroken,
    accountable to the split's factory and signed by one key. False, having stated
    nothing, when any check would find something: the step-by-step checks then say what."""
    first, member, signer = runs[0], runs[0].member, runs[0].signer
    if first.first_seq != 0 or first.first_prev != ZERO:
        return False
    for before, after in itertools.pairwise(runs):
        if (
            after.first_seq != before.last_seq + 1
            or after.first_prev != before.last_digest
            or after.member != member
            or after.signer != signer
        ):
            return False
    if facts.factory(sid).lower() != member.lower():
        return False
    times = [t for r in runs for t in r.times]
    digests = b"".join(r.digests for r in runs)
    last = runs[-1].last_seq
    anchors = facts.anchors.get(sid, [])
    signer_text = address_from_bytes(signer)
    roots = {k: v for r in runs for k, v in r.roots.items()}
    leaves = b""  # joined when a range no worker rooted first needs them
    covered, count = 0, 0
    for a in anchors:
        lo, hi = a.from_seq, a.to_seq
        if lo != covered or hi < lo or hi > last:
            return False
        root = roots.get((lo, hi))
        if root is None:
            leaves = leaves or b"".join(r.leaves for r in runs)
            root = root_of([leaves[32 * q : 32 * q + 32] for q in range(lo, hi + 1)])
        if root != a.root or digests[32 * hi : 32 * hi + 32] != a.head:
            return False
        span = times[lo : hi + 1]
        earliest, latest = min(span), max(span)
        w = facts.authority.window(member, signer_text, a.block)
        if (
            latest > a.timestamp
            or not w.authorized
            or earliest < w.member_since
            or earliest < w.bound_since
            or (w.expires and (latest >= w.expires or a.timestamp >= w.expires))
        ):
            return False
        covered, count = hi + 1, count + hi - lo + 1
    _cross_check(anchors, claims, sid, flag)
    res.anchored = res.verified_signatures = count
    for seq in range(covered, last + 1):  # the steps after the last anchor
        step_hash = digests[32 * seq : 32 * seq + 32]
        flag(
            Severity.MINOR,
            "unanchored",
            sid,
            f"step {seq} is not anchored on chain",
            **_ev(seq, step_hash),
        )
        block = facts.latest_block
        w = facts.authority.window(member, signer_text, block)
        if _authority(w, flag, sid, member, signer_text, seq, times[seq], step_hash, block, None):
            res.verified_signatures += 1
    return True


def _check_rows(
    facts: ChainFacts,
    sid: int,
    items: list[tuple[int, BundleStep]],
    rows: list[Examined | str],
    claims: list[Any],
    res: SplitResult,
    flag: Flag,
) -> list[tuple[int, tuple[int, str]]]:
    """The step-by-step checks of one split; its steps' hand-over claims."""
    job_id = facts.job_id
    per_step: dict[tuple[int, bytes, str, str], _Entry] = {}
    handovers: list[tuple[int, tuple[int, str]]] = []
    for (index, item), ex in zip(items, rows, strict=True):
        if isinstance(ex, str):
            flag(Severity.CRITICAL, "bad-record", sid, ex, item=index)
            continue
        seq, j, s, prev, member, when, digest, leaf, signer_raw, pstate, handover, same = ex
        key = (seq, digest, str(item.signature), str(item.payload))
        if key in per_step:
            continue  # the same step given twice
        if j != job_id or s != sid:
            flag(
                Severity.CRITICAL,
                "misfiled",
                sid,
                "the step names another job or split",
                **_ev(seq, digest),
            )
        signer = address_from_bytes(signer_raw) if signer_raw is not None else None
        per_step[key] = _Entry(seq, digest, prev, member, when, leaf, signer, item)
        if not same:
            flag(
                Severity.CRITICAL,
                "hash-mismatch",
                sid,
                "the stated step hash is not the hash of the record",
                **_ev(seq, digest),
            )
        if pstate == PAYLOAD_MISSING:
            flag(
                Severity.MINOR,
                "no-payload",
                sid,
                "the step's payload is not in the bundle",
                **_ev(seq, digest),
            )
        elif pstate == PAYLOAD_MISMATCH:
            flag(
                Severity.CRITICAL,
                "payload-mismatch",
                sid,
                f"the payload of step {seq} does not hash to the signed payloadHash "
                "(edited after signing)",
                **_ev(seq, digest),
            )
        if signer is None:
            flag(
                Severity.CRITICAL,
                "bad-signature",
                sid,
                "the signature recovers to no key",
                **_ev(seq, digest),
            )
        if handover is not None:
            handovers.append((seq, handover))
    entries = [per_step[k] for k in sorted(per_step)]
    res.steps, res.items = len(entries), [e.item for e in entries]
    if entries:
        res.first, res.last = entries[0].item.record, entries[-1].item.record
    _check_split(facts, sid, entries, claims, res, flag)
    return handovers


def _ev(seq: int, step_hash: bytes) -> dict[str, Any]:
    """A step's evidence: its sequence number and hash (built only when a finding needs it)."""
    return {"seq": seq, "step": "0x" + step_hash.hex()}


def _first_of_each(items: list[tuple[int, BundleStep]]) -> list[tuple[int, BundleStep]]:
    """Drop items given twice byte for byte (overlapping bundles) before the costly work."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for index, item in items:
        key = (str(item.signature), str(item.payload), repr(item.record))
        if key not in seen:
            seen.add(key)
            out.append((index, item))
    return out


def _check_split(
    facts: ChainFacts,
    sid: int,
    entries: list[_Entry],
    claims: list[Any],
    res: SplitResult,
    flag: Flag,
) -> None:
    factory = facts.factory(sid)
    by_seq: dict[int, _Entry] = {}
    expected_seq, head = 0, ZERO
    for e in entries:
        seq = e.seq
        if seq in by_seq:
            flag(
                Severity.CRITICAL,
                "duplicate-seq",
                sid,
                f"two different steps claim sequence number {seq}",
                **_ev(seq, e.step_hash),
            )
        elif seq != expected_seq:
            flag(
                Severity.CRITICAL,
                "sequence-gap",
                sid,
                f"expected step {expected_seq}, found step {seq}",
                **_ev(seq, e.step_hash),
            )
        if e.prev_hash != head:
            flag(
                Severity.CRITICAL,
                "chain-break",
                sid,
                f"step {seq} does not name the step before it as its predecessor",
                **_ev(seq, e.step_hash),
            )
        if factory.lower() != e.member.lower():
            flag(
                Severity.CRITICAL,
                "wrong-factory",
                sid,
                f"step {seq} is accountable to {e.member}, the split is {factory}'s",
                **_ev(seq, e.step_hash),
            )
        by_seq.setdefault(seq, e)
        if seq >= expected_seq:
            expected_seq, head = seq + 1, e.step_hash
    anchors = facts.anchors.get(sid, [])
    _cross_check(anchors, claims, sid, flag)
    _check_anchors(facts, sid, entries, by_seq, anchors, res, flag)


def _cross_check(anchors: list[Anchor], claims: list[Any], sid: int, flag: Flag) -> None:
    """The bundle's anchors must be the chain's: one that is not is a false claim."""
    on_chain = {a.index: a for a in anchors}
    seen: set[int] = set()
    for c in claims:
        if c.index in seen:
            continue
        seen.add(c.index)
        a = on_chain.get(c.index)
        stated = (c.from_seq, c.to_seq, str(c.root).lower(), str(c.head).lower())
        if a is None or stated != (a.from_seq, a.to_seq, "0x" + a.root.hex(), "0x" + a.head.hex()):
            flag(
                Severity.CRITICAL,
                "anchor-mismatch",
                sid,
                f"the bundle's anchor {c.index} (steps {c.from_seq}-{c.to_seq}, root {c.root}) "
                "is not on chain: the chain's anchors are used instead",
                anchor=c.index,
            )
        elif c.tx_hash is not None and str(c.tx_hash).lower() != a.tx_hash.lower():
            flag(
                Severity.CRITICAL,
                "anchor-mismatch",
                sid,
                f"the bundle says transaction {c.tx_hash} made anchor {c.index}; the chain "
                f"says {a.tx_hash}",
                anchor=c.index,
                tx=a.tx_hash,
            )


def _check_anchors(
    facts: ChainFacts,
    sid: int,
    entries: list[_Entry],
    by_seq: dict[int, _Entry],
    anchors: list[Anchor],
    res: SplitResult,
    flag: Flag,
) -> None:
    anchor_of: dict[int, Anchor] = {}
    rebuilt: set[int] = set()  # anchors whose whole range was rebuilt into their root
    for anchor in anchors:
        covered = [by_seq.get(q) for q in range(anchor.from_seq, anchor.to_seq + 1)]
        present = [c for c in covered if c is not None]
        where = {"tx": anchor.tx_hash, "block": anchor.block, "anchor": anchor.index}
        if len(present) == len(covered):
            if root_of([c.leaf for c in present]) != anchor.root:
                flag(
                    Severity.CRITICAL,
                    "not-included",
                    sid,
                    f"steps {anchor.from_seq}-{anchor.to_seq} are not the ones anchored in anchor "
                    f"{anchor.index}: they were replaced, reordered or edited after anchoring",
                    **where,
                )
                continue
            if present[-1].step_hash != anchor.head:
                flag(
                    Severity.CRITICAL,
                    "head-mismatch",
                    sid,
                    f"anchor {anchor.index}'s head is not step {anchor.to_seq}'s hash",
                    **where,
                )
            rebuilt.add(anchor.index)
        else:
            missing = [
                q
                for q, c in zip(range(anchor.from_seq, anchor.to_seq + 1), covered, strict=True)
                if c is None
            ]
            flag(
                Severity.MAJOR,
                "missing-steps",
                sid,
                f"{len(missing)} step(s) anchored in anchor {anchor.index} are not in the "
                f"bundles: {_ranges(missing)}",
                **where,
            )
        for q in range(anchor.from_seq, anchor.to_seq + 1):
            anchor_of[q] = anchor
    authority = facts.authority
    seen: set[int] = set()
    for e in entries:
        if e.seq in seen:
            continue  # a second step claiming a number is already a finding
        seen.add(e.seq)
        seq, step_time = e.seq, e.time
        a: Anchor | None = anchor_of.get(seq)
        if a is None:
            flag(
                Severity.MINOR,
                "unanchored",
                sid,
                f"step {seq} is not anchored on chain",
                **_ev(seq, e.step_hash),
            )
            block = facts.latest_block
        else:
            if a.index not in rebuilt:  # the root was not rebuilt: check this step's proof
                try:
                    proof = [bytes.fromhex(p[2:]) for p in e.item.proof or []]
                except (TypeError, ValueError):
                    proof = []
                if process_proof(e.leaf, proof) != a.root:
                    flag(
                        Severity.CRITICAL,
                        "not-included",
                        sid,
                        f"step {seq} is not in anchor {a.index}'s Merkle root",
                        tx=a.tx_hash,
                        block=a.block,
                        **_ev(seq, e.step_hash),
                    )
                    continue
            res.anchored += 1
            block = a.block
            if step_time > a.timestamp:
                flag(
                    Severity.CRITICAL,
                    "after-anchor",
                    sid,
                    f"step {seq} is dated {step_time}, after its anchor at {a.timestamp} "
                    "(backdating is impossible, so the date is false)",
                    tx=a.tx_hash,
                    block=a.block,
                    **_ev(seq, e.step_hash),
                )
        signer = e.signer
        if signer is None:
            continue
        w = authority.window(e.member, signer, block)
        if _authority(w, flag, sid, e.member, signer, seq, step_time, e.step_hash, block, a):
            res.verified_signatures += 1


def _authority(
    w: Window,
    flag: Flag,
    sid: int,
    member: str,
    signer: str,
    seq: int,
    step_time: int,
    step_hash: bytes,
    block: int,
    a: Anchor | None,
) -> bool:
    """Whether `signer` could sign step `seq` for `member` (as of `block`, at the step's
    time); a finding says why not."""
    if not w.authorized:
        flag(
            Severity.CRITICAL,
            "unauthorized-signer",
            sid,
            f"{signer} could not sign for {member} at block {block} (not the "
            "factory, not an active factory, or a revoked or unbound device key)",
            signer=signer,
            block=block,
            **_ev(seq, step_hash),
        )
    elif step_time < w.member_since:
        flag(
            Severity.CRITICAL,
            "signer-not-yet-valid",
            sid,
            f"step {seq} is dated {step_time}, before {member} was admitted (at {w.member_since})",
            signer=signer,
            **_ev(seq, step_hash),
        )
    elif step_time < w.bound_since:
        flag(
            Severity.CRITICAL,
            "backdated-before-binding",
            sid,
            f"step {seq} is dated {step_time}, before device key {signer} was bound to "
            f"{member} (at {w.bound_since}): the key could not sign for it then, so "
            "the step was back-dated",
            signer=signer,
            bound_since=w.bound_since,
            **_ev(seq, step_hash),
        )
    elif w.expires and step_time >= w.expires:
        flag(
            Severity.CRITICAL,
            "signer-expired",
            sid,
            f"device key {signer} had expired ({w.expires}) by step {seq}'s time",
            signer=signer,
            **_ev(seq, step_hash),
        )
    elif w.expires and a is not None and a.timestamp >= w.expires:
        flag(
            Severity.MAJOR,
            "backdated-past-expiry",
            sid,
            f"step {seq} is dated {step_time}, before device key {signer} expired at "
            f"{w.expires}, but was anchored only at {a.timestamp}, after the expiry: "
            "nothing shows the key signed it in time (a key past its expiry may have "
            "back-dated it)",
            signer=signer,
            expired=w.expires,
            tx=a.tx_hash,
            block=a.block,
            **_ev(seq, step_hash),
        )
    else:
        return True
    return False


def _ranges(seqs: list[int]) -> str:
    out, start = [], None
    for i, q in enumerate(seqs):
        if start is None:
            start = q
        if i + 1 == len(seqs) or seqs[i + 1] != q + 1:
            out.append(f"{start}" if start == q else f"{start}-{q}")
            start = None
    return ", ".join(out[:20]) + (" …" if len(out) > 20 else "")


def verify_bundle(bundle: Bundle, w3: Web3) -> StepsVerdict:
    """Check a bundle against the chain at `w3` alone: no cofab node, no journal. The
    splits checked are the bundle's; every problem becomes a finding."""
    chain_id = int(w3.eth.chain_id)
    if chain_id != bundle.chain_id:
        return _refused(
            bundle,
            "wrong-chain",
            f"the bundle is for chain {bundle.chain_id}, the endpoint is chain {chain_id}",
        )
    address = Web3.to_checksum_address(bundle.traceability)
    if not w3.eth.get_code(address):
        return _refused(bundle, "no-contract", f"no Traceability contract at {address}")
    not_traceability: tuple[type[Exception], ...] = (*reverts(), BadFunctionCallOutput)
    split_ids = sorted({s.split_id for s in bundle.splits})
    check: StepsCheck | None = None
    try:  # the workers examine the steps while the chain's facts are read
        with gc_paused():
            check = StepsCheck.start(bundle.job_id, Domain(chain_id, address), [bundle], split_ids)
    except Exception:  # noqa: BLE001 - raised again below, after the chain's refusal if any
        check = None
    try:
        facts = facts_for(w3, address, chain_id, bundle.job_id)
    except BaseException as exc:
        if check is not None:
            check.cancel()
        if isinstance(exc, not_traceability):
            return _refused(bundle, "no-contract", f"the contract at {address} is no Traceability")
        raise
    if check is None:  # a step examined here at once raised: as before, once the facts are in
        return check_steps(facts, [bundle], split_ids)
    return check.finish(facts)


def _refused(bundle: Bundle, code: str, text: str) -> StepsVerdict:
    finding = Finding(
        severity=Severity.CRITICAL, code=code, statement=text, evidence={"job": bundle.job_id}
    )
    return StepsVerdict(bundle.job_id, [finding], {})
