"""`cofab keys`: V3 keystores in the node's data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import App, JsonOpt, handled, out, print_json, shared
from ledger.cli.common import prompt_passphrase as ask
from ledger.core.errors import InvalidInput
from ledger.core.keys import Keyring, read_passphrase

app = App(help="Create, import, list and export keys (V3 keystore JSON).")


def _keyring(ctx: typer.Context) -> Keyring:
    return Keyring(shared(ctx).directory / "keystore")


@app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key")],
) -> None:
    """Create a new key, encrypted with a passphrase."""
    with handled():
        info = _keyring(ctx).new(
            name, read_passphrase(shared(ctx).passphrase_file, prompt=ask(True))
        )
        out.print(f"created key [bold]{info.name}[/] {info.address}")


@app.command("import")
def import_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key")],
    keystore: Annotated[
        Path | None, typer.Option("--keystore", help="A V3 keystore JSON from another wallet")
    ] = None,
    private_key_file: Annotated[
        Path | None, typer.Option("--private-key-file", help="A file holding a hex private key")
    ] = None,
) -> None:
    """Import a keystore (kept as is) or a raw private key (encrypted with the passphrase)."""
    with handled():
        if (keystore is None) == (private_key_file is None):
            raise InvalidInput("give exactly one of --keystore or --private-key-file")
        ring = _keyring(ctx)
        passphrase = read_passphrase(shared(ctx).passphrase_file, prompt=ask(keystore is None))
        if keystore is not None:
            info = ring.import_keystore(name, keystore, passphrase)
        else:
            assert private_key_file is not None
            try:
                secret = private_key_file.read_text()
            except OSError as exc:
                raise InvalidInput(f"cannot read {private_key_file}: {exc.strerror}") from None
            info = ring.import_private_key(name, secret, passphrase)
        out.print(f"imported key [bold]{info.name}[/] {info.address}")


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the keys of this node."""
    with handled():
        keys = _keyring(ctx).list()
        if as_json:
            print_json([{"name": k.name, "address": k.address} for k in keys])
            return
        if not keys:
            out.print("no keys yet: `cofab keys new NAME`")
        for k in keys:
            out.print(f"{k.name:20} {k.address}")


@app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name or address of the key")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output")
    ] = None,
) -> None:
    """Export a key as its (still encrypted) V3 keystore JSON, for any Ethereum wallet."""
    with handled():
        text = json.dumps(_keyring(ctx).export(name), indent=2)
        if out_file is None:
            typer.echo(text)
        else:
            if out_file.exists():
                raise InvalidInput(f"{out_file} exists; not overwriting it")
            out_file.write_text(text + "\n")
            out.print(f"wrote {out_file}")
