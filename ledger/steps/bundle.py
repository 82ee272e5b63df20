"""Proof bundles of production steps: everything a third party needs, plus a chain endpoint.

A bundle holds, per split, the signed step records with their canonical EPCIS payloads,
the Merkle proof of each step in its anchor, and the anchor transactions. `verify` checks
it against the chain alone (no cofab node, no journal): signatures and signer authority,
payload hashes, the hash chain and sequence contiguity, Merkle inclusion in the anchored
roots read from the contract, and that each step predates its anchor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from ledger.audit.steps import Authority
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.merkle import leaf_hash, process_proof
from ledger.eth.compiler import artifact
from ledger.steps import epcis
from ledger.steps.anchoring import LEAF_ENCODING, anchor_tree
from ledger.steps.journal import Journal
from ledger.steps.record import ZERO, Domain, Step, types_document
from ledger.steps.signatures import recover

FORMAT = "cofab-steps/1"


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _b(h: str) -> bytes:
    return bytes.fromhex(str(h).removeprefix("0x"))


def anchor_events(
    contract: Contract, job_id: int, split_id: int | None = None
) -> list[dict[str, Any]]:
    """StepsAnchored events of a job (or one split), oldest first."""
    filters: dict[str, Any] = {"jobId": job_id}
    if split_id is not None:
        filters["splitId"] = split_id
    logs = contract.events.StepsAnchored().get_logs(from_block=0, argument_filters=filters)
    out = []
    for ev in logs:
        a = ev["args"]
        out.append(
            {
                "split_id": int(a["splitId"]),
                "index": int(a["index"]),
                "from_seq": int(a["fromSeq"]),
                "to_seq": int(a["toSeq"]),
                "root": _hex(bytes(a["root"])),
                "previous_head": _hex(bytes(a["previousHead"])),
                "head": _hex(bytes(a["head"])),
                "anchored_by": a["anchoredBy"],
                "tx_hash": ev["transactionHash"].to_0x_hex(),
                "block_number": int(ev["blockNumber"]),
            }
        )
    return sorted(out, key=lambda a: (a["split_id"], a["index"]))


def export(
    journal: Journal, contract: Contract, chain_id: int, job_id: int, split_id: int | None = None
) -> dict[str, Any]:
    """The bundle of a job's (or one split's) steps held in this node's journal."""
    stored = journal.steps(job_id, split_id)
    if not stored:
        raise NotFound(f"no steps of job {job_id}" + (f" split {split_id}" if split_id else ""))
    domain = Domain(chain_id, contract.address)
    events = anchor_events(contract, job_id, split_id)
    w3 = contract.w3
    splits: dict[int, dict[str, Any]] = {}
    for s in stored:
        splits.setdefault(
            s.step.split_id, {"split_id": s.step.split_id, "anchors": [], "steps": []}
        )
    for ev in events:
        if ev["split_id"] in splits:
            block = w3.eth.get_block(ev["block_number"])
            splits[ev["split_id"]]["anchors"].append({**ev, "timestamp": int(block["timestamp"])})
    for sid, entry in splits.items():
        mine = [s for s in stored if s.step.split_id == sid]
        by_seq = {s.step.seq: s for s in mine}
        proofs: dict[int, tuple[int, list[bytes]]] = {}
        for a in entry["anchors"]:
            rng = [by_seq.get(q) for q in range(a["from_seq"], a["to_seq"] + 1)]
            if any(r is None for r in rng):
                continue  # this node lacks part of the range: those steps export unproven
            tree = anchor_tree([(r.step.seq, r.step_hash) for r in rng if r])
            for i, r in enumerate(rng):
                if r:
                    proofs[r.step.seq] = (a["index"], tree.proof(i))
        for s in mine:
            payload = journal.payload(s.step.payload_hash)
            proof = proofs.get(s.step.seq)
            entry["steps"].append(
                {
                    "record": s.step.message(),
                    "step_hash": _hex(s.step_hash),
                    "signature": _hex(s.signature),
                    "signer": s.signer,
                    "payload": payload.decode() if payload else None,
                    "anchor_index": proof[0] if proof else None,
                    "proof": [_hex(p) for p in proof[1]] if proof else None,
                }
            )
    return {
        "format": FORMAT,
        "chain_id": chain_id,
        "traceability": contract.address,
        "domain": domain.as_dict(),
        "types": types_document(),
        "job_id": job_id,
        "splits": [splits[k] for k in sorted(splits)],
    }


