"""Audit and bundle verification of a 100,000-step job end to end, measured in one run:
events fetched from a real node (anvil), every signature recovered and checked, every
step proven against its anchored Merkle root. `cofab step verify` and `cofab audit` share
one checker, so verifying a bundle should cost no more than auditing it; the JSON-RPC
requests of each are counted on the wire in a separate, untimed pass.

    .venv/bin/python bench/audit.py [--steps 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from ledger.audit.chain_record import Contracts
from ledger.audit.engine import AuditInputs, audit, seal
from ledger.eth.chain import Backend, http_web3
from ledger.eth.devnet import Devnet
from ledger.eth.rpc_counter import CountingProxy
from ledger.eth.toolchain import free_port
from ledger.node import Node, NodeOptions
from ledger.nodeproc import KDF, PASSPHRASE, prepare
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle
from ledger.steps.signatures import Signer
from ledger.verify.checker import verify_bundle

TARGET_SECONDS = 10.0  # the audit of 100,000 steps
VERIFY_TARGET_RATE = 50_000  # steps/s, bundle verification on 2 cores
SPLITS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    per_split = args.steps // SPLITS
    with (
        tempfile.TemporaryDirectory() as tmp,
        Devnet(state_dir=Path(tmp) / "chain", port=free_port()) as chain,
    ):
        data = Path(tmp) / "node"
        t = time.perf_counter()
        stage = prepare(data, chain.url, splits=SPLITS)
        os.environ["COFAB_PASSPHRASE"] = PASSPHRASE
        node = Node.start(
            NodeOptions(backend=Backend.RPC, rpc_url=chain.url, data_dir=data, kdf_iterations=KDF)
        )
        for s in range(SPLITS):
            now = int(time.time())  # after the factory joined, before the anchor
            w = StepWriter(
                Signer(stage.operator.key), stage.domain, stage.job_id, s, stage.operator.address
            )
            for i in range(0, per_split, 2_500):
                node.steps.ingest(
                    [
                        w.step(object_event("assembling", now))
                        for k in range(min(2_500, per_split - i))
                    ]
                )
            node.steps.anchor(stage.job_id, s)
        bundle_file = Path(tmp) / "bundle.json"
        bundle_file.write_text(json.dumps(node.steps.export(stage.job_id)))
        job_board = node.deployment.address("JobBoard")
        trace = node.deployment.address("Traceability")
        node.close()
        size = bundle_file.stat().st_size
        print(
            f"set-up: {args.steps:,} signed steps in {SPLITS} splits, anchored 1,024 per "
            f"anchor, bundle {size / 2**20:.0f} MiB ({time.perf_counter() - t:.0f} s)"
        )

        raw = bundle_file.read_bytes()

        def run_audit(url: str) -> dict:
            contracts = Contracts.discover(http_web3(url), job_board, trace)
            return seal(audit(contracts, stage.job_id, AuditInputs(bundles=[Bundle.load(raw)])))

        def run_verify(url: str) -> dict:
            return verify_bundle(Bundle.load(raw), http_web3(url)).as_dict()

        profile = os.environ.get("COFAB_PROFILE")
        timings: dict[str, float] = {}
        cpus: dict[str, tuple[float, float]] = {}
        for name, fn in (("audit", run_audit), ("verify", run_verify)):
            if profile == name:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
            start, cpu = time.perf_counter(), os.times()
            result = fn(chain.url)
            timings[name] = time.perf_counter() - start
            after = os.times()  # worker processes are counted once the pool has ended
            cpus[name] = (
                after.user + after.system - cpu.user - cpu.system,
                after.children_user
                + after.children_system
                - cpu.children_user
                - cpu.children_system,
            )
            if profile == name:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(18)
            if name == "audit":
                report = result
            else:
                verdict = result
        start = time.perf_counter()
        json.loads(raw)
        t_read = time.perf_counter() - start
        requests = {}
        with CountingProxy(chain.url) as proxy:
            for name, fn in (("audit", run_audit), ("verify", run_verify)):
                proxy.reset()
                fn(proxy.url)
                requests[name] = proxy.total()
    for f in report["findings"][:5]:
        print("  finding:", f["severity"], f["code"], f["statement"][:150])
    proven = sum(s.get("steps_proven", 0) for s in report["splits"])
    signed = sum(s.get("signatures_verified", 0) for s in report["splits"])
    t_audit, t_verify = timings["audit"], timings["verify"]
    print("audit of one job, end to end (bundle parse + events from anvil + every check)")
    print(
        f"  {t_audit:.2f} s for {proven:,} steps proven and {signed:,} signatures verified "
        f"({proven / t_audit:,.0f} steps/s, {requests['audit']} JSON-RPC requests, CPU "
        f"{cpus['audit'][0]:.2f} s here + {cpus['audit'][1]:.2f} s in workers); verdict "
        f"{report['summary']['verdict']}; target <= {TARGET_SECONDS:.0f} s per 100,000 steps  "
        f"{'met' if t_audit <= TARGET_SECONDS * args.steps / 100_000 else 'NOT met'}"
    )
    rate = verdict["anchored"] / t_verify
    print("bundle verification (cofab step verify, POST /steps/verify), same bundle, same run")
    print(
        f"  {t_verify:.2f} s for {verdict['anchored']:,} steps proven ({rate:,.0f} steps/s, "
        f"{requests['verify']} JSON-RPC requests, CPU {cpus['verify'][0]:.2f} s here + "
        f"{cpus['verify'][1]:.2f} s in workers); verdict {verdict['verdict']}"
    )
    checking = verdict["anchored"] / max(t_verify - t_read, 1e-9)
    print(
        f"  of which reading the {size / 2**20:.0f} MiB of JSON {t_read:.2f} s; checking alone "
        f"{checking:,.0f} steps/s"
    )
    same = t_verify <= t_audit * 1.05  # within the noise of one run
    print(
        f"  verify / audit: time {t_verify / t_audit:.2f}, requests "
        f"{requests['verify'] / requests['audit']:.2f}; target <= 1 (no costlier than the "
        f"audit)  {'met' if same and requests['verify'] <= requests['audit'] else 'NOT met'}"
    )
    print(
        f"  target >= {VERIFY_TARGET_RATE:,} steps/s on {os.cpu_count()} cores: end to end "
        f"{'met' if rate >= VERIFY_TARGET_RATE else 'NOT met'}, checking alone "
        f"{'met' if checking >= VERIFY_TARGET_RATE else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
