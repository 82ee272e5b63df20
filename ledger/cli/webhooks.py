"""`cofab webhook`: a member's webhooks on this node (add, list, remove, the event types).

The member is a key of this node's keyring (--from), unlocked to prove it is held: the
same webhooks `POST /webhooks` registers for a signed-in member.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from ledger.cli.common import (
    App,
    CliOptions,
    JsonOpt,
    handled,
    out,
    print_json,
    shared,
)
from ledger.core.errors import Forbidden
from ledger.membership.consortium import MemberStatus
from ledger.node import Node, read_run_info
from ledger.notify.events import EventType

app = App(help="Webhooks: be told of your events by signed HTTP POSTs.")


def member_node(options: CliOptions) -> tuple[Node, str]:
    """The attached node with --from unlocked, and that active member's address; the
    running node's own URLs are known, so nothing is sent to the node itself."""
    node = options.signing()
    address = node.signer_addresses[-1]
    member = node.consortium.member(address)
    if member.status is not MemberStatus.ACTIVE:
        node.close()
        raise Forbidden(f"{address} is not an active member of this consortium")
    info = read_run_info(node.data_dir) or {}
    for url in (info.get("api_url"), info.get("public_url")):
        if url:
            parts = urlsplit(url)
            node.notify.own.add((parts.hostname or "", parts.port or 80))
    return node, address


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http(s) URL the node POSTs to")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="Event type (repeatable; default: every type)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a webhook; its signing secret is printed this once."""
    with handled():
        node, address = member_node(shared(ctx))
        try:
            hook, secret = node.notify.add_webhook(address, url, event or ["*"])
        finally:
            node.close()
        if as_json:
            print_json(hook.with_secret(secret))
            return
        out.print(f"webhook {hook.id} for {address}: {', '.join(e.value for e in hook.events)}")
        out.print(f"secret (shown only now; verify Cofab-Signature with it): {secret}")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """Your webhooks with their deliveries (pending, delivered, failed)."""
    with handled():
        node, address = member_node(shared(ctx))
        try:
            hooks = node.notify.webhooks(address)
        finally:
            node.close()
        if as_json:
            print_json(hooks)
            return
        if not hooks:
            out.print(f"{address} has no webhooks")
        for h in hooks:
            events = ", ".join(e.value for e in h.events)
            out.print(
                f"{h.id}  {h.url}  [{h.status}] {h.delivered} delivered, "
                f"{h.pending} pending, {h.failed} failed  events: {events}",
                highlight=False,
            )
            if h.last_error:
                out.print(f"    last error: {h.last_error}", highlight=False)


@app.command("remove")
def remove(
    ctx: typer.Context,
    hook_id: Annotated[str, typer.Argument(help="Webhook id (wh_…)")],
) -> None:
    """Remove one of your webhooks (its pending deliveries are dropped)."""
    with handled():
        node, address = member_node(shared(ctx))
        try:
            node.notify.remove_webhook(address, hook_id)
        finally:
            node.close()
        out.print(f"webhook {hook_id} removed")


@app.command("types")
def types(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The event types a webhook can subscribe to."""
    rows = [{"type": e.value, "description": e.description} for e in EventType]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['type']:20} {row['description']}", highlight=False)
