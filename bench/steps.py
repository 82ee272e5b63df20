"""Production steps: sign/verify rates and gas per anchored step.

    .venv/bin/python bench/steps.py [--quick]

Each figure is printed beside a reference measured in the same run:
- signatures (one core): cofab against eth-account on the same items, and the per-step
  paths that matter (ingest's record-to-signer check, the audit's parse + digest + recover)
  as fractions of the C limit (libsecp256k1 recover + keccak through coincurve, nothing
  else), all on equal item counts in short alternating turns so the machine's load falls on
  each alike; target >= 0.8 of the C limit;
- anchoring gas against EAS `timestamp` of one Merkle root (the same commitment, without
  cofab's checks) and EAS `attest` per record, both deployed from the EAS npm package on
  the same embedded chain (bench/references.py).

The durable HTTP ingest rate has its own bench, bench/ingest.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from references import c_limit_recover, interleaved, load, measure_eas, verdict

from ledger.eth.chain import Backend
from ledger.eth.compiler import artifact
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.steps import signatures as fast
from ledger.steps.anchoring import anchor_tree
from ledger.steps.ingest import _signature as ingest_signature
from ledger.steps.record import Domain, Step, typed_data
from ledger.verify.checker import examine

SIGN_TARGET, VERIFY_TARGET = 30_000, 20_000  # per second, one core
C_LIMIT_TARGET = 0.8
CHUNK = 250  # items per turn: short turns share a busy machine's load alike
ANCHOR_TARGETS = (100, 60)  # gas per step of an anchor (a split's first, and later), at 1,024 steps


def _pin_one_core() -> set[int]:
    """Pin this process to one core (the signature rates are per core); return the old set."""
    cores = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    if cores:
        os.sched_setaffinity(0, {min(cores)})
    return cores


def _steps(n: int, member: str) -> list[Step]:
    return [
        Step(
            1,
            1,
            i,
            os.urandom(32),
            "assembling",
            os.urandom(32),
            bytes(32),
            1_700_000_000 + i,
            member,
        )
        for i in range(n)
    ]


def bench_signatures(n_ref: int, n_limit: int) -> None:
    """Two comparisons, each on one item list shared by the implementations compared."""
    acct = Account.create()
    domain = Domain(31337, "0x" + "ab" * 20)
    signer = fast.Signer(acct.key)
    address = acct.address

    # cofab against eth-account: n_ref items each (eth-account is the slow one)
    steps = _steps(n_ref, address)
    sigs = [signer.sign(s.digest(domain)) for s in steps]
    pairs = list(zip(steps, sigs, strict=True))

    def ref_sign(part: slice) -> None:
        for s in steps[part]:
            Account.sign_message(encode_typed_data(full_message=typed_data(s, domain)), acct.key)

    def ref_verify(part: slice) -> None:
        for s, sig in pairs[part]:
            message = encode_typed_data(full_message=typed_data(s, domain))
            assert Account.recover_message(message, signature=sig) == address

    def our_sign(part: slice) -> None:
        for s in steps[part]:
            signer.sign(s.digest(domain))

    def our_verify(part: slice) -> None:
        for s, sig in pairs[part]:
            assert fast.verify(s.digest(domain), sig, address)

    rates = interleaved(
        {"ref_sign": ref_sign, "sign": our_sign, "ref_verify": ref_verify, "verify": our_verify},
        n_ref,
        chunk=100,
        passes=1,
    )
    print(
        f"signatures, one core, EIP-712 ProductionStep, digest included "
        f"({n_ref:,} items each, in turns of 100, CPU time; {load()})"
    )
    for op, target in (("sign", SIGN_TARGET), ("verify", VERIFY_TARGET)):
        ours, ref = rates[op], rates["ref_" + op]
        print(
            f"  {op:6}  eth-account {ref:>9,.0f}/s   cofab {ours:>9,.0f}/s   "
            f"x{ours / ref:.1f}   target >= {target:,}/s  {verdict(ours >= target)}"
        )

    # the per-step paths against the C limit: n_limit items each
    steps = _steps(n_limit, address)
    digests = [s.digest(domain) for s in steps]
    sigs = [signer.sign(d) for d in digests]
    raw_pairs = list(zip(digests, sigs, strict=True))
    items: list[dict[str, Any]] = [
        {"record": s.message(), "signature": "0x" + sig.hex()}
        for s, sig in zip(steps, sigs, strict=True)
    ]

    def recover_only(part: slice) -> None:
        for d, sig in raw_pairs[part]:
            assert fast.verify(d, sig, address)

    def ingest_path(part: slice) -> None:
        # Ingestor.verify's signature part: record read, signature form, digest, signer
        for item in items[part]:
            step = Step.from_message(item["record"])
            sig = ingest_signature(item["signature"])
            assert fast.recover(step.digest(domain), sig) == step.member

    def audit_path(part: slice) -> None:
        # the checker's per-step path on one core: parse, digest, leaf, recover
        for row in examine(
            domain, [(i["record"], i["signature"], None, None) for i in items[part]]
        ):
            assert not isinstance(row, str) and row[8] is not None

    runs = {
        "limit": c_limit_recover(raw_pairs),
        "verify": recover_only,
        "ingest": ingest_path,
        "audit": audit_path,
    }
    rates = interleaved(runs, n_limit, CHUNK)
    limit = rates["limit"]
    print(
        f"\nper-step paths against the C limit, one core ({n_limit:,} items each, "
        f"in turns of {CHUNK}, CPU time; {load()})"
    )
    print(f"  C limit: libsecp256k1 recover + keccak (coincurve) {limit:>9,.0f}/s   1.00")
    labels = {
        "verify": "cofab verify(digest, signature, address)",
        "ingest": "ingest: record -> digest -> signer",
        "audit": "audit/verify: parse + digest + leaf + recover",
    }
    for key, label in labels.items():
        share = rates[key] / limit
        target = f"target >= {C_LIMIT_TARGET}: {verdict(share >= C_LIMIT_TARGET)}"
        print(
            f"  {label:50} {rates[key]:>9,.0f}/s   {share:.2f}"
            + (f"   {target}" if key != "verify" else "")
        )


def bench_anchor_gas(sizes: list[int]) -> None:
    os.environ.setdefault("COFAB_PASSPHRASE", "bench")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-steps-") as tmp:
        node = Node.start(
            NodeOptions(backend=Backend.EMBEDDED, data_dir=Path(tmp), kdf_iterations=1024)
        )
        try:
            _anchor_gas(node, sizes)
        finally:
            node.close()


def _anchor_gas(node: Node, sizes: list[int]) -> None:
    op = node.sender()
    eas = measure_eas(op)
    factory = node.add_signer(Account.create())
    node.consortium.propose_admit(op, factory.address, int(Role.FACTORY))

    def deploy(name: str, *args: object) -> Any:
        art = artifact(name)
        r = op.deploy(art.abi, art.bytecode, *args)
        return node.chain.w3.eth.contract(address=r["contractAddress"], abi=art.abi)

    splits = deploy("TestSplits")
    trace = deploy("Traceability", node.consortium.address, splits.address)
    print("\n" + "\n".join(eas.lines()))
    print(
        "\nanchoring gas (Traceability.anchor; first anchor of a split / later anchors) "
        "against EAS timestamp of one root covering as many steps"
    )
    per_step: list[float] = []
    for job, size in enumerate(sizes, start=1):
        op.transact(splits.functions.setSplit(job, 1, factory.address, op.address))
        used = []
        root = head = bytes(32)
        for round_ in range(2):
            hashes = [os.urandom(32) for _ in range(size)]
            first = round_ * size
            tree = anchor_tree([(first + i, h) for i, h in enumerate(hashes)])
            fn = trace.functions.anchor(
                job, 1, first, first + size - 1, root, head, hashes[-1], tree.root
            )
            used.append(int(factory.transact(fn)["gasUsed"]))
            root, head = tree.root, hashes[-1]
        per_step = [u / size for u in used]
        print(
            f"  {size:>5} steps/anchor: {used[0]:>7,} / {used[1]:>7,} gas "
            f"= {per_step[0]:>9,.1f} / {per_step[1]:>9,.1f} per step   "
            f"EAS timestamp(root) {eas.timestamp / size:>9,.1f} per step   "
            f"cofab/EAS {used[0] / eas.timestamp:.2f}x / {used[1] / eas.timestamp:.2f}x"
        )
    for target in ANCHOR_TARGETS:
        print(
            f"  target <= {target} gas per step at {sizes[-1]:,}: "
            f"first anchor {verdict(per_step[0] <= target)} ({per_step[0]:.1f}), "
            f"later anchors {verdict(per_step[1] <= target)} ({per_step[1]:.1f})"
        )
    print(
        f"  references at {sizes[-1]:,}: "
        f"EAS timestamp of one root {eas.timestamp / sizes[-1]:.1f} per step; "
        f"EAS attest {eas.attest:,} per record, multiAttest {eas.per_attest_in_multi:,.0f} "
        f"per record (x{eas.per_attest_in_multi / per_step[1]:,.0f} a later anchor's)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    args = parser.parse_args()
    cores = _pin_one_core()
    try:
        bench_signatures(500 if args.quick else 2_000, 2_000 if args.quick else 10_000)
    finally:
        if cores:
            os.sched_setaffinity(0, cores)  # the chain and the node below use the whole machine
    bench_anchor_gas([1, 64, 1024])


if __name__ == "__main__":
    main()