@dataclass
class Finding:
    severity: str  # "error" (the bundle contradicts the chain or itself) or "warning"
    code: str
    message: str
    split_id: int | None = None
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Verification:
    steps: int = 0
    anchored: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": self.steps,
            "anchored": self.anchored,
            "findings": [f.as_dict() for f in self.findings],
        }


def load(text: str | bytes) -> dict[str, Any]:
    try:
        bundle = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the bundle is not JSON (truncated or corrupt?): {exc}") from None
    return check_shape(bundle)


def check_shape(bundle: Any) -> dict[str, Any]:
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise InvalidInput(f"not a cofab step bundle (expected format {FORMAT!r})", field="format")
    for key in ("chain_id", "traceability", "job_id", "splits"):
        if key not in bundle:
            raise InvalidInput(f"the bundle lacks {key!r}", field=key)
    return bundle


def verify(bundle: dict[str, Any], w3: Web3) -> Verification:
    """Check a bundle against the chain at `w3`; every problem becomes a finding."""
    result = Verification()
    if int(w3.eth.chain_id) != int(bundle["chain_id"]):
        result.findings.append(
            Finding(
                "error",
                "wrong-chain",
                f"the bundle is for chain {bundle['chain_id']}, the endpoint is chain "
                f"{w3.eth.chain_id}",
            )
        )
        return result
    address = Web3.to_checksum_address(bundle["traceability"])
    if not w3.eth.get_code(address):
        result.findings.append(Finding("error", "no-contract", f"no contract at {address}"))
        return result
    trace = w3.eth.contract(address=address, abi=artifact("Traceability").abi)
    consortium = w3.eth.contract(
        address=trace.functions.consortium().call(), abi=artifact("Consortium").abi
    )
    splits = w3.eth.contract(
        address=trace.functions.splits().call(), abi=artifact("TestSplits").abi
    )
    domain = Domain(int(bundle["chain_id"]), address)
    job_id = int(bundle["job_id"])
    authority = Authority(consortium, lambda n: int(w3.eth.get_block(n)["timestamp"]))
    for entry in bundle["splits"]:
        _verify_split(result, entry, job_id, domain, trace, authority, splits)
    return result


def _anchor_block(
    trace: Contract, a: dict[str, Any], job_id: int, sid: int
) -> dict[str, Any] | None:
    """The block of the anchor's transaction, if that transaction really emitted it."""
    w3 = trace.w3
    try:
        receipt = w3.eth.get_transaction_receipt(a["tx_hash"])
    except Exception:  # noqa: BLE001 - unknown or malformed hash
        return None
    if receipt is None or receipt["status"] != 1:
        return None
    for ev in trace.events.StepsAnchored().process_receipt(receipt, errors=DISCARD):
        x = ev["args"]
        if (x["jobId"], x["splitId"], x["index"], x["fromSeq"], x["toSeq"]) == (
            job_id,
            sid,
            int(a["index"]),
            int(a["from_seq"]),
            int(a["to_seq"]),
        ) and _hex(bytes(x["root"])) == a["root"]:
            return dict(w3.eth.get_block(receipt["blockNumber"]))
    return None


