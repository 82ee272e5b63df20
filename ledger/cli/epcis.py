"""`cofab epcis`: API keys and mappings for a factory's MES capturing over EPCIS 2.0.

Acts on the node's data directory as the factory whose key signs here (unlocking it is the
proof of being that factory); the running node sees the changes at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.common import (
    DataDirOpt,
    FromOpt,
    JsonOpt,
    PassFileOpt,
    RpcUrlOpt,
    handled,
    out,
    print_json,
    signing_node,
)
from ledger.epcis.service import MAPPING_FIELDS
from ledger.node import OPERATOR_KEY, Node

app = typer.Typer(help="EPCIS 2.0 capture: API keys of your systems and event mappings.")
key_app = typer.Typer(help="API keys: create (shown once), list, revoke.")
app.add_typer(key_app, name="key")


@key_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="Which system uses the key (e.g. 'MES hall 3')")],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for capture and query; it is printed once, only its hash is kept."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        made = node.epcis.create_key(key_address(node, key), name)
        if as_json:
            print_json(made)
        else:
            out.print(f"{made['key_id']}  {made['key']}", highlight=False)
            out.print("keep the key now: it is not shown again")


@key_app.command("list")
def list_keys(
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Your API keys (ids and names, never the keys)."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        print_json(node.epcis.store.keys(key_address(node, key)))


@key_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (ek_…)")],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Revoke an API key: it stops working at once."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.epcis.revoke_key(key_address(node, key), key_id)
        out.print(f"revoked {key_id}")


@app.command("map")
def add_mapping(
    field: Annotated[str, typer.Argument(help=f"One of {', '.join(MAPPING_FIELDS)}")],
    value: Annotated[str, typer.Argument(help="The identifier, as the events write it")],
    job: Annotated[int, typer.Argument(help="The order", min=0)],
    split: Annotated[int, typer.Argument(help="Your split of it", min=0)],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Events whose FIELD is VALUE belong to split SPLIT of order JOB."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.epcis.map(key_address(node, key), field, value, job, split)
        out.print(f"{field} {value} -> job {job} split {split}", highlight=False)


@app.command("mappings")
def list_mappings(
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Your mappings of identifiers to splits."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        print_json(node.epcis.mappings(key_address(node, key)))


def key_address(node: Node, key: str) -> str:
    """The address of the key `key` (a name or an address) this command unlocked."""
    return node.keyring.find(key).address
