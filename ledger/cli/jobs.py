"""`cofab job`: orders split by process step, signed acceptances and hand-overs, delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_utils import is_address, to_checksum_address
from rich.table import Table

from ledger.cli.common import (
    App,
    JsonOpt,
    handled,
    out,
    print_json,
    shared,
)
from ledger.cli.devices import parse_expiry
from ledger.core.errors import InvalidInput
from ledger.eth import eip712
from ledger.node import Node
from ledger.orders import signing as job_signing
from ledger.orders.jobs import JobView, SplitSpec, label32
from ledger.orders.signing import Acceptance, Handover

app = App(help="Orders: create, fund, split by process step, accept, hand over, deliver.")

JobArg = Annotated[int, typer.Argument(help="Job id")]
SplitArg = Annotated[int, typer.Argument(help="Split id (0, 1, … in the order they were given)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the signed record to this file")]


def resolve_account(node: Node, text: str) -> str:
    """An address, or the name of a key in this node's keyring."""
    if is_address(text):
        return to_checksum_address(text)
    return node.keyring.find(text).address


def parse_duration(text: str) -> int:
    """'14d', '36h', '90m', '600s' or plain seconds → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in units else (raw, "s")
    if not number.isdigit():
        raise InvalidInput(f"duration {text!r} is not N[smhd] (e.g. 14d) or seconds")
    return int(number) * units[unit]


def _done(node: Node, job_id: int, as_json: bool, what: str) -> None:
    view = node.jobs.view(job_id)
    if as_json:
        print_json(view)
    else:
        out.print(f"job {job_id}: {what} — now {view.status.label}")


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def print_view(view: JobView) -> None:
    """The order as lines that fit a narrow terminal (full addresses, no tables)."""
    t = view.token
    out.print(f"[bold]job {view.id}[/] — {view.status.label}", highlight=False)
    out.print(f"  buyer     {view.buyer}")
    out.print(f"  design    {view.design_id}")
    out.print(f"  designer  {view.designer}")
    out.print(f"  order     {view.quantity} units for {t.format(view.price)}")
    out.print(f"  deadline  {_when(view.deadline)}")
    out.print(f"  review    {view.review_period / 86_400:g} days after each delivery")
    out.print(
        f"  escrow    {t.format(view.deposited)} deposited, {t.format(view.held)} held,\n"
        f"            {t.format(view.released)} released, {t.format(view.refunded)} refunded"
    )
    if view.splits:
        out.print("[bold]splits[/]")
    for s in view.splits:
        after = f", after {'+'.join(map(str, s.depends_on))}" if s.depends_on else ""
        out.print(
            f"  {s.id}  {s.step}: {s.quantity} units{after} — {s.share_ppm / 10_000:g}% = "
            f"{t.format(s.amount)} — {s.status.label}",
            highlight=False,
        )
        out.print(f"     factory      {s.factory}")
        if s.review_ends:
            out.print(f"     review until {_when(s.review_ends)}, then anyone may finalise it")
        for holder in s.custody:
            out.print(f"     lots held by {holder}")
    if view.payouts:
        out.print("[bold]payouts[/]")
    for p in view.payouts:
        share = f" ({p.share_ppm / 10_000:g}%)" if p.share_ppm else ""
        out.print(f"  {t.format(p.amount)}{share} {p.state} — {p.role}", highlight=False)
        out.print(f"     to {p.account}")
    if view.splits:
        out.print(f"shares sum to {view.shares_total:,} ppm of 1,000,000")


def _write_record(data: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(data, indent=2)
    if path is None:
        out.print_json(text)
    else:
        path.write_text(text + "\n")
        out.print(f"signed record written to {path}")


def _read_record(path: Path, primary: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        typed = data["typed_data"]
        if typed["primaryType"] != primary:
            raise InvalidInput(f"{path} holds a {typed['primaryType']}, not a {primary}")
        data["signature"] = eip712.signature_bytes(data["signature"])
        return data
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a signed {primary} record: {exc}") from None


@app.command("create")
def create(
    ctx: typer.Context,
    design: Annotated[str, typer.Option(help="Design id (SHA-256 of the file) licensed to you")],
    quantity: Annotated[int, typer.Option(help="Units ordered")],
    price: Annotated[str, typer.Option(help="Price in token units, e.g. 1250.50")],
    deadline: Annotated[str, typer.Option(help="Delivery deadline: +30d, ISO 8601 or unix")],
    token: Annotated[
        str | None, typer.Option(help="Payment ERC-20 \\[default: the chain's payment token]")
    ] = None,
    spec_hash: Annotated[
        str | None, typer.Option(help="32-byte hex hash of the order document")
    ] = None,
    review_period: Annotated[
        str | None,
        typer.Option(
            "--review-period",
            help="Time you have to accept or dispute each delivery before anyone may finalise "
            "it: 14d, 36h, or seconds \\[default: 14d]",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Place an order as a buyer holding a licence of the design."""
    with handled():
        node = shared(ctx).signing()
        erc20 = node.settlement.token(token)
        job_id, _ = node.jobs.create(
            node.sender(),
            design,
            quantity,
            erc20.info.parse(price),
            parse_expiry(deadline),
            erc20.address,
            spec_hash,
            parse_duration(review_period) if review_period else None,
        )
        _done(node, job_id, as_json, "created")


