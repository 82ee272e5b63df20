"""`cofab epcis`: EPCIS 2.0 capture and query, named queries and their subscriptions, and
the API keys and mappings of a factory's MES.

Acts on the node's data directory as the member whose key is unlocked here (--from;
unlocking it is the proof of being that member), through the same domain functions as
`/epcis/*`; the running node sees the changes at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.cli.common import (
    App,
    JsonOpt,
    err,
    handled,
    out,
    print_json,
    shared,
)
from ledger.cli.webhooks import member_node
from ledger.core.errors import InvalidInput, LedgerError
from ledger.epcis.context import CONTEXT_PATH, PROOF
from ledger.epcis.query import query_document
from ledger.epcis.service import MAPPING_FIELDS
from ledger.node import Node, read_run_info

app = App(help="EPCIS 2.0: capture and query events, named queries and subscriptions, API keys.")
key_app = App(help="API keys: create (shown once), list, revoke.")
app.add_typer(key_app, name="key")
query_app = App(help="Named queries: create, list, show, delete.")
app.add_typer(query_app, name="query")


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


# --- capture and query ---------------------------------------------------------------------
@app.command("capture")
def capture(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="An EPCISDocument or one event (JSON); - for stdin")],
    device: Annotated[
        str,
        typer.Option(
            help="Your device key in this node's keyring that signs the events (unlocked with "
            "the passphrase of --from)"
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Capture events as signed production steps of your splits (as POST /epcis/capture)."""
    with handled():
        document = _read_document(file)
        options = shared(ctx)
        node, address = member_node(options)
        try:
            node.unlock(device, options.passphrase(node))
            job = node.epcis.capture(address, document)
        finally:
            node.close()
        if as_json:
            print_json(job)
            return
        out.print(
            f"capture {job['captureID']}: {job['captured']} captured, "
            f"{job['duplicates']} already known",
            highlight=False,
        )
        for event_id, step in zip(job["eventIDs"], job["stepHashes"], strict=False):
            out.print(f"  {event_id}  step {step}", highlight=False)


def _read_document(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", field="FILE") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", field="FILE") from None


FILTERS = {
    "--event-type": "eventType",
    "--ge-event-time": "GE_eventTime",
    "--lt-event-time": "LT_eventTime",
    "--biz-step": "EQ_bizStep",
    "--epc": "MATCH_epc",
    "--any-epc": "MATCH_anyEPC",
    "--biz-location": "EQ_bizLocation",
    "--read-point": "EQ_readPoint",
}
"""Each filter option and the EPCIS 2.0 query parameter it sets (values of one option
separated by `|` match any of them)."""
OPTIONS = {param: option for option, param in FILTERS.items()} | {
    "perPage": "--per-page",
    "nextPageToken": "--next-page-token",
}
_TIMES = ("GE_eventTime", "LT_eventTime")  # a date-time in a named query, not a list


def _filters(
    event_type: str | None,
    ge_event_time: str | None,
    lt_event_time: str | None,
    biz_step: str | None,
    epc: str | None,
    any_epc: str | None,
    biz_location: str | None,
    read_point: str | None,
) -> dict[str, str]:
    given = (event_type, ge_event_time, lt_event_time, biz_step, epc, any_epc, biz_location,
             read_point)  # fmt: skip
    return {p: v for p, v in zip(FILTERS.values(), given, strict=True) if v is not None}


@contextmanager
def _naming_options() -> Iterator[None]:
    """A refused query parameter named as the option that gave it."""
    try:
        yield
    except LedgerError as exc:
        field = str(getattr(exc, "field", "") or "").removeprefix("query.")
        if field in OPTIONS:
            exc.message = f"{OPTIONS[field]}: {exc.message}"
        raise


EventTypeOpt = Annotated[
    str | None, typer.Option("--event-type", help="ObjectEvent, AggregationEvent, …")
]
GeTimeOpt = Annotated[
    str | None, typer.Option("--ge-event-time", help="Events at or after (2026-11-22T08:00Z)")
]
LtTimeOpt = Annotated[str | None, typer.Option("--lt-event-time", help="Events before")]
BizStepOpt = Annotated[str | None, typer.Option("--biz-step", help="e.g. shipping")]
EpcOpt = Annotated[str | None, typer.Option("--epc", help="In epcList (MATCH_epc)")]
AnyEpcOpt = Annotated[
    str | None, typer.Option("--any-epc", help="In any EPC list or parentID (MATCH_anyEPC)")
]
BizLocationOpt = Annotated[str | None, typer.Option("--biz-location", help="bizLocation id")]
ReadPointOpt = Annotated[str | None, typer.Option("--read-point", help="readPoint id")]


