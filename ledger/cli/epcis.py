"""`cofab epcis`: API keys and mappings for a factory's MES capturing over EPCIS 2.0.

Acts on the node's data directory as the factory whose key signs here (unlocking it is the
proof of being that factory); the running node sees the changes at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.common import (
    App,
    JsonOpt,
    handled,
    out,
    print_json,
    shared,
)
from ledger.epcis.service import MAPPING_FIELDS
from ledger.node import Node

app = App(help="EPCIS 2.0 capture: API keys of your systems and event mappings.")
key_app = App(help="API keys: create (shown once), list, revoke.")
app.add_typer(key_app, name="key")


@key_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Which system uses the key (e.g. 'MES hall 3')")],
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for capture and query; it is printed once, only its hash is kept."""
    with handled():
        node = shared(ctx).signing()
        made = node.epcis.create_key(key_address(node, shared(ctx).key), name)
        if as_json:
            print_json(made)
        else:
            out.print(f"{made['key_id']}  {made['key']}", highlight=False)
            out.print("keep the key now: it is not shown again")


@key_app.command("list")
def list_keys(
    ctx: typer.Context,
) -> None:
    """Your API keys (ids and names, never the keys)."""
    with handled():
        node = shared(ctx).signing()
        print_json(node.epcis.store.keys(key_address(node, shared(ctx).key)))


@key_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (ek_…)")],
) -> None:
    """Revoke an API key: it stops working at once."""
    with handled():
        node = shared(ctx).signing()
        node.epcis.revoke_key(key_address(node, shared(ctx).key), key_id)
        out.print(f"revoked {key_id}")


@app.command("map")
def add_mapping(
    ctx: typer.Context,
    field: Annotated[str, typer.Argument(help=f"One of {', '.join(MAPPING_FIELDS)}")],
    value: Annotated[str, typer.Argument(help="The identifier, as the events write it")],
    job: Annotated[int, typer.Argument(help="The order", min=0)],
    split: Annotated[int, typer.Argument(help="Your split of it", min=0)],
) -> None:
    """Events whose FIELD is VALUE belong to split SPLIT of order JOB."""
    with handled():
        node = shared(ctx).signing()
        node.epcis.map(key_address(node, shared(ctx).key), field, value, job, split)
        out.print(f"{field} {value} -> job {job} split {split}", highlight=False)


@app.command("mappings")
def list_mappings(
    ctx: typer.Context,
) -> None:
    """Your mappings of identifiers to splits."""
    with handled():
        node = shared(ctx).signing()
        print_json(node.epcis.mappings(key_address(node, shared(ctx).key)))


def key_address(node: Node, key: str) -> str:
    """The address of the key `key` (a name or an address) this command unlocked."""
    return node.keyring.find(key).address
