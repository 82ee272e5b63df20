"""`cofab device`: shop-floor signer keys a factory authorises.

A device key is bound only with its own consent, a DeviceBinding signature: made here from
the device's keystore when this node holds the key, or made where the key lives (from the
typed data `cofab device binding` prints) and passed with --signature.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import (
    App,
    JsonOpt,
    handled,
    out,
    print_json,
    prompt_passphrase,
    shared,
)
from ledger.cli.members import print_proposal
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.keys import read_passphrase
from ledger.eth import eip712
from ledger.membership.consortium import Device

app = App(help="Authorise, revoke and unbind device signer keys.")
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


def _print(device: Device, as_json: bool) -> None:
    if as_json:
        print_json(device)
        return
    for key, value in device.model_dump(mode="json").items():
        out.print(f"{key:20} {value}")


@app.command("authorize")
def authorize(
    ctx: typer.Context,
    device: Annotated[
        str,
        typer.Argument(
            help="Device key: its name or address in this node's keystore (the key signs its "
            "consent here), or its address with --signature"
        ),
    ],
    expires: Annotated[
        str | None,
        typer.Option(help="Unix seconds, ISO 8601 or +30d (with --signature: the signed value)"),
    ] = None,
    signature: Annotated[
        str | None,
        typer.Option(
            help="The device key's DeviceBinding signature made where the key is "
            "(see `cofab device binding`)"
        ),
    ] = None,
    device_passphrase_file: Annotated[
        Path | None, typer.Option(help="Read the device key's passphrase from this file")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Authorise a device key to sign production steps for your factory."""
    with handled():
        expires_at = parse_expiry(expires)
        node = shared(ctx).attach()
        if signature is None:
            try:
                node.keyring.find(device)
            except NotFound:
                raise InvalidInput(
                    f"the key of device {device} is not in {node.keyring.directory}: have the "
                    "device sign the typed data of `cofab device binding` and pass --signature"
                ) from None
        options = shared(ctx)
        sender = node.unlock(options.key, options.passphrase(node))
        if signature is None:
            passphrase = read_passphrase(device_passphrase_file, prompt=prompt_passphrase())
            account = node.keyring.unlock(device, passphrase)
            node.consortium.authorize_device(sender, account, expires_at)
            device = account.address
        else:
            node.consortium.authorize_device(sender, device, expires_at, signature)
        _print(node.consortium.device(device), as_json)


@app.command("binding")
def binding(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="Device key address")],
    factory: Annotated[str, typer.Option("--for", help="The factory to bind it to")],
    expires: Annotated[str | None, typer.Option(help="Unix seconds, ISO 8601 or +30d")] = None,
) -> None:
    """Print the EIP-712 typed data a device key signs to consent to its binding."""
    with handled():
        c = shared(ctx).attach().consortium
        data = c.binding_typed_data(c.device_binding(factory, device, parse_expiry(expires)))
        digest = "0x" + eip712.digest(data).hex()
        print_json(
            {"typed_data": data, "digest": digest, "expires_at": data["message"]["expiresAt"]}
        )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="Device key address")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke one of your device keys; its later signatures are no longer accepted."""
    with handled():
        node = shared(ctx).signing()
        node.consortium.revoke_device(node.sender(), device)
        _print(node.consortium.device(device), as_json)


@app.command("unbind")
def unbind(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="Device key address")],
) -> None:
    """Propose (council) to release a device key from its factory; it executes at quorum."""
    with handled():
        node = shared(ctx).signing()
        pid, _ = node.consortium.propose_unbind_device(node.sender(), device)
        print_proposal(node.consortium.proposal(pid))


@app.command("show")
def show(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="Device key address")],
    as_json: JsonOpt = False,
) -> None:
    """Show a device key: owner, expiry, whether it is active."""
    with handled():
        _print(shared(ctx).attach().consortium.device(device), as_json)