@app.command("events")
def events(
    ctx: typer.Context,
    event_type: EventTypeOpt = None,
    ge_event_time: GeTimeOpt = None,
    lt_event_time: LtTimeOpt = None,
    biz_step: BizStepOpt = None,
    epc: EpcOpt = None,
    any_epc: AnyEpcOpt = None,
    biz_location: BizLocationOpt = None,
    read_point: ReadPointOpt = None,
    per_page: Annotated[str | None, typer.Option(help="Events per page (1 to 1000)")] = None,
    next_page_token: Annotated[
        str | None, typer.Option(help="Continue after the page that printed it")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Events on this node, each with its proof (as GET /epcis/events); --json prints the
    EPCISQueryDocument."""
    with handled(), _naming_options():
        params = _filters(event_type, ge_event_time, lt_event_time, biz_step, epc, any_epc,
                          biz_location, read_point)  # fmt: skip
        paging = {"perPage": per_page, "nextPageToken": next_page_token}
        params |= {k: v for k, v in paging.items() if v is not None}
        node, _ = member_node(shared(ctx))
        try:
            found, token = node.epcis.query({k: [v] for k, v in params.items()})
        finally:
            node.close()
        _print_events(node, found, token, "SimpleEventQuery", as_json)


def _print_events(
    node: Node, found: list[dict[str, Any]], token: str | None, name: str, as_json: bool
) -> None:
    if as_json:  # the standard document on stdout; the next page's token on stderr
        print_json(query_document(found, name, _context_url(node)))
        if token is not None:
            err.print(f"next page: --next-page-token {token}", highlight=False)
        return
    table = Table("event time", "type", "bizStep", "readPoint", "EPCs", "signer", "anchored")
    for event in found:
        proof = event.get(PROOF) or {}
        epcs = [*(event.get("epcList") or []), *(event.get("childEPCs") or [])]
        table.add_row(
            str(event.get("eventTime", "")),
            str(event.get("type", "")),
            str(event.get("bizStep", "")),
            str((event.get("readPoint") or {}).get("id", "")),
            ", ".join(epcs[:2]) + (f" (+{len(epcs) - 2})" if len(epcs) > 2 else ""),
            str(proof.get("signer", "")),
            "yes" if proof.get("anchor") else "no",
        )
    out.print(table)
    out.print(f"{len(found)} events", highlight=False)
    if token is not None:
        out.print(f"next page: --next-page-token {token}", highlight=False)


def _context_url(node: Node) -> str:
    """Where the running node serves cofab's JSON-LD context (its path if not running)."""
    info = read_run_info(node.data_dir) or {}
    base = str(info.get("public_url") or info.get("api_url") or "").rstrip("/")
    return base + CONTEXT_PATH


# --- named queries and subscriptions -------------------------------------------------------
NameArg = Annotated[str, typer.Argument(help="The query's name")]


def _as_member(ctx: typer.Context, act: Callable[[Node, str], Any]) -> Any:
    """`act(node, member)` as the member --from names, the node closed after."""
    node, address = member_node(shared(ctx))
    try:
        return act(node, address)
    finally:
        node.close()


@query_app.command("create")
def create_query(
    ctx: typer.Context,
    name: NameArg,
    event_type: EventTypeOpt = None,
    ge_event_time: GeTimeOpt = None,
    lt_event_time: LtTimeOpt = None,
    biz_step: BizStepOpt = None,
    epc: EpcOpt = None,
    any_epc: AnyEpcOpt = None,
    biz_location: BizLocationOpt = None,
    read_point: ReadPointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep a named query of the events these options select (as POST /epcis/queries)."""
    with handled(), _naming_options():
        params = _filters(event_type, ge_event_time, lt_event_time, biz_step, epc, any_epc,
                          biz_location, read_point)  # fmt: skip
        query = {k: v if k in _TIMES else [v] for k, v in params.items()}
        made = _as_member(
            ctx, lambda n, a: n.epcis.subscriptions.create_query(a, {"name": name, "query": query})
        )
        if as_json:
            print_json(made)
        else:
            out.print(f"query {name}: {json.dumps(made['query'])}", highlight=False)


@query_app.command("list")
def list_queries(ctx: typer.Context) -> None:
    """Your named queries (JSON)."""
    with handled():
        print_json(_as_member(ctx, lambda n, a: n.epcis.subscriptions.queries(a)))


@query_app.command("show")
def show_query(
    ctx: typer.Context,
    name: NameArg,
    per_page: Annotated[str | None, typer.Option(help="Events per page (1 to 1000)")] = None,
    next_page_token: Annotated[str | None, typer.Option(help="Continue after a page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The named query and one page of its events (--json: the EPCISQueryDocument)."""
    with handled(), _naming_options():
        paging = {"perPage": per_page, "nextPageToken": next_page_token}
        params = {k: [v] for k, v in paging.items() if v is not None}

        def read(node: Node, member: str) -> tuple[Node, Any, Any]:
            subs = node.epcis.subscriptions
            return node, subs.named(member, name), subs.query_events(member, name, params)

        node, named, (found, token) = _as_member(ctx, read)
        if not as_json:
            out.print(f"query {name}: {json.dumps(named['query'])}", highlight=False)
        _print_events(node, found, token, name, as_json)


@query_app.command("delete")
def delete_query(ctx: typer.Context, name: NameArg) -> None:
    """Remove a named query and every subscription to it."""
    with handled():
        _as_member(ctx, lambda n, a: n.epcis.subscriptions.delete_query(a, name))
        out.print(f"deleted query {name}", highlight=False)


@app.command("subscribe")
def subscribe(
    ctx: typer.Context,
    name: NameArg,
    dest: Annotated[str, typer.Option(help="The http(s) URL reports are POSTed to")],
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            help="Report at set times instead of each new event: FIELD=VALUE, FIELD one of "
            "second, minute, hour, dayOfMonth, month, dayOfWeek (repeatable; e.g. minute=0)"
        ),
    ] = None,
    report_if_empty: Annotated[
        bool, typer.Option(help="With --schedule: report also when nothing matched")
    ] = False,
    signature_token: Annotated[
        str | None, typer.Option(help="Your secret for the reports' HMAC (default: one made)")
    ] = None,
    initial_record_time: Annotated[
        str | None, typer.Option(help="Report events recorded from this date-time on")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe a webhook to a named query: each new matching event is reported (or, with
    --schedule, those of each period)."""
    with handled():
        body: dict[str, Any] = {"dest": dest}
        if schedule:
            fields = [item.partition("=") for item in schedule]
            if any(not sep for _, sep, _ in fields):
                raise InvalidInput("--schedule takes FIELD=VALUE (e.g. minute=0)", field="schedule")
            body["schedule"] = {k: v for k, _, v in fields}
            body["reportIfEmpty"] = report_if_empty
        else:
            body["stream"] = True
            if report_if_empty:
                body["reportIfEmpty"] = True  # refused by the domain, naming it
        if signature_token is not None:
            body["signatureToken"] = signature_token
        if initial_record_time is not None:
            body["initialRecordTime"] = initial_record_time
        with _naming_subscription():
            made = _as_member(ctx, lambda n, a: n.epcis.subscriptions.subscribe(a, name, body))
        if as_json:
            print_json(made)
            return
        out.print(f"subscription {made['subscriptionID']} to {name} -> {made['dest']}")
        if "signatureToken" in made:
            out.print(f"signature token (shown only now): {made['signatureToken']}")


_CONTROLS = {"dest": "--dest", "schedule": "--schedule", "reportIfEmpty": "--report-if-empty",
             "signatureToken": "--signature-token",
             "initialRecordTime": "--initial-record-time"}  # fmt: skip


@contextmanager
def _naming_subscription() -> Iterator[None]:
    """A refused subscription control named as the option that gave it."""
    try:
        yield
    except LedgerError as exc:
        field = str(getattr(exc, "field", "") or "").partition(".")[0]
        if field in _CONTROLS:
            exc.message = f"{_CONTROLS[field]}: {exc.message}"
        raise


@app.command("subscriptions")
def subscriptions(ctx: typer.Context, name: NameArg) -> None:
    """Your subscriptions to a named query (JSON)."""
    with handled():
        print_json(_as_member(ctx, lambda n, a: n.epcis.subscriptions.subscriptions(a, name)))


@app.command("unsubscribe")
def unsubscribe(
    ctx: typer.Context,
    name: NameArg,
    subscription_id: Annotated[str, typer.Argument(help="The subscription's id")],
) -> None:
    """End a subscription: no more reports, pending ones dropped."""
    with handled():
        _as_member(ctx, lambda n, a: n.epcis.subscriptions.unsubscribe(a, name, subscription_id))
        out.print(f"unsubscribed {subscription_id}", highlight=False)
