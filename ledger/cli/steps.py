"""`cofab step`: record, list, anchor, export and verify production steps."""

from __future__ import annotations

import json
import sys
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
from ledger.core.abi import hex32
from ledger.core.blobs import BlobStore
from ledger.core.errors import InvalidInput
from ledger.eth.chain import http_web3
from ledger.steps.bundle import Bundle, Encoding, encoded
from ledger.steps.compact import SUFFIX
from ledger.steps.journal import JournalStep
from ledger.verify.checker import pool, verify_bundle

app = App(help="Signed, hash-chained, anchored production steps.")
JobArg = Annotated[int, typer.Argument(help="Job id")]
SplitArg = Annotated[int, typer.Argument(help="Split id")]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInput(f"{what} {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} {path} must be a JSON object")
    return data


@app.command("record")
def record(
    ctx: typer.Context,
    job: JobArg,
    split: SplitArg,
    payload: Annotated[Path, typer.Option(help="EPCIS 2.0 event (JSON file)")],
    evidence: Annotated[list[Path] | None, typer.Option(help="Evidence file (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign the split's next step with your key (factory or device) and journal it."""
    with handled():
        document = _read_json(payload, "payload")
        node = shared(ctx).signing()
        blobs = BlobStore(node.data_dir / "blobs")
        hashes = []
        for path in evidence or []:
            try:
                hashes.append(blobs.put(path.read_bytes()))
            except OSError as exc:
                raise InvalidInput(f"cannot read evidence {path}: {exc.strerror}") from None
        result = node.steps.record(node.sender().address, job, split, document, hashes)
        if as_json:
            print_json(result)
        else:
            out.print(f"recorded step {result.step_hashes[0]}")


@app.command("list")
def list_(
    ctx: typer.Context,
    job: JobArg,
    split: SplitArg,
    as_json: JsonOpt = False,
) -> None:
    """The split's steps, oldest first, and how far they are anchored."""
    with handled():
        timeline = shared(ctx).attach().steps.timeline(job, split)
        if as_json:
            print_json(timeline)
            return
        table = Table("seq", "step", "time", "signer", "hash", "anchored")
        for s in timeline.steps:
            r = s.record
            table.add_row(
                str(r["seq"]),
                r["bizStep"],
                str(r["time"]),
                s.signer,
                hex32(s.step_hash)[:18] + "…",
                "yes" if s.anchored else "no",
            )
        out.print(table)
        out.print(
            f"factory {timeline.factory}; anchored through step "
            f"{timeline.anchored_through} in {timeline.anchors} anchor(s)"
        )


@app.command("show")
def show(
    ctx: typer.Context,
    step_hash: Annotated[str, typer.Argument(help="Step hash (0x…)")],
) -> None:
    """One step with its payload."""
    with handled():
        found = shared(ctx).attach().steps.find(step_hash)
        if found is None:
            raise InvalidInput(f"no step {step_hash} in this node's journal")
        stored, payload = found
        # the payload as its JSON object (the API gives its canonical text)
        shown = JournalStep.of(stored).model_dump(mode="json")
        print_json({**shown, "payload": json.loads(payload) if payload else None})


@app.command("anchor")
def anchor(
    ctx: typer.Context,
    job: JobArg,
    split: SplitArg,
    max_steps: Annotated[int, typer.Option(help="Steps per anchor")] = 1024,
) -> None:
    """Anchor the split's unanchored steps now (the node also does it by count and age)."""
    with handled():
        node = shared(ctx).signing()
        done = node.steps.anchor(job, split, max_steps)
        if not done:
            out.print("nothing to anchor")
        for a in done:
            out.print(
                f"anchored steps {a.from_seq}-{a.to_seq} as anchor {a.index} "
                f"(root {a.root[:18]}…, tx {a.tx_hash}, block {a.block_number})"
            )


@app.command("export")
def export(
    ctx: typer.Context,
    job: JobArg,
    split: Annotated[int | None, typer.Option(help="Only this split")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Bundle file to write")] = None,
    fmt: Annotated[
        Encoding | None,
        typer.Option("--format", help=f"json, or compact (default for an --out ending {SUFFIX})"),
    ] = None,
) -> None:
    """Write the proof bundle of a job's steps (to standard output without --out)."""
    with handled():
        data = shared(ctx).attach().steps.export(job, split)
        encoding = fmt or (Encoding.of_path(out_file) if out_file else Encoding.JSON)
        raw = encoded(data, encoding)
        if out_file is None:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            return
        out_file.write_bytes(raw)
        steps = sum(len(s["steps"]) for s in data["splits"])
        out.print(f"wrote {out_file}: {steps} step(s) of job {job}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    bundle_file: Annotated[Path, typer.Argument(help="Proof bundle from `cofab step export`")],
    as_json: JsonOpt = False,
) -> None:
    """Check a bundle against the chain alone, as `cofab audit` checks steps. Exit 0 valid
    (no critical or major finding), 2 contradicted or unreadable."""
    with handled():
        pool()  # its workers start while the file is read
        try:
            raw = bundle_file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {bundle_file}: {exc.strerror}") from None
        result = verify_bundle(Bundle.load(raw), http_web3(shared(ctx).endpoint()))
        if as_json:
            print_json(result.report())
        else:
            for f in result.findings:
                err.print(f"{f.severity}: {f.statement} [{f.code}]", markup=False)
            verdict = "valid" if result.ok else "INVALID"
            out.print(f"{verdict}: {result.steps} step(s), {result.anchored} proven anchored")
        if not result.ok:
            raise typer.Exit(2)
