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

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.exceptions import BadFunctionCallOutput

from ledger.core.abi import address_from_bytes
from ledger.core.merkle import StandardMerkleTree, process_proof
from ledger.eth.tx import reverts
from ledger.steps.anchoring import LEAF_ENCODING, step_leaf
from ledger.steps.bundle import Anchor, Bundle, BundleStep
from ledger.steps.epcis import payload_hash
from ledger.steps.record import ZERO, Domain, Step
from ledger.steps.signatures import recover_address
from ledger.verify.chain import ChainFacts, facts_for
from ledger.verify.findings import Finding, Severity, counts, verdict

PARALLEL_FROM = 4_000  # steps; below this a process pool costs more than it saves
HANDOVER_KEY = "cofab:handover"
PAYLOAD_OK, PAYLOAD_MISSING, PAYLOAD_MISMATCH = 0, 1, 2

# What the per-step work yields for a readable record:
# (seq, job_id, split_id, prev_hash, member, time, digest, leaf, signer, payload, handover)
Examined = tuple[
    int, int, int, bytes, str, int, bytes, bytes, bytes | None, int, tuple[int, str] | None
]


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
        doc = json.loads(payload)
        h = doc.get(HANDOVER_KEY) if isinstance(doc, dict) else None
        if isinstance(h, dict) and "toSplit" in h:
            return int(h["toSplit"]), str(h.get("lot", ""))
    except (ValueError, TypeError):
        pass
    return None


def examine(domain: Domain, raws: Sequence[tuple[Any, Any, Any]]) -> list[Examined | str]:
    """The per-step work for (record, signature, payload) triples: an Examined tuple, or
    the reason the record cannot be read. Pure, so it runs in any process."""
    out: list[Examined | str] = []
    for record, signature, payload in raws:
        try:
            step = Step.from_message(record)
        except Exception as exc:  # noqa: BLE001 - any unreadable record is one finding
            out.append(f"unreadable step record: {exc}")
            continue
        digest = step.digest(domain)
        if payload is None:
            state, handover = PAYLOAD_MISSING, None
        elif isinstance(payload, str):
            ok = payload_hash(payload.encode()) == step.payload_hash
            state = PAYLOAD_OK if ok else PAYLOAD_MISMATCH
            maybe = "handover" in payload or "\\u" in payload  # escapes could hide the key
            handover = _handover(payload) if maybe else None
        else:  # the canonical text is signed; a parsed object is not that text
            state, handover = PAYLOAD_MISMATCH, None
        out.append(
            (
                step.seq,
                step.job_id,
                step.split_id,
                step.prev_hash,
                step.member,
                step.time,
                digest,
                step_leaf(step.seq, digest),
                recover_address(digest, _signature(signature)),
                state,
                handover,
            )
        )
    return out


