"""Export the proof bundle of a job's steps from this node's journal.

The bundle (`ledger.verify.bundle.Bundle`) carries per split the signed records, their
canonical payloads, each step's Merkle proof and the anchors seen on chain; checking it is
`ledger.verify`'s business, against the chain alone.
"""

from __future__ import annotations

from typing import Any

from web3.contract import Contract

from ledger.core.errors import NotFound
from ledger.steps.anchoring import anchor_tree
from ledger.steps.journal import Journal
from ledger.steps.record import Domain, types_document
from ledger.verify.bundle import AnchorClaim, Bundle, BundleStep, SplitEvidence
from ledger.verify.chain import BlockTimes, anchors_of


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


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
                    record=s.step.message(),
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
        types=types_document(),
    )


def export(
    journal: Journal, contract: Contract, chain_id: int, job_id: int, split_id: int | None = None
) -> dict[str, Any]:
    """The bundle as its JSON object (the current version)."""
    return build(journal, contract, chain_id, job_id, split_id).export()