def _verify_split(
    result: Verification,
    entry: dict[str, Any],
    job_id: int,
    domain: Domain,
    trace: Contract,
    authority: Authority,
    splits: Contract,
) -> None:
    sid = int(entry["split_id"])
    factory = splits.functions.splitFactory(job_id, sid).call()

    def add(sev: str, code: str, msg: str, seq: int | None = None) -> None:
        result.findings.append(Finding(sev, code, msg, sid, seq))

    def signs_at(member: str, signer: str, block: int, when: int) -> bool:
        """`isAuthorizedSigner(member, signer, FACTORY, block, when)`, from one chain read
        per (member, signer, anchor block) instead of one per step: only a device key's
        expiry depends on the time."""
        w = authority.window(member, signer, block)
        return w.authorized and (not w.expires or when < w.expires)

    anchors: dict[int, dict[str, Any]] = {}
    for a in entry.get("anchors", []):
        index, root, head_ = int(a["index"]), _b(a["root"]), _b(a["head"])
        if not trace.functions.isAnchor(job_id, sid, index, root, head_).call():
            add("error", "anchor-mismatch", f"anchor {index} is not on chain with that root/head")
            continue
        block = _anchor_block(trace, a, job_id, sid)
        if block is None:
            add(
                "error",
                "anchor-tx-mismatch",
                f"transaction {a.get('tx_hash')} did not anchor anchor {index}",
            )
            continue
        anchors[index] = {
            "root": root,
            "timestamp": int(block["timestamp"]),
            "block": int(block["number"]),
            "from": int(a["from_seq"]),
            "to": int(a["to_seq"]),
        }
    expected_seq, head = 0, ZERO
    for item in entry.get("steps", []):
        try:
            step = Step.from_message(item["record"])
        except (InvalidInput, KeyError, TypeError) as exc:
            add("error", "bad-record", f"unreadable step record: {exc}")
            continue
        seq = step.seq
        result.steps += 1
        if step.job_id != job_id or step.split_id != sid:
            add("error", "misfiled", "step belongs to another job or split", seq)
        if seq != expected_seq:
            add("error", "sequence-gap", f"expected step {expected_seq}, found {seq}", seq)
        if step.prev_hash != head:
            add("error", "chain-break", "previous hash does not name the preceding step", seq)
        digest = step.digest(domain)
        if _hex(digest) != item.get("step_hash"):
            add("error", "hash-mismatch", "the stated step hash is not the record's hash", seq)
        signer = recover(digest, _b(item.get("signature", "0x")))
        if signer is None:
            add("error", "bad-signature", "the signature recovers to no key", seq)
        payload = item.get("payload")
        if payload is None:
            add("warning", "no-payload", "the payload is not in the bundle", seq)
        elif epcis.payload_hash(payload.encode()) != step.payload_hash:
            add("error", "payload-mismatch", "the payload does not hash to payloadHash", seq)
        if factory.lower() != step.member.lower():
            add("error", "wrong-factory", f"the split belongs to {factory}", seq)
        idx = item.get("anchor_index")
        if idx is None or idx not in anchors:
            add("warning", "unanchored", "no anchor proves this step", seq)
        elif not anchors[idx]["from"] <= seq <= anchors[idx]["to"]:
            add("error", "not-included", f"step {seq} is outside anchor {idx}'s range", seq)
        else:
            anchor = anchors[idx]
            leaf = leaf_hash(LEAF_ENCODING, (seq, digest))
            if process_proof(leaf, [_b(p) for p in item.get("proof") or []]) != anchor["root"]:
                add("error", "not-included", f"the step is not in anchor {idx}'s Merkle root", seq)
            else:
                result.anchored += 1
            if step.time > anchor["timestamp"]:
                add("error", "after-anchor", "the step is dated after its anchor", seq)
            if signer:
                block = anchor["block"]
                if not signs_at(step.member, signer, block, step.time):
                    add(
                        "error",
                        "unauthorized-signer",
                        f"{signer} could not sign for {step.member} when anchored",
                        seq,
                    )
                elif signer.lower() != step.member.lower() and not signs_at(
                    step.member, signer, block, anchor["timestamp"]
                ):
                    add(
                        "warning",
                        "backdated-past-expiry",
                        f"the step is dated before {signer} expired but anchored after it",
                        seq,
                    )
        expected_seq, head = seq + 1, digest