@app.command("fund")
def fund(
    ctx: typer.Context,
    job_id: JobArg,
    as_json: JsonOpt = False,
) -> None:
    """Pay the price into escrow (approves the Settlement for it first if needed)."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.fund(node.sender(), job_id)
        _done(node, job_id, as_json, "funded")


@app.command("split")
def split(
    ctx: typer.Context,
    job_id: JobArg,
    splits: Annotated[
        list[str],
        typer.Option(
            "--split",
            help="factory=ADDRESS|KEY,step=LABEL,quantity=N,share=PPM|N%\\[,after=0+1] (repeat)",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Split a funded order by process step; shares + royalty + fee must sum to 1,000,000."""
    with handled():
        specs = [SplitSpec.parse(text) for text in splits]
        node = shared(ctx).signing()
        specs = [
            SplitSpec(
                resolve_account(node, s.factory), s.step, s.quantity, s.share_ppm, s.depends_on
            )
            for s in specs
        ]
        node.jobs.split(node.sender(), job_id, specs)
        _done(node, job_id, as_json, f"split into {len(specs)}")


@app.command("accept")
def accept(
    ctx: typer.Context,
    job_id: JobArg,
    split_id: SplitArg,
    sign_only: Annotated[
        bool, typer.Option("--sign-only", help="Sign an EIP-712 acceptance; send nothing")
    ] = False,
    signed: Annotated[
        Path | None, typer.Option("--signed", help="Relay this signed acceptance record")
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Signature deadline (+1d, ISO, unix)")
    ] = None,
    out_file: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept your split; or sign an acceptance for anyone to relay; or relay one (--signed)."""
    with handled():
        if sign_only and signed:
            raise InvalidInput("--sign-only and --signed exclude each other")
        node = shared(ctx).signing()
        sender, jobs = node.sender(), node.jobs
        if sign_only:
            record = jobs.acceptance(job_id, split_id, parse_expiry(expires) or None)
            if record.factory != sender.address:
                raise InvalidInput(
                    f"split {split_id} of job {job_id} belongs to {record.factory}, "
                    f"not to {sender.address}"
                )
            typed = jobs.typed_data(record)
            signature = eip712.sign(sender.account, typed)
            _write_record(
                {
                    "typed_data": typed,
                    "signer": sender.address,
                    "signature": "0x" + signature.hex(),
                },
                out_file,
            )
            return
        if signed is not None:
            data = _read_record(signed, "AcceptSplit")
            record = Acceptance.from_message(data["typed_data"]["message"])
            if (record.job_id, record.split_id) != (job_id, split_id):
                raise InvalidInput(
                    f"{signed} accepts split {record.split_id} of job {record.job_id}, "
                    f"not split {split_id} of job {job_id}"
                )
            jobs.accept_with_signature(sender, record, data["signature"])
        else:
            jobs.accept(sender, job_id, split_id)
        _done(node, job_id, as_json, f"split {split_id} accepted")


@app.command("handover")
def handover(
    ctx: typer.Context,
    job_id: JobArg,
    from_split: Annotated[int, typer.Argument(help="Split whose lots pass on")],
    to_split: Annotated[int, typer.Argument(help="Split that depends on it and receives them")],
    lot: Annotated[
        str | None, typer.Option(help="Lot identifier (≤ 32 characters, or 0x + 64 hex)")
    ] = None,
    quantity: Annotated[int | None, typer.Option(help="Units handed over")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Signature deadline (+1d, ISO, unix)")
    ] = None,
    sign_only: Annotated[
        bool, typer.Option("--sign-only", help="Sign your side of the hand-over; send nothing")
    ] = False,
    signed: Annotated[
        list[Path] | None,
        typer.Option("--signed", help="The other party's signed record (repeat for both)"),
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="from | to: the side a device key signs for")
    ] = None,
    out_file: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pass lots to the next split: both factories sign (your own side is signed for you)."""
    with handled():
        records = [_read_record(p, "Handover") for p in signed or []]
        if records:
            record = Handover.from_message(records[0]["typed_data"]["message"])
            if any(Handover.from_message(r["typed_data"]["message"]) != record for r in records):
                raise InvalidInput("the signed records are for different hand-overs")
        else:
            if lot is None or quantity is None:
                raise InvalidInput("a hand-over needs --lot and --quantity (or --signed records)")
            deadline = parse_expiry(expires) or job_signing.default_deadline()
            record = Handover(job_id, from_split, to_split, label32(lot, "lot"), quantity, deadline)
        if (record.job_id, record.from_split, record.to_split) != (job_id, from_split, to_split):
            raise InvalidInput("the signed record is for another job or other splits")
        if role not in (None, "from", "to"):
            raise InvalidInput("--role is from or to")
        node = shared(ctx).signing()
        sender, jobs = node.sender(), node.jobs
        if sign_only:
            side = jobs.handover_side(record, sender.address, role)
            typed = jobs.typed_data(record)
            signature = eip712.sign(sender.account, typed)
            _write_record(
                {
                    "typed_data": typed,
                    "signer": sender.address,
                    "role": side,
                    "signature": "0x" + signature.hex(),
                },
                out_file,
            )
            return
        signed_here: list[tuple[str | bytes, str | None]] = []
        if role is not None and sender.address not in jobs.handover_factories(record):
            # a device key sending the hand-over gives its own side's consent explicitly
            signed_here.append((eip712.sign(sender.account, jobs.typed_data(record)), role))
        from_sig, to_sig = jobs.sort_handover_signatures(
            record, [*signed_here, *((r["signature"], r.get("role")) for r in records)]
        )
        jobs.handover(sender, record, from_sig, to_sig)
        _done(node, job_id, as_json, f"lots of split {from_split} handed over to split {to_split}")


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    job_id: JobArg,
    split_id: SplitArg,
    evidence: Annotated[
        str | None, typer.Option(help="32-byte hex hash of the delivery note or QC evidence")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Declare your split delivered (its dependencies must be delivered and handed over)."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.deliver(node.sender(), job_id, split_id, evidence)
        _done(node, job_id, as_json, f"split {split_id} delivered")


@app.command("accept-delivery")
def accept_delivery(
    ctx: typer.Context,
    job_id: JobArg,
    split_id: SplitArg,
    as_json: JsonOpt = False,
) -> None:
    """Accept a delivered split as the buyer: its factory is paid its share."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.accept_delivery(node.sender(), job_id, split_id)
        _done(node, job_id, as_json, f"delivery of split {split_id} accepted")


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    job_id: JobArg,
    split_id: SplitArg,
    as_json: JsonOpt = False,
) -> None:
    """Finalise a delivery as accepted once the buyer's review period passed (anyone may)."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.finalize(node.sender(), job_id, split_id)
        _done(node, job_id, as_json, f"delivery of split {split_id} finalised as accepted")


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: JobArg,
    as_json: JsonOpt = False,
) -> None:
    """Cancel an order before production starts; the payment is refunded to the buyer."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.cancel(node.sender(), job_id)
        _done(node, job_id, as_json, "cancelled")


@app.command("expire")
def expire(
    ctx: typer.Context,
    job_id: JobArg,
    as_json: JsonOpt = False,
) -> None:
    """Expire an order past its deadline: what was not delivered is refunded (anyone may)."""
    with handled():
        node = shared(ctx).signing()
        node.jobs.expire(node.sender(), job_id)
        _done(node, job_id, as_json, "expired")


@app.command("show")
def show(ctx: typer.Context, job_id: JobArg, as_json: JsonOpt = False) -> None:
    """An order: state, splits, who holds the lots, shares and payouts."""
    with handled():
        view = shared(ctx).attach().jobs.view(job_id)
        if as_json:
            print_json(view)
        else:
            print_view(view)


@app.command("list")
def list_(
    ctx: typer.Context,
    party: Annotated[
        str | None, typer.Option(help="Only jobs where this address or key is buyer or factory")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List orders."""
    with handled():
        node = shared(ctx).attach()
        jobs = node.jobs.list_jobs(resolve_account(node, party) if party else None)
        if as_json:
            print_json(jobs)
            return
        if not jobs:
            out.print("no jobs yet")
            return
        table = Table("job", "status", "buyer", "price", "splits", "deadline")
        for j in jobs:
            token = node.settlement.token(j.token).info
            table.add_row(
                str(j.id),
                j.status.label,
                j.buyer,
                token.format(j.price),
                str(j.split_count),
                _when(j.deadline)[:10],
            )
        out.print(table)
