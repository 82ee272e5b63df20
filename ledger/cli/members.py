"""`cofab member`: the member list and council proposals."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.cli.common import (
    App,
    JsonOpt,
    handled,
    out,
    print_json,
    shared,
)
from ledger.core.errors import InvalidInput
from ledger.disputes import reputation
from ledger.membership.consortium import Member, Proposal, ProposalKind
from ledger.membership.roles import Role, parse_roles, role_names
from ledger.node import Node

app = App(help="Consortium members and council proposals.")


def _member_table(members: list[Member]) -> Table:
    table = Table("address", "roles", "status", "since")
    for m in members:
        table.add_row(m.address, ",".join(role_names(m.roles)), m.status.name.lower(), str(m.since))
    return table


def print_proposal(p: Proposal) -> None:
    """One line: what proposal `p` does and where it stands."""
    kind = p.kind.label
    what = kind + (
        f" {p.target}" if p.kind is not ProposalKind.SET_QUORUM else f" {p.quorum_value}"
    )
    if p.roles:
        what += f" as {','.join(role_names(p.roles))}"
    out.print(f"proposal {p.id}: {what} — {p.state}, {p.approvals} approval(s)")


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
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every member with roles and status."""
    with handled():
        members = shared(ctx).attach().consortium.members()
        if as_json:
            print_json(members)
        else:
            out.print(_member_table(members))


@app.command("show")
def show(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Member address")],
    block: Annotated[int | None, typer.Option(help="Roles and status at this past block")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one member (or its roles at a past block); a factory's reputation from the chain."""
    with handled():
        node = shared(ctx).attach()
        consortium = node.consortium
        if block is not None:
            roles, status = consortium.roles_at(address, block)
            data: dict[str, Any] = {
                "address": address,
                "block_number": block,
                "roles": role_names(roles),
                "status": status.name.lower(),
            }
        else:
            member = consortium.member(address)
            data = member.model_dump(mode="json")
            if member.roles & Role.FACTORY and "JobBoard" in node.deployment.contracts:
                data["reputation"] = reputation.of_node(node, address).model_dump(mode="json")
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
def proposals(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List council proposals."""
    with handled():
        items = shared(ctx).attach().consortium.proposals()
        if as_json:
            print_json(items)
            return
        if not items:
            out.print("no proposals yet")
        for p in items:
            print_proposal(p)


@app.command("propose")
def propose(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Argument(
            help="admit | set_roles | suspend | readmit | set_quorum | unbind_device"
            " (set-roles, quorum, unbind-device are accepted too)"
        ),
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
) -> None:
    """Propose a membership change; it executes once the council quorum approves."""
    with handled():
        proposal_kind = ProposalKind.parse(kind)
        quorum = None
        if proposal_kind is ProposalKind.SET_QUORUM:
            if not target.isdigit():
                raise InvalidInput(f"quorum must be a whole number, got {target!r}")
            quorum = int(target)
        node = shared(ctx).signing()
        c = node.consortium
        pid = c.propose(
            node.sender(),
            proposal_kind,
            target=None if quorum is not None else target,
            roles=parse_roles(roles) if roles else None,
            quorum=quorum,
            metadata_hash=metadata_hash,
            encryption_key=encryption_key,
        )
        print_proposal(c.proposal(pid))


@app.command("approve")
def approve(
    ctx: typer.Context,
    proposal_id: Annotated[int, typer.Argument(help="Proposal id")],
) -> None:
    """Approve a proposal as a council member."""
    with handled():
        node = shared(ctx).signing()
        node.consortium.approve(node.sender(), proposal_id)
        print_proposal(node.consortium.proposal(proposal_id))


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    proposal_id: Annotated[int, typer.Argument(help="Proposal id")],
) -> None:
    """Cancel your own open proposal."""
    with handled():
        node = shared(ctx).signing()
        node.consortium.cancel(node.sender(), proposal_id)
        print_proposal(node.consortium.proposal(proposal_id))
