"""What every cofab command shares: options, output, and turning errors into exit codes.

Exit codes: 0 done; 1 refused or failed (the message says why); 2 invalid input or
usage; 3 chain or node unavailable; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ledger.core.errors import LedgerError, fault
from ledger.core.keys import read_passphrase
from ledger.core.settings import DATA_DIR_ENV
from ledger.core.settings import data_dir as resolve_data_dir
from ledger.node import OPERATOR_KEY, Node, secrets_dir

out = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar=DATA_DIR_ENV, help="Node data directory [default: ./.cofab]"),
]
RpcUrlOpt = Annotated[
    str | None,
    typer.Option("--rpc-url", envvar="COFAB_RPC_URL", help="JSON-RPC endpoint of the chain"),
]
PassFileOpt = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help="Read the key passphrase from this file"),
]
FromOpt = Annotated[str, typer.Option("--from", help="Name or address of the key that signs")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def prompt_passphrase(confirm: bool = False) -> Callable[[], str] | None:
    if not sys.stdin.isatty():
        return None

    def ask() -> str:
        return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))

    return ask


def signer_passphrase(node: Node, key: str, passphrase_file: Path | None) -> str:
    """The passphrase for `key`: explicit sources first, then the devnet operator's file."""
    default_file = secrets_dir(node.data_dir) / "operator.pass"
    if (
        passphrase_file is None
        and not os.environ.get("COFAB_PASSPHRASE")
        and key == OPERATOR_KEY
        and default_file.exists()
    ):
        passphrase_file = default_file
    return read_passphrase(passphrase_file, prompt=prompt_passphrase())


def attach_node(data_dir: Path | None, rpc_url: str | None) -> Node:
    return Node.attach(resolve_data_dir(data_dir), rpc_url=rpc_url)


def signing_node(
    data_dir: Path | None, rpc_url: str | None, key: str, passphrase_file: Path | None
) -> Node:
    node = attach_node(data_dir, rpc_url)
    node.unlock(key, signer_passphrase(node, key, passphrase_file))
    return node


@contextmanager
def handled() -> Iterator[None]:
    """Print a LedgerError as one line and exit with its code; never a traceback."""
    try:
        yield
    except LedgerError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        known = fault(exc)
        if known is None:
            raise
        err.print(f"[bold red]error:[/] {known.message}", highlight=False)
        raise typer.Exit(known.exit_code) from None