def examine_all(domain: Domain, raws: list[tuple[Any, Any, Any]]) -> list[Examined | str]:
    """`examine` on all cores when there are many steps: worker processes take their
    share while this process does its own."""
    cores = min(os.cpu_count() or 1, 8)
    if len(raws) < PARALLEL_FROM or cores < 2:
        return examine(domain, raws)
    share = -(-len(raws) // cores)
    mine, rest = raws[:share], raws[share:]
    size = -(-len(rest) // ((cores - 1) * 2))
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    with ProcessPoolExecutor(max_workers=cores - 1) as pool:
        futures = [pool.submit(examine, domain, c) for c in chunks]
        out = examine(domain, mine)
        for f in futures:
            out += f.result()
    return out


@dataclass
class SplitResult:
    split_id: int
    steps: int = 0  # distinct readable steps given
    anchored: int = 0  # of those, proven in an anchor on chain
    verified_signatures: int = 0  # signed by a key that could sign for the factory
    items: list[BundleStep] = field(default_factory=list)  # distinct, in sequence order


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "job_id": self.job_id,
            "steps": self.steps,
            "anchored": self.anchored,
            "summary": counts(self.findings),
            "findings": [f.as_dict() for f in self.findings],
        }


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


def check_steps(
    facts: ChainFacts, bundles: Sequence[Bundle], split_ids: Iterable[int]
) -> StepsVerdict:
    """Check the bundles' steps of `split_ids` against the chain's facts."""
    job_id = facts.job_id
    findings: list[Finding] = []
    given: dict[int, list[tuple[int, BundleStep]]] = {s: [] for s in split_ids}
    claims: dict[int, list[Any]] = {s: [] for s in given}
    for b in bundles:
        for entry in b.splits:
            if entry.split_id in given:
                given[entry.split_id] += list(enumerate(entry.steps))
                claims[entry.split_id] += entry.anchors
    raws, owners = [], []
    for sid, items in given.items():
        if sum(1 for b in bundles for e in b.splits if e.split_id == sid) > 1:
            items = _first_of_each(items)
            given[sid] = items
        for index, item in items:
            raws.append((item.record, item.signature, item.payload))
            owners.append((sid, index, item))
    examined = examine_all(facts.domain, raws)

    def flag(sev: Severity, code: str, sid: int, text: str, **ev: Any) -> None:
        findings.append(
            Finding(sev, code, f"split {sid}: {text}", {"job": job_id, "split": sid, **ev})
        )

    per_split: dict[int, dict[tuple[int, bytes, str, str], _Entry]] = {s: {} for s in given}
    handovers: dict[int, list[tuple[int, tuple[int, str]]]] = {s: [] for s in given}
    bad: dict[int, int] = {}
    for (sid, index, item), ex in zip(owners, examined, strict=True):
        if isinstance(ex, str):
            flag(Severity.CRITICAL, "bad-record", sid, ex, item=index)
            bad[sid] = bad.get(sid, 0) + 1
            continue
        seq, j, s, prev, member, when, digest, leaf, signer_raw, pstate, handover = ex
        key = (seq, digest, str(item.signature), str(item.payload))
        if key in per_split[sid]:
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
        per_split[sid][key] = _Entry(seq, digest, prev, member, when, leaf, signer, item)
        if item.step_hash is not None and item.step_hash != "0x" + digest.hex():
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
            handovers[sid].append((seq, handover))

    results = {}
    for sid in given:
        entries = [per_split[sid][k] for k in sorted(per_split[sid])]
        res = SplitResult(sid, steps=len(entries), items=[e.item for e in entries])
        _check_split(facts, sid, entries, claims[sid], res, flag)
        if facts.handovers is not None:
            for seq, (to_split, lot) in sorted(handovers[sid]):
                if (sid, to_split, lot) not in facts.handovers:
                    flag(
                        Severity.MAJOR,
                        "one-sided-handover",
                        sid,
                        f"it says it handed lot {lot} to split {to_split} (step {seq}), but "
                        "the receiver never signed for it on chain",
                        seq=seq,
                    )
        results[sid] = res
    findings.sort(key=lambda f: f.sort_key())
    return StepsVerdict(job_id, findings, results)


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
    flag: Any,
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


def _cross_check(anchors: list[Anchor], claims: list[Any], sid: int, flag: Any) -> None:
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
    flag: Any,
) -> None:
    anchor_of: dict[int, Anchor] = {}
    rebuilt: set[int] = set()  # anchors whose whole range was rebuilt into their root
    for a in anchors:
        covered = [by_seq.get(q) for q in range(a.from_seq, a.to_seq + 1)]
        present = [c for c in covered if c is not None]
        where = {"tx": a.tx_hash, "block": a.block, "anchor": a.index}
        if len(present) == len(covered):
            tree = StandardMerkleTree.from_leaf_hashes([c.leaf for c in present], (), LEAF_ENCODING)
            if tree.root != a.root:
                flag(
                    Severity.CRITICAL,
                    "not-included",
                    sid,
                    f"steps {a.from_seq}-{a.to_seq} are not the ones anchored in anchor "
                    f"{a.index}: they were replaced, reordered or edited after anchoring",
                    **where,
                )
                continue
            if present[-1].step_hash != a.head:
                flag(
                    Severity.CRITICAL,
                    "head-mismatch",
                    sid,
                    f"anchor {a.index}'s head is not step {a.to_seq}'s hash",
                    **where,
                )
            rebuilt.add(a.index)
        else:
            missing = [
                q
                for q, c in zip(range(a.from_seq, a.to_seq + 1), covered, strict=True)
                if c is None
            ]
            flag(
                Severity.MAJOR,
                "missing-steps",
                sid,
                f"{len(missing)} step(s) anchored in anchor {a.index} are not in the "
                f"bundles: {_ranges(missing)}",
                **where,
            )
        for q in range(a.from_seq, a.to_seq + 1):
            anchor_of[q] = a
    authority = facts.authority
    seen: set[int] = set()
    for e in entries:
        if e.seq in seen:
            continue  # a second step claiming a number is already a finding
        seen.add(e.seq)
        seq, step_time = e.seq, e.time
        if seq not in anchor_of:
            flag(
                Severity.MINOR,
                "unanchored",
                sid,
                f"step {seq} is not anchored on chain",
                **_ev(seq, e.step_hash),
            )
            block = facts.latest_block
        else:
            a = anchor_of[seq]
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
        if not w.authorized:
            flag(
                Severity.CRITICAL,
                "unauthorized-signer",
                sid,
                f"{signer} could not sign for {e.member} at block {block} (not the "
                "factory, not an active factory, or a revoked or unbound device key)",
                signer=signer,
                block=block,
                **_ev(seq, e.step_hash),
            )
        elif step_time < w.member_since:
            flag(
                Severity.CRITICAL,
                "signer-not-yet-valid",
                sid,
                f"step {seq} is dated {step_time}, before {e.member} was admitted "
                f"(at {w.member_since})",
                signer=signer,
                **_ev(seq, e.step_hash),
            )
        elif step_time < w.bound_since:
            flag(
                Severity.CRITICAL,
                "backdated-before-binding",
                sid,
                f"step {seq} is dated {step_time}, before device key {signer} was bound to "
                f"{e.member} (at {w.bound_since}): the key could not sign for it then, so "
                "the step was back-dated",
                signer=signer,
                bound_since=w.bound_since,
                **_ev(seq, e.step_hash),
            )
        elif w.expires and step_time >= w.expires:
            flag(
                Severity.CRITICAL,
                "signer-expired",
                sid,
                f"device key {signer} had expired ({w.expires}) by step {seq}'s time",
                signer=signer,
                **_ev(seq, e.step_hash),
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
                **_ev(seq, e.step_hash),
            )
        else:
            res.verified_signatures += 1


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
    try:
        facts = facts_for(w3, address, chain_id, bundle.job_id)
    except not_traceability:
        return _refused(bundle, "no-contract", f"the contract at {address} is no Traceability")
    return check_steps(facts, [bundle], sorted({s.split_id for s in bundle.splits}))


def _refused(bundle: Bundle, code: str, text: str) -> StepsVerdict:
    finding = Finding(Severity.CRITICAL, code, text, {"job": bundle.job_id})
    return StepsVerdict(bundle.job_id, [finding], {})
