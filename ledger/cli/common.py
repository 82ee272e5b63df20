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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from ledger.core.errors import LedgerError, NodeNotRunning, fault
from ledger.core.keys import PASSPHRASE_ENV, read_passphrase
from ledger.core.settings import DATA_DIR_ENV, RPC_URL_ENV
from ledger.core.settings import data_dir as resolve_data_dir
from ledger.node import OPERATOR_KEY, Node, read_run_info, secrets_dir

if TYPE_CHECKING:  # the click that Typer parses with (Typer >= 0.29 vendors its own)
    from typer._click import Command, Context, HelpFormatter, Parameter
else:
    Command = object

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]

SHARED_PANEL = "Shared options (before or after the command)"


@dataclass(frozen=True)
class CliOptions:
    """The options every command shares, parsed once by the root callback (`ctx.obj`)."""

    key: str = OPERATOR_KEY
    data_dir: Path | None = None
    rpc_url: str | None = None
    passphrase_file: Path | None = None

    @property
    def directory(self) -> Path:
        """The data directory: --data-dir, else $COFAB_DATA_DIR, else ./.cofab."""
        return resolve_data_dir(self.data_dir)

    def attach(self) -> Node:
        """The node of this data directory, reading the chain at --rpc-url or its own."""
        return Node.attach(self.directory, rpc_url=self.rpc_url)

    def passphrase(self, node: Node) -> str:
        """The passphrase of --from (see `signer_passphrase`)."""
        return signer_passphrase(node, self.key, self.passphrase_file)

    def endpoint(self) -> str:
        """The chain's JSON-RPC URL: --rpc-url, else the one the running node uses."""
        if self.rpc_url:
            return self.rpc_url
        info = read_run_info(self.directory)
        if info and info.get("rpc_url"):
            return str(info["rpc_url"])
        raise NodeNotRunning("give the chain endpoint with --rpc-url (or start a node: `cofab up`)")

    def signing(self) -> Node:
        """The attached node with the --from key unlocked."""
        node = self.attach()
        node.unlock(self.key, self.passphrase(node))
        return node


def shared(ctx: typer.Context) -> CliOptions:
    """The shared options of this invocation (defaults when a sub-app runs on its own)."""
    obj = ctx.find_object(CliOptions)
    if obj is not None:
        return obj
    return CliOptions(rpc_url=os.environ.get(RPC_URL_ENV) or None)


def shared_options(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Option(
            "--from", help="Name or address of the key that signs", rich_help_panel=SHARED_PANEL
        ),
    ] = OPERATOR_KEY,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar=DATA_DIR_ENV,
            help="Node data directory \\[default: ./.cofab]",
            rich_help_panel=SHARED_PANEL,
        ),
    ] = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(
            "--rpc-url",
            envvar=RPC_URL_ENV,
            help="JSON-RPC endpoint of the chain",
            rich_help_panel=SHARED_PANEL,
        ),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="Read the key passphrase from this file "
            f"\\[default: ${PASSPHRASE_ENV}, else a prompt]",
            rich_help_panel=SHARED_PANEL,
        ),
    ] = None,
) -> None:
    """cofab: a consortium ledger for shared manufacturing."""
    ctx.obj = CliOptions(key, data_dir, rpc_url, passphrase_file)


SHARED_NAMES = ("--from", "--data-dir", "--rpc-url", "--passphrase-file")


def hoist_shared(ctx: Context, args: list[str]) -> list[str]:
    """`args` with the shared options moved in front of the command path, where the root
    callback declares them: `cofab job fund 1 --from f` parses as `cofab --from f job fund 1`.

    Stops at `--`. The same option twice with different values is a usage error.
    """
    hoisted: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        name, eq, inline = token.partition("=")
        if name not in SHARED_NAMES:
            rest.append(token)
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            raise typer.BadParameter("needs a value", ctx, param_hint=f"'{name}'")
        if hoisted.get(name, value) != value:
            raise typer.BadParameter(
                f"given twice, as {hoisted[name]!r} and as {value!r}: give it once",
                ctx,
                param_hint=f"'{name}'",
            )
        hoisted[name] = value
    return [*(part for item in hoisted.items() for part in item), *rest]


class SharedOptionsGroup(TyperGroup):
    """The root group: the shared options may stand anywhere in the command line."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_shared(ctx, args))


_HELP = "cofab.help"


def _shared_params(ctx: Context) -> list[Parameter]:
    root = ctx.find_root().command
    if root is ctx.command:
        return []
    return [p for p in root.params if set(p.opts) & set(SHARED_NAMES)]


class _ListsShared(Command):
    """Help of a command or sub-group that lists the shared options with its own."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        ctx.meta[_HELP] = True
        super().format_help(ctx, formatter)

    def get_params(self, ctx: Context) -> list[Parameter]:
        own = super().get_params(ctx)
        return [*own, *_shared_params(ctx)] if ctx.meta.get(_HELP) else own


class SharedHelpCommand(_ListsShared, TyperCommand):
    pass


class SharedHelpGroup(_ListsShared, TyperGroup):
    pass


class App(typer.Typer):
    """A Typer app whose commands and help know the shared options."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", SharedHelpGroup)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or SharedHelpCommand, **kwargs)


def print_json(data: object) -> None:
    """`data` as JSON; records (and lists of them) in the form the API gives them."""
    out.print_json(json.dumps(to_jsonable_python(data), default=str))


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
