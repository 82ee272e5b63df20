"""The `cofab` command line."""

from __future__ import annotations

import os
import sys

from ledger.cli import audit, demo, designs, devices, jobs, keys, members, node, pay, steps
from ledger.cli import disputes as disputes_cli
from ledger.cli import epcis as epcis_cli
from ledger.cli import webhooks as webhooks_cli
from ledger.cli.common import App, SharedOptionsGroup, err, shared_options

app = App(
    cls=SharedOptionsGroup,
    help="cofab: a consortium ledger for shared manufacturing.\n\n"
    "Exit codes: 0 done, 1 refused or failed, 2 invalid input, 3 chain or node unavailable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.callback()(shared_options)
app.command("up")(node.up)
app.command("down")(node.down)
app.command("status")(node.status)
app.add_typer(keys.app, name="keys")
app.add_typer(members.app, name="member")
app.add_typer(devices.app, name="device")
app.add_typer(designs.app, name="design")
app.add_typer(steps.app, name="step")
app.add_typer(jobs.app, name="job")
app.add_typer(pay.app, name="pay")
app.add_typer(audit.app, name="audit")
app.add_typer(disputes_cli.app, name="dispute")
app.add_typer(epcis_cli.app, name="epcis")
app.add_typer(webhooks_cli.app, name="webhook")
app.command("demo")(demo.demo)


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("COFAB_DEBUG"):
            raise
        err.print(f"[bold red]error:[/] unexpected failure: {exc.__class__.__name__}: {exc}")
        err.print("set COFAB_DEBUG=1 to see the traceback")
        sys.exit(70)
