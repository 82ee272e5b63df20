"""Audit of a 100,000-step job end to end: events fetched from a real node (anvil), every
signature recovered and checked, every step proven against its anchored Merkle root.

    .venv/bin/python bench/audit.py [--steps 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nodeproc import KDF, PASSPHRASE, prepare  # noqa: E402

from ledger.audit.chain_record import Contracts  # noqa: E402
from ledger.audit.engine import AuditInputs, audit, seal  # noqa: E402
from ledger.eth.chain import Backend, http_web3  # noqa: E402
from ledger.eth.devnet import Devnet  # noqa: E402
from ledger.eth.toolchain import free_port  # noqa: E402
from ledger.node import Node, NodeOptions  # noqa: E402
from ledger.steps import bundle as step_bundle  # noqa: E402
from ledger.steps.builder import StepWriter, object_event  # noqa: E402
from ledger.steps.signatures import Signer  # noqa: E402

TARGET_SECONDS = 10.0
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

        start = time.perf_counter()
        bundle = step_bundle.load(bundle_file.read_bytes())
        loaded = time.perf_counter()
        contracts = Contracts.discover(http_web3(chain.url), job_board, trace)
        if os.environ.get("COFAB_PROFILE"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        report = seal(audit(contracts, stage.job_id, AuditInputs(bundles=[bundle])))
        if os.environ.get("COFAB_PROFILE"):
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
        elapsed = time.perf_counter() - start
    for f in report["findings"][:5]:
        print("  finding:", f["severity"], f["code"], f["statement"][:150])
    proven = sum(s.get("steps_proven", 0) for s in report["splits"])
    signed = sum(s.get("signatures_verified", 0) for s in report["splits"])
    print("audit of one job, end to end (bundle read + events from anvil + every check)")
    print(
        f"  {elapsed:.2f} s for {proven:,} steps proven and {signed:,} signatures verified "
        f"({proven / elapsed:,.0f} steps/s; reading the bundle {loaded - start:.2f} s); "
        f"verdict {report['summary']['verdict']}; target <= {TARGET_SECONDS:.0f} s  "
        f"{'met' if elapsed <= TARGET_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
