"""`cofab device`: shop-floor signer keys a factory authorises."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated

import typer

from ledger.cli.common import (
    DataDirOpt,
    FromOpt,
    JsonOpt,
    PassFileOpt,
    RpcUrlOpt,
    attach_node,
    handled,
    out,
    print_json,
    signing_node,
)
from ledger.errors import InvalidInput
from ledger.node import OPERATOR_KEY

app = typer.Typer(help="Authorise and revoke device signer keys.")
_RELATIVE = re.compile(r"^\+(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(text: str | None) -> int:
    """'' → 0 (never); '+30d' → now + 30 days; ISO 8601 or unix seconds as given."""
    if not text:
        return 0
    if m := _RELATIVE.match(text):
        return int(time.time()) + int(m.group(1)) * _UNIT[m.group(2)]
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise InvalidInput(f"expiry {text!r} is not unix seconds, ISO 8601 or +N[smhd]") from None


def _print(data: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"{key:20} {value}")


@app.command("authorize")
def authorize(
    device: Annotated[str, typer.Argument(help="Device key address")],
    expires: Annotated[str | None, typer.Option(help="Unix seconds, ISO 8601 or +30d")] = None,
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Authorise a device key to sign production steps for your factory."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.consortium.authorize_device(node.sender(), device, parse_expiry(expires))
        _print(node.consortium.device(device).as_dict(), as_json)


@app.command("revoke")
def revoke(
    device: Annotated[str, typer.Argument(help="Device key address")],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke one of your device keys; its later signatures are no longer accepted."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.consortium.revoke_device(node.sender(), device)
        _print(node.consortium.device(device).as_dict(), as_json)


@app.command("show")
def show(
    device: Annotated[str, typer.Argument(help="Device key address")],
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a device key: owner, expiry, whether it is active."""
    with handled():
        _print(attach_node(data_dir, rpc_url).consortium.device(device).as_dict(), as_json)
