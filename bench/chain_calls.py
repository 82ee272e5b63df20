"""CPU a node spends per contract read and per transaction it builds, against web3's own
`ContractFunction` path (the reference), on the same anvil devnet, in one run.

cofab reads through a `View` (selector, types and output handling worked out once per
connection, contract and function) and builds a transaction's call data with it, with a
plain `eth_estimateGas`; web3 works all of that out again on every call. Both sides make
the same JSON-RPC requests, so the difference is Python CPU in the node. Targets: a read
at most a quarter of web3's CPU, a transaction built in at most two thirds of it. Also
shown, without a target: binding the six contracts an audit reads (`contract_at`, once
per connection) against web3 making each contract object anew, as it does when asked.

Usage: .venv/bin/python bench/chain_calls.py [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.eth.chain import Backend
from ledger.eth.compiler import artifact
from ledger.eth.contract import call, contract_at
from ledger.eth.toolchain import free_port
from ledger.node import Node, NodeOptions

READ_TARGET = 0.25
AUDITED = ("JobBoard", "Settlement", "Consortium", "DesignRegistry", "Traceability", "Disputes")
BUILD_TARGET = 2 / 3


def cpu_per_call(fn: Callable[[], Any], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - start) / count


def interleaved(
    ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int
) -> tuple[float, float]:
    """Best CPU seconds per call of each, rounds taken in turn (the machine's load hits both)."""
    best_ours = best_theirs = float("inf")
    for _ in range(rounds):
        best_ours = min(best_ours, cpu_per_call(ours, 50))
        best_theirs = min(best_theirs, cpu_per_call(theirs, 50))
    return best_ours, best_theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    os.environ.setdefault("COFAB_PASSPHRASE", "bench")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-calls-") as tmp:
        node = Node.start(
            NodeOptions(
                backend=Backend.DEVNET,
                devnet_port=free_port(),
                data_dir=Path(tmp),
                kdf_iterations=1024,
            )
        )
        gc.freeze()  # as `cofab up` does once started: full collections skip start-up objects
        try:
            sender = node.sender()
            member = node.consortium.contract.functions.member(sender.address)
            read = interleaved(lambda: call(member), member.call, rounds)

            token = node.settlement.token().contract
            approve = token.functions.approve(sender.address, 1)

            def web3_build() -> dict[str, Any]:
                params: dict[str, Any] = {"from": sender.address, "chainId": node.chain.chain_id}
                params |= node.chain.fee_fields()
                params["gas"] = approve.estimate_gas(params)
                params["nonce"] = sender._nonce()
                return dict(approve.build_transaction(params))

            build = interleaved(lambda: sender._build(approve), web3_build, rounds)

            w3 = node.chain.w3
            six = [(name, node.deployment.address(name)) for name in AUDITED]
            binding = interleaved(
                lambda: [contract_at(w3, name, address) for name, address in six],
                lambda: [w3.eth.contract(address=a, abi=artifact(n).abi) for n, a in six],
                rounds,
            )
        finally:
            node.close()
    print(f"{'per call (CPU)':<28} {'cofab ms':>9} {'web3 ms':>9} {'ratio':>7}  target")
    rows: tuple[tuple[str, tuple[float, float], float | None], ...] = (
        ("contract read (member)", read, READ_TARGET),
        ("transaction built (approve)", build, BUILD_TARGET),
        ("six contracts bound", binding, None),
    )
    for label, (ours, theirs), target in rows:
        ratio = ours / theirs
        verdict = (
            "-"
            if target is None
            else f"<= {target:.2f}: " + ("met" if ratio <= target else "not met")
        )
        print(f"{label:<28} {ours * 1e3:>9.2f} {theirs * 1e3:>9.2f} {ratio:>7.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
