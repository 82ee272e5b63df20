"""`cofab dispute`: open a dispute on a split, add evidence, vote as an auditor, lapse, read."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

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
from ledger.disputes.client import Dispute, DisputeStatus
from ledger.node import Node

app = App(help="Disputes on a split: open, evidence, auditor votes, ruling, lapse.")

DisputeArg = Annotated[int, typer.Argument(help="Dispute id")]
EvidenceHashOpt = Annotated[
    str | None, typer.Option("--evidence-hash", help="32-byte hex hash of the evidence")
]
EvidenceFileOpt = Annotated[
    Path | None,
    typer.Option("--evidence-file", help="Evidence file: its SHA-256 is recorded (not the file)"),
]


def evidence_hash(hash_hex: str | None, path: Path | None) -> str:
    """The evidence hash given, or the SHA-256 of the evidence file; exactly one of them."""
    if (hash_hex is None) == (path is None):
        raise InvalidInput("give the evidence as --evidence-hash HEX or --evidence-file PATH")
    if path is None:
        return str(hash_hex)
    try:
        return "0x" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InvalidInput(f"cannot read evidence file {path}: {exc.strerror}") from None


def when(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_dispute(d: Dispute) -> None:
    out.print(f"[bold]dispute {d.id}[/] — split {d.split_id} of job {d.job_id}: {d.phase}")
    out.print(f"  claimant    {d.claimant}")
    out.print(f"  respondent  {d.respondent}" + (" (has answered)" if d.respondent_heard else ""))
    out.print(f"  reason      {d.reason}", highlight=False)
    out.print(f"  evidence    {d.evidence_hash}")
    out.print(f"  opened      {when(d.opened_at)}")
    out.print(f"  evidence by {when(d.evidence_deadline)}")
    out.print(f"  votes by    {when(d.ruling_deadline)} ({d.votes} of {d.quorum} cast)")
    if d.status is DisputeStatus.RULED:
        fault = d.fault.label if d.fault is not None else "none"
        out.print(
            f"  ruling      pay the factory {(d.payout_ppm or 0) / 10_000:g}% = {d.payout}, "
            f"refund the buyer {d.refund}; at fault: {fault}"
        )
    if d.evidence:
        table = Table("party", "hash", "uri", "time", title="evidence")
        for e in d.evidence:
            table.add_row(e.party, e.evidence_hash, e.uri or "-", when(e.time))
        out.print(table)
    if d.vote_list:
        table = Table("auditor", "payout", "fault", "time", title="votes")
        for v in d.vote_list:
            table.add_row(v.auditor, f"{v.payout_ppm / 10_000:g}%", v.fault.label, when(v.time))
        out.print(table)


def _done(node: Node, dispute_id: int, as_json: bool) -> None:
    d = node.disputes.show(dispute_id)
    if as_json:
        print_json(d)
    else:
        out.print(str(d))


@app.command("open")
def open_(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id")],
    split_id: Annotated[int, typer.Argument(help="Split id")],
    reason: Annotated[str, typer.Option(help="What is disputed, e.g. 'late delivery'")],
    evidence_hash_hex: EvidenceHashOpt = None,
    evidence_file: EvidenceFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a dispute on a split as its order's buyer or its factory; freezes its payout."""
    with handled():
        digest = evidence_hash(evidence_hash_hex, evidence_file)
        node = shared(ctx).signing()
        dispute_id = node.disputes.open(node.sender(), job_id, split_id, reason, digest)
        _done(node, dispute_id, as_json)


@app.command("evidence")
def evidence(
    ctx: typer.Context,
    dispute_id: DisputeArg,
    evidence_hash_hex: EvidenceHashOpt = None,
    evidence_file: EvidenceFileOpt = None,
    uri: Annotated[str, typer.Option(help="Where the evidence can be fetched")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add evidence as the claimant or respondent, until the evidence deadline."""
    with handled():
        digest = evidence_hash(evidence_hash_hex, evidence_file)
        node = shared(ctx).signing()
        node.disputes.add_evidence(node.sender(), dispute_id, digest, uri)
        _done(node, dispute_id, as_json)


@app.command("vote")
def vote(
    ctx: typer.Context,
    dispute_id: DisputeArg,
    payout: Annotated[
        str, typer.Option(help="Share of the split to pay its factory: ppm or %, e.g. 60%")
    ],
    fault: Annotated[str, typer.Option(help="Who is at fault: none | buyer | factory")] = "none",
    as_json: JsonOpt = False,
) -> None:
    """Vote as an active auditor who is not a party to the order; the quorum's vote rules."""
    with handled():
        node = shared(ctx).signing()
        node.disputes.vote(node.sender(), dispute_id, payout, fault)
        _done(node, dispute_id, as_json)


@app.command("lapse")
def lapse(
    ctx: typer.Context,
    dispute_id: DisputeArg,
    as_json: JsonOpt = False,
) -> None:
    """Close a dispute without ruling after its ruling deadline (anyone); unfreezes the split."""
    with handled():
        node = shared(ctx).signing()
        node.disputes.lapse(node.sender(), dispute_id)
        _done(node, dispute_id, as_json)


@app.command("show")
def show(
    ctx: typer.Context,
    dispute_id: DisputeArg,
    as_json: JsonOpt = False,
) -> None:
    """Show a dispute: parties, deadlines, evidence, votes and the ruling."""
    with handled():
        d = shared(ctx).attach().disputes.show(dispute_id)
        if as_json:
            print_json(d)
        else:
            print_dispute(d)


@app.command("list")
def list_(
    ctx: typer.Context,
    job: Annotated[int | None, typer.Option(help="Only the disputes of this job")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only disputes that are open, ruled or lapsed")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List disputes, oldest first."""
    with handled():
        wanted = None
        if status is not None:
            try:
                wanted = DisputeStatus[status.strip().upper()]
            except KeyError:
                raise InvalidInput(f"status {status!r} must be open, ruled or lapsed") from None
        items = shared(ctx).attach().disputes.list(job, wanted)
        if as_json:
            print_json(items)
            return
        if not items:
            out.print("no disputes")
            return
        table = Table("id", "job", "split", "claimant", "phase", "votes", "reason")
        for d in items:
            table.add_row(
                str(d.id),
                str(d.job_id),
                str(d.split_id),
                d.claimant,
                d.phase,
                f"{d.votes}/{d.quorum}",
                d.reason,
            )
        out.print(table)
