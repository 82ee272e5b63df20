"""Production steps: sign/verify rates, gas per anchored step, durable HTTP ingest rate.

    .venv/bin/python bench/steps.py [--quick]

Prints figures beside a baseline measured in the same run (eth-account for signatures,
EAS attest for gas); nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger.steps import signatures as fast
from ledger.steps.record import Domain, Step, typed_data

EAS_ATTEST_GAS = 200_000  # EAS attest, per record (as quoted in the design brief)


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


def _rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def bench_signatures(n_fast: int, n_ref: int) -> None:
    acct = Account.create()
    domain = Domain(31337, "0x" + "ab" * 20)
    steps = _steps(n_fast, acct.address)
    signer = fast.Signer(acct.key)
    ref_steps = steps[:n_ref]

    ref_sign = _rate(
        lambda s: Account.sign_message(
            encode_typed_data(full_message=typed_data(s, domain)), acct.key
        ),
        ref_steps,
    )
    fast_sign = _rate(lambda s: signer.sign(s.digest(domain)), steps)
    sigs = [signer.sign(s.digest(domain)) for s in steps]
    pairs = list(zip(steps, sigs, strict=True))
    ref_verify = _rate(
        lambda p: (
            Account.recover_message(
                encode_typed_data(full_message=typed_data(p[0], domain)), signature=p[1]
            )
            == acct.address
        ),
        pairs[:n_ref],
    )
    fast_verify = _rate(lambda p: fast.verify(p[0].digest(domain), p[1], acct.address), pairs)

    print("signatures, one core (EIP-712 ProductionStep, digest included)")
    print(
        f"  sign    eth-account {ref_sign:>9,.0f}/s   cofab {fast_sign:>9,.0f}/s   "
        f"x{fast_sign / ref_sign:.1f}   target >= 30,000/s  "
        f"{'met' if fast_sign >= 30_000 else 'NOT met'}"
    )
    print(
        f"  verify  eth-account {ref_verify:>9,.0f}/s   cofab {fast_verify:>9,.0f}/s   "
        f"x{fast_verify / ref_verify:.1f}   target >= 20,000/s  "
        f"{'met' if fast_verify >= 20_000 else 'NOT met'}"
    )


def bench_anchor_gas(sizes: list[int]) -> None:
    from ledger.eth.chain import Backend
    from ledger.eth.compiler import artifact
    from ledger.membership.roles import Role
    from ledger.node import Node, NodeOptions
    from ledger.steps.anchoring import anchor_tree

    os.environ.setdefault("COFAB_PASSPHRASE", "bench")
    data = Path(os.environ.get("TMPDIR", "/tmp")) / f"cofab-bench-{os.getpid()}"
    node = Node.start(NodeOptions(backend=Backend.EMBEDDED, data_dir=data, kdf_iterations=1024))
    try:
        op = node.sender()
        factory = node.add_signer(Account.create())
        node.consortium.propose_admit(op, factory.address, int(Role.FACTORY))

        def deploy(name: str, *args: object):
            art = artifact(name)
            r = op.deploy(art.abi, art.bytecode, *args)
            return node.chain.w3.eth.contract(address=r["contractAddress"], abi=art.abi)

        splits = deploy("TestSplits")
        trace = deploy("Traceability", node.consortium.address, splits.address)
        print("anchoring gas (Traceability.anchor; first anchor of a split / later anchors)")
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
                used.append(factory.transact(fn)["gasUsed"])
                root, head = tree.root, hashes[-1]
            per_step = [u / size for u in used]
            print(
                f"  {size:>5} steps/anchor: {used[0]:>7,} / {used[1]:>7,} gas  "
                f"= {per_step[0]:>9,.1f} / {per_step[1]:>9,.1f} gas per step   "
                f"EAS attest ~{EAS_ATTEST_GAS:,}/record (x{EAS_ATTEST_GAS / per_step[1]:,.0f})"
            )
        print("  target <= 100 gas per step at 1,024:", "met" if per_step[0] <= 100 else "NOT met")
    finally:
        node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    parser.add_argument("--skip-ingest", action="store_true", help="no HTTP ingest run")
    args = parser.parse_args()
    cores = _pin_one_core()
    bench_signatures(5_000 if args.quick else 20_000, 500 if args.quick else 3_000)
    if cores:
        os.sched_setaffinity(0, cores)  # the chain and the node below use the whole machine
    bench_anchor_gas([1, 64, 1024])
    if not args.skip_ingest:
        from bench.ingest import bench_ingest

        bench_ingest(quick=args.quick)


if __name__ == "__main__":
    main()
