"""`cofab audit`: a reproducible audit report of a job, from the chain and evidence bundles."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ledger.audit.chain_record import Contracts
from ledger.audit.engine import AuditInputs, audit, contracts_of, seal
from ledger.audit.html import render
from ledger.cli.common import App, handled, out, shared
from ledger.core.errors import InvalidInput
from ledger.eth.chain import http_web3
from ledger.steps.bundle import Bundle
from ledger.verify.checker import pool

app = App(help="Audit a job from the chain and the parties' evidence bundles.")
FINDINGS_EXIT = 4


class Format(StrEnum):
    JSON = "json"
    HTML = "html"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


@app.command("job")
def job(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id")],
    bundle: Annotated[
        list[Path] | None, typer.Option(help="A step proof bundle (repeatable)")
    ] = None,
    design_file: Annotated[
        list[Path] | None, typer.Option(help="The design file as delivered (repeatable)")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Report format")] = Format.JSON,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the report here")] = None,
    job_board: Annotated[
        str | None, typer.Option(help="JobBoard address (default: this node's deployment)")
    ] = None,
    traceability: Annotated[
        str | None, typer.Option(help="Traceability address (default: this node's deployment)")
    ] = None,
) -> None:
    """Rebuild job JOB_ID from chain events and the bundles, check it, write the report.

    Exit 0 when the job audits clean, 4 when there are critical or major findings.
    """
    with handled():
        options = shared(ctx)
        if job_board:
            if not options.rpc_url:
                raise InvalidInput("--job-board needs --rpc-url")
            contracts = Contracts.discover(http_web3(options.rpc_url), job_board, traceability)
        else:
            contracts = contracts_of(options.attach())
        pool()  # its workers start while the bundles are read
        bundles = [Bundle.load(_read(p)) for p in bundle or []]
        inputs = AuditInputs(bundles=bundles, design_files=[_read(p) for p in design_file or []])
        with out.status(f"auditing job {job_id}"):
            report = seal(audit(contracts, job_id, inputs))
        text = (
            json.dumps(report, indent=1, sort_keys=True) if fmt is Format.JSON else render(report)
        )
        if out_path is None:
            typer.echo(text)
        else:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(text + "\n")
        s = report["summary"]
        out.print(
            f"job {job_id}: {s['verdict']} ({s['critical']} critical, {s['major']} major, "
            f"{s['minor']} minor, {s['info']} info)",
            highlight=False,
        )
        for f in report["findings"]:
            if f["severity"] in ("critical", "major"):
                out.print(f"  [{f['severity']}] {f['statement']}", markup=False, highlight=False)
        if out_path is not None:
            out.print(f"report {out_path}")
        out.print(f"report hash {report['report_hash']}")
        if s["verdict"] != "clean":
            raise typer.Exit(FINDINGS_EXIT)
