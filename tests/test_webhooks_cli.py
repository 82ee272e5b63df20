"""`cofab webhook` as a user runs it, against a detached devnet node (anvil)."""

from __future__ import annotations

import json

from kit import Cli, ok
from kit import cli_refused as refused

PUBLIC = "http://93.184.216.34/hooks/cofab"  # a public address, never called here


def test_add_list_remove_a_webhook(running: Cli) -> None:
    types = ok(running.run("webhook", "types"))
    assert "vote.due" in types and "funds.withdrawable" in types

    refused(running.run("webhook", "add", "ftp://example.org/x"), 2, "http:// or https://")
    own = f"http://127.0.0.1:{running.api_port}/jobs"
    refused(running.run("webhook", "add", own), 2, "this node itself")
    refused(running.run("webhook", "add", "http://10.1.2.3/x"), 2, "private or reserved")
    refused(running.run("webhook", "add", PUBLIC, "-e", "nope"), 2, "unknown event type")
    assert json.loads(ok(running.run("webhook", "list", "--json"))) == []

    made = json.loads(
        ok(
            running.run(
                "webhook", "add", PUBLIC, "-e", "vote.due", "-e", "dispute.opened", "--json"
            )
        )
    )
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["vote.due", "dispute.opened"]
    [listed] = json.loads(ok(running.run("webhook", "list", "--json")))
    assert listed["id"] == made["id"] and "secret" not in listed
    assert listed["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
    assert made["id"] in ok(running.run("webhook", "list"))

    refused(running.run("webhook", "remove", "wh_0000000000000000"), 1, "no webhook")
    ok(running.run("webhook", "remove", made["id"]))
    assert json.loads(ok(running.run("webhook", "list", "--json"))) == []
