"""`cofab member`: the member list and council proposals."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
from ledger.core.errors import InvalidInput
from ledger.disputes import reputation
from ledger.membership.consortium import Member, Proposal
from ledger.membership.roles import Role, parse_roles, role_names
from ledger.node import OPERATOR_KEY, Node

app = typer.Typer(help="Consortium members and council proposals.")

KINDS = ("admit", "set-roles", "suspend", "readmit", "quorum", "unbind-device")


def _member_table(members: list[Member]) -> Table:
    table = Table("address", "roles", "status", "since")
    for m in members:
        table.add_row(m.address, ",".join(role_names(m.roles)), m.status.name.lower(), str(m.since))
    return table


def print_proposal(p: Proposal) -> None:
    """One line: what proposal `p` does and where it stands."""
    d = p.as_dict()
    what = d["kind"] + (f" {d['target']}" if d["kind"] != "set_quorum" else f" {p.quorum_value}")
    if d["roles"]:
        what += f" as {','.join(d['roles'])}"
    out.print(f"proposal {p.id}: {what} — {d['state']}, {p.approvals} approval(s)")


def print_reputation(node: Node, rep: dict[str, Any]) -> None:
    """The reputation section of `member show` (definitions in docs/disputes.md)."""
    s, d, disp = rep["splits"], rep["deadlines"], rep["disputes"]
    out.print(f"reputation      from the chain, as of block {rep['as_of_block']}")
    out.print(
        f"  splits        {s['assigned']} assigned, {s['accepted']} accepted, "
        f"{s['delivered']} delivered"
    )
    rate = "" if d["on_time_rate"] is None else f" ({d['on_time_rate']:.0%} on time)"
    out.print(f"  deadlines     {d['on_time']} on time, {d['late']} late{rate}")
    out.print(
        f"  disputes      {disp['against']} against it, {disp['opened']} opened by it, "
        f"{disp['lost']} lost of {disp['ruled']} ruled, {disp['lapsed']} lapsed, "
        f"{disp['open']} open"
    )
    paid = [node.settlement.token(t).info.format(a) for t, a in rep["paid"].items()]
    out.print(f"  paid          {', '.join(paid) or 'nothing yet'}")


@app.command("list")
def list_(data_dir: DataDirOpt = None, rpc_url: RpcUrlOpt = None, as_json: JsonOpt = False) -> None:
    """List every member with roles and status."""
    with handled():
        members = attach_node(data_dir, rpc_url).consortium.members()
        if as_json:
            print_json([m.as_dict() for m in members])
        else:
            out.print(_member_table(members))


@app.command("show")
def show(
    address: Annotated[str, typer.Argument(help="Member address")],
    block: Annotated[int | None, typer.Option(help="Roles and status at this past block")] = None,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one member (or its roles at a past block); a factory's reputation from the chain."""
    with handled():
        node = attach_node(data_dir, rpc_url)
        consortium = node.consortium
        if block is not None:
            roles, status = consortium.roles_at(address, block)
            data = {
                "address": address,
                "block_number": block,
                "roles": role_names(roles),
                "status": status.name.lower(),
            }
        else:
            data = consortium.member(address).as_dict()
            if data["roles_mask"] & Role.FACTORY and "JobBoard" in node.deployment.contracts:
                data["reputation"] = reputation.of_node(node, address).as_dict()
        if as_json:
            print_json(data)
        else:
            shown_reputation = data.pop("reputation", None)
            for key, value in data.items():
                shown = ",".join(value) if isinstance(value, list) else value
                out.print(f"{key:15} {shown}")
            if shown_reputation is not None:
                print_reputation(node, shown_reputation)


@app.command("proposals")
def proposals(
    data_dir: DataDirOpt = None, rpc_url: RpcUrlOpt = None, as_json: JsonOpt = False
) -> None:
    """List council proposals."""
    with handled():
        items = attach_node(data_dir, rpc_url).consortium.proposals()
        if as_json:
            print_json([p.as_dict() for p in items])
            return
        if not items:
            out.print("no proposals yet")
        for p in items:
            print_proposal(p)


@app.command("propose")
def propose(
    kind: Annotated[
        str,
        typer.Argument(help="admit | set-roles | suspend | readmit | quorum | unbind-device"),
    ],
    target: Annotated[
        str, typer.Argument(help="Member address (the new quorum, or the device key to unbind)")
    ],
    roles: Annotated[
        str, typer.Option(help="Comma-separated: council,factory,designer,auditor,buyer")
    ] = "",
    metadata_hash: Annotated[
        str | None, typer.Option(help="32-byte hex hash of the member's profile")
    ] = None,
    encryption_key: Annotated[
        str | None, typer.Option(help="32-byte hex X25519 public key")
    ] = None,
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Propose a membership change; it executes once the council quorum approves."""
    with handled():
        if kind not in KINDS:
            raise InvalidInput(f"unknown proposal kind {kind!r}: use {', '.join(KINDS)}")
        if kind in ("admit", "set-roles") and not roles:
            raise InvalidInput(f"{kind} needs --roles")
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        sender, c = node.sender(), node.consortium
        if kind == "admit":
            pid, _ = c.propose_admit(
                sender, target, parse_roles(roles), metadata_hash, encryption_key
            )
        elif kind == "set-roles":
            pid, _ = c.propose_set_roles(sender, target, parse_roles(roles))
        elif kind == "suspend":
            pid, _ = c.propose_suspend(sender, target)
        elif kind == "readmit":
            pid, _ = c.propose_readmit(sender, target)
        elif kind == "unbind-device":
            pid, _ = c.propose_unbind_device(sender, target)
        else:
            if not target.isdigit():
                raise InvalidInput(f"quorum must be a whole number, got {target!r}")
            pid, _ = c.propose_quorum(sender, int(target))
        print_proposal(c.proposal(pid))


@app.command("approve")
def approve(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id")],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Approve a proposal as a council member."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.consortium.approve(node.sender(), proposal_id)
        print_proposal(node.consortium.proposal(proposal_id))


@app.command("cancel")
def cancel(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id")],
    key: FromOpt = OPERATOR_KEY,
    data_dir: DataDirOpt = None,
    rpc_url: RpcUrlOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Cancel your own open proposal."""
    with handled():
        node = signing_node(data_dir, rpc_url, key, passphrase_file)
        node.consortium.cancel(node.sender(), proposal_id)
        print_proposal(node.consortium.proposal(proposal_id))
