"""`cofab demo`: play the whole story on a throwaway devnet, or on a running node."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ledger import demo as story
from ledger.cli.common import handled, out, shared
from ledger.eth.chain import Backend
from ledger.eth.toolchain import free_port
from ledger.node import OPERATOR_KEY, Node, NodeOptions, read_run_info

DEFAULT_OUT = Path("reports") / "demo"


def demo(
    ctx: typer.Context,
    on_node: Annotated[
        bool, typer.Option("--on-node", help="Play on the running node of --data-dir")
    ] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the reports go")] = DEFAULT_OUT,
) -> None:
    """A consortium, a drawing, an order split in four, signed steps, a tampered bundle, a
    dispute, the audit and the payouts, told as it happens. Ends with the report's path."""
    with handled():
        if on_node:
            options = shared(ctx)
            if not read_run_info(options.directory):
                out.print(f"no running node for {options.directory}: playing on a throwaway devnet")
            else:
                node = replace(options, key=OPERATOR_KEY, rpc_url=None).signing()
                try:
                    _play(node, out_dir)
                finally:
                    node.close()
                return
        with tempfile.TemporaryDirectory(prefix="cofab-demo-") as tmp:
            os.environ.setdefault("COFAB_PASSPHRASE", "cofab-demo")
            with out.status("starting a throwaway devnet and deploying the contracts"):
                node = Node.start(
                    NodeOptions(
                        backend=Backend.DEVNET,
                        data_dir=Path(tmp),
                        devnet_port=free_port(),
                        kdf_iterations=2**12,
                    )
                )
            try:
                _play(node, out_dir)
            finally:
                node.close()


def _play(node: Node, out_dir: Path) -> None:
    path = story.run(
        node,
        out_dir.resolve(),
        say=lambda line: out.print(line, markup=False, highlight=False, soft_wrap=True),
        dispute=story.settle_dispute,
    )
    out.print(f"\n[bold]HTML audit report:[/] {path}")
