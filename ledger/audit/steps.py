"""Check a split's signed steps against its anchors on chain: the heart of the audit.

Built for 100,000-step jobs: signer recovery runs on every core, inclusion is checked by
rebuilding each anchor's Merkle root from the steps it covers (three hashes per step
instead of one per proof level), and signer authority is asked of the chain once per
(member, signer, anchor block), not once per step.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from web3.contract import Contract

from ledger.audit.findings import Finding, Severity
from ledger.core.merkle import process_proof
from ledger.membership.roles import Role
from ledger.steps.anchoring import anchor_tree, step_leaf
from ledger.steps.record import ZERO, Domain, Step
from ledger.steps.signatures import checksum, recover_address

PARALLEL_FROM = 4_000  # steps; below this a process pool costs more than it saves


@dataclass(frozen=True)
class Anchor:
    index: int
    from_seq: int
    to_seq: int
    root: bytes
    head: bytes
    tx_hash: str
    block: int
    timestamp: int


def _recover_chunk(pairs: list[tuple[bytes, bytes]]) -> list[bytes | None]:
    return [recover_address(d, s) for d, s in pairs]


def recover_all(pairs: list[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Recover every signer, on all cores when there are many: worker processes take
    their share while this process recovers its own."""
    cores = min(os.cpu_count() or 1, 8)
    if len(pairs) < PARALLEL_FROM or cores < 2:
        return _recover_chunk(pairs)
    share = -(-len(pairs) // cores)
    mine, rest = pairs[:share], pairs[share:]
    size = -(-len(rest) // ((cores - 1) * 2))
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    with ProcessPoolExecutor(max_workers=cores - 1) as pool:
        futures = [pool.submit(_recover_chunk, c) for c in chunks]
        out = _recover_chunk(mine)
        for f in futures:
            out += f.result()
    return out


@dataclass(frozen=True)
class Window:
    """What the chain says of `signer` signing for `member` as of one anchor's block."""

    authorized: bool  # at the end of the block (member active factory, key bound and active)
    member_since: int  # when the member was admitted
    bound_since: int  # device keys: when the binding active at the block began; else 0
    expires: int  # device keys: expiry at the block, 0 for none


class Authority:
    """Could `signer` sign for `member` as a factory: at a block, and at a step's time.

    A device key's binding history comes from its DeviceAuthorized, DeviceRevoked and
    DeviceUnbound events (read once per key): the audit needs when the binding in force at
    the anchor began, which renewals do not move but a revocation or unbinding ends."""

    def __init__(self, consortium: Contract, block_time: Callable[[int], int]) -> None:
        self.consortium = consortium
        self.block_time = block_time
        self._cache: dict[tuple[str, str, int], Window] = {}
        self._bindings: dict[str, list[tuple[int, int, str, str]]] = {}

    def _events(self, signer: str) -> list[tuple[int, int, str, str]]:
        """(block, log index, event name, owner) of every binding change of `signer`."""
        key = signer.lower()
        if key not in self._bindings:
            found = []
            for name in ("DeviceAuthorized", "DeviceRevoked", "DeviceUnbound"):
                event = getattr(self.consortium.events, name)()
                for log in event.get_logs(from_block=0, argument_filters={"device": signer}):
                    found.append(
                        (int(log["blockNumber"]), int(log["logIndex"]), name, log["args"]["owner"])
                    )
            self._bindings[key] = sorted(found)
        return self._bindings[key]

    def bound_since(self, member: str, signer: str, block: int) -> int:
        """Block time at which `signer`'s binding to `member` in force at `block` began
        (0 if none was in force)."""
        owner, start = "", 0
        for number, _, name, who in self._events(signer):
            if number > block:
                break
            if name == "DeviceAuthorized":
                if owner != who.lower():
                    owner, start = who.lower(), number
            else:  # revoked or unbound: a later authorisation starts a new binding
                owner, start = "", 0
        return self.block_time(start) if owner == member.lower() else 0

    def window(self, member: str, signer: str, block: int) -> Window:
        key = (member.lower(), signer.lower(), block)
        if key not in self._cache:
            fns = self.consortium.functions
            ok = fns.isAuthorizedSigner(member, signer, int(Role.FACTORY), block, 0).call()
            since = int(fns.member(member).call()[2])
            bound, expires = 0, 0
            if signer.lower() != member.lower():
                _owner, _active, expires = fns.deviceAt(signer, block).call()
                bound = self.bound_since(member, signer, block) if ok else 0
            self._cache[key] = Window(bool(ok), since, bound, int(expires))
        return self._cache[key]


@dataclass
class SplitResult:
    steps: int = 0
    anchored: int = 0
    verified_signatures: int = 0


Parsed = tuple[int, Step, dict[str, Any], bytes]


def parse_items(
    items: Sequence[dict[str, Any]], domain: Domain, bad: Callable[[int, str], None]
) -> list[Parsed]:
    """(index, step, item, step hash) of every readable record; `bad` hears of the rest."""
    parsed: list[Parsed] = []
    for i, item in enumerate(items):
        try:
            step = Step.from_message(item["record"])
        except Exception as exc:  # noqa: BLE001 - any unreadable record is one finding
            bad(i, f"unreadable step record: {exc}")
            continue
        parsed.append((i, step, item, step.digest(domain)))
    return parsed


def signature_pairs(parsed: Sequence[Parsed]) -> list[tuple[bytes, bytes]]:
    out = []
    for _, _, item, digest in parsed:
        try:
            sig = bytes.fromhex(str(item.get("signature", ""))[2:])
        except ValueError:
            sig = b""
        out.append((digest, sig))
    return out


def check_split(
    *,
    job_id: int,
    split_id: int,
    factory: str,
    items: Sequence[dict[str, Any]],
    anchors: Sequence[Anchor],
    domain: Domain,
    authority: Authority,
    latest_block: int,
    parsed: Sequence[Parsed] | None = None,
    recovered: Sequence[bytes | None] | None = None,
    add: Callable[[Finding], None],
) -> SplitResult:
    """Check the bundle's steps of one split; every problem is passed to `add`.

    `parsed` and `recovered` may be computed beforehand (`parse_items`, `recover_all` over
    several splits at once, so one process pool serves a whole job)."""
    res = SplitResult()

    def finding(sev: Severity, code: str, text: str, **ev: Any) -> None:
        add(
            Finding(
                sev, code, f"split {split_id}: {text}", {"job": job_id, "split": split_id, **ev}
            )
        )

    if parsed is None:
        parsed = parse_items(
            items, domain, lambda i, msg: finding(Severity.CRITICAL, "bad-record", msg, item=i)
        )
    if recovered is None:
        recovered = recover_all(signature_pairs(parsed))
    by_seq: dict[int, tuple[Step, bytes]] = {}
    checked: list[tuple[Step, bytes, str | None, dict[str, Any]]] = []
    expected_seq, head = 0, ZERO
    for (_, step, item, digest), signer_raw in zip(parsed, recovered, strict=True):
        seq = step.seq
        res.steps += 1
        ev = {"seq": seq, "step": "0x" + digest.hex()}
        if step.job_id != job_id or step.split_id != split_id:
            finding(Severity.CRITICAL, "misfiled", "the step names another job or split", **ev)
        if seq in by_seq:
            finding(
                Severity.CRITICAL,
                "duplicate-seq",
                f"two different steps claim sequence number {seq}",
                **ev,
            )
        elif seq != expected_seq:
            finding(
                Severity.CRITICAL,
                "sequence-gap",
                f"expected step {expected_seq}, found step {seq}",
                **ev,
            )
        if step.prev_hash != head:
            finding(
                Severity.CRITICAL,
                "chain-break",
                f"step {seq} does not name the step before it as its predecessor",
                **ev,
            )
        stated = item.get("step_hash")
        if stated is not None and stated != "0x" + digest.hex():
            finding(
                Severity.CRITICAL,
                "hash-mismatch",
                "the stated step hash is not the hash of the record",
                **ev,
            )
        payload = item.get("payload")
        if payload is None:
            finding(Severity.MINOR, "no-payload", "the step's payload is not in the bundle", **ev)
        elif hashlib.sha256(str(payload).encode()).digest() != step.payload_hash:
            finding(
                Severity.CRITICAL,
                "payload-mismatch",
                f"the payload of step {seq} does not hash to the signed payloadHash "
                "(edited after signing)",
                **ev,
            )
        if factory.lower() != step.member.lower():
            finding(
                Severity.CRITICAL,
                "wrong-factory",
                f"step {seq} is accountable to {step.member}, the split is {factory}'s",
                **ev,
            )
        signer = checksum(signer_raw) if signer_raw is not None else None
        if signer is None:
            finding(Severity.CRITICAL, "bad-signature", "the signature recovers to no key", **ev)
        if seq not in by_seq:
            by_seq[seq] = (step, digest)
            checked.append((step, digest, signer, item))
        if seq >= expected_seq:
            expected_seq, head = seq + 1, digest

    _check_anchors(checked, by_seq, anchors, authority, latest_block, res, finding)
    return res


def _check_anchors(
    checked: list[tuple[Step, bytes, str | None, dict[str, Any]]],
    by_seq: dict[int, tuple[Step, bytes]],
    anchors: Sequence[Anchor],
    authority: Authority,
    latest_block: int,
    res: SplitResult,
    finding: Callable[..., None],
) -> None:
    anchor_of: dict[int, Anchor] = {}
    rebuilt: set[int] = set()  # anchors whose whole range was rebuilt into their root
    for a in anchors:
        covered = [by_seq.get(q) for q in range(a.from_seq, a.to_seq + 1)]
        present = [c for c in covered if c is not None]
        if len(present) == len(covered):
            tree = anchor_tree([(s.seq, d) for s, d in present])  # type: ignore[misc]
            if tree.root != a.root:
                finding(
                    Severity.CRITICAL,
                    "not-included",
                    f"steps {a.from_seq}-{a.to_seq} are not the ones anchored in anchor "
                    f"{a.index}: they were replaced, reordered or edited after anchoring",
                    tx=a.tx_hash,
                    block=a.block,
                    anchor=a.index,
                )
                continue
            if present[-1][1] != a.head:
                finding(
                    Severity.CRITICAL,
                    "head-mismatch",
                    f"anchor {a.index}'s head is not step {a.to_seq}'s hash",
                    tx=a.tx_hash,
                    block=a.block,
                    anchor=a.index,
                )
            rebuilt.add(a.index)
        else:
            missing = [
                q
                for q, c in zip(range(a.from_seq, a.to_seq + 1), covered, strict=True)
                if c is None
            ]
            finding(
                Severity.MAJOR,
                "missing-steps",
                f"{len(missing)} step(s) anchored in anchor {a.index} are not in the "
                f"bundles: {_ranges(missing)}",
                tx=a.tx_hash,
                block=a.block,
                anchor=a.index,
            )
        for q in range(a.from_seq, a.to_seq + 1):
            anchor_of[q] = a
    for step, digest, signer, item in checked:
        seq = step.seq
        ev = {"seq": seq, "step": "0x" + digest.hex()}
        a = anchor_of.get(seq)
        if a is None:
            finding(Severity.MINOR, "unanchored", f"step {seq} is not anchored on chain", **ev)
            block = latest_block
        else:
            if a.index not in rebuilt:  # the root was not rebuilt: check this step's proof
                proof = [bytes.fromhex(p[2:]) for p in item.get("proof") or []]
                if process_proof(step_leaf(seq, digest), proof) != a.root:
                    finding(
                        Severity.CRITICAL,
                        "not-included",
                        f"step {seq} is not in anchor {a.index}'s Merkle root",
                        tx=a.tx_hash,
                        block=a.block,
                        **ev,
                    )
                    continue
            res.anchored += 1
            block = a.block
            if step.time > a.timestamp:
                finding(
                    Severity.CRITICAL,
                    "after-anchor",
                    f"step {seq} is dated {step.time}, after its anchor at {a.timestamp} "
                    "(backdating is impossible, so the date is false)",
                    tx=a.tx_hash,
                    block=a.block,
                    **ev,
                )
        if signer is None:
            continue
        w = authority.window(step.member, signer, block)
        if not w.authorized:
            finding(
                Severity.CRITICAL,
                "unauthorized-signer",
                f"{signer} could not sign for {step.member} at block {block} (not the "
                "factory, not an active factory, or a revoked or unbound device key)",
                signer=signer,
                block=block,
                **ev,
            )
        elif step.time < w.member_since:
            finding(
                Severity.CRITICAL,
                "signer-not-yet-valid",
                f"step {seq} is dated {step.time}, before {step.member} was admitted "
                f"(at {w.member_since})",
                signer=signer,
                **ev,
            )
        elif step.time < w.bound_since:
            finding(
                Severity.CRITICAL,
                "backdated-before-binding",
                f"step {seq} is dated {step.time}, before device key {signer} was bound to "
                f"{step.member} (at {w.bound_since}): the key could not sign for it then, so "
                "the step was back-dated",
                signer=signer,
                bound_since=w.bound_since,
                **ev,
            )
        elif w.expires and step.time >= w.expires:
            finding(
                Severity.CRITICAL,
                "signer-expired",
                f"device key {signer} had expired ({w.expires}) by step {seq}'s time",
                signer=signer,
                **ev,
            )
        elif w.expires and a is not None and a.timestamp >= w.expires:
            finding(
                Severity.MAJOR,
                "backdated-past-expiry",
                f"step {seq} is dated {step.time}, before device key {signer} expired at "
                f"{w.expires}, but was anchored only at {a.timestamp}, after the expiry: "
                "nothing shows the key signed it in time (a key past its expiry may have "
                "back-dated it)",
                signer=signer,
                expired=w.expires,
                tx=a.tx_hash,
                block=a.block,
                **ev,
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
