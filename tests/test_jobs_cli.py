"""`cofab job` and `cofab pay` as a user runs them against a detached devnet node: an order
from creation to withdrawal, a signed acceptance relayed by the operator, a two-party
hand-over through signed files, and refusals as one line with an exit code."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kit import FAST_KDF, Cli, cli_refused, ok
from ledger.core.keys import Keyring
from ledger.membership.roles import Role
from ledger.node import Node

PASS = "plant-pass"


def members(cli: Cli) -> dict[str, str]:
    """Keys in the node's keyring for a buyer, a designer and two factories, admitted, and a
    design licensed to the buyer at a 5 % royalty."""
    ring = Keyring(cli.data_dir / "keystore")
    roles = {"buyer": Role.BUYER, "designer": Role.DESIGNER, "mill": Role.FACTORY}
    roles["assembler"] = Role.FACTORY
    node = Node.attach(cli.data_dir)
    try:
        node.unlock("operator", (cli.data_dir / "secrets" / "operator.pass").read_text())
        out = {}
        for name, role in roles.items():
            out[name] = ring.new(name, PASS, kdf_iterations=FAST_KDF).address
            node.consortium.propose_admit(node.sender(), out[name], int(role))
        designer = node.unlock("designer", PASS)
        design = hashlib.sha256(os.urandom(8)).digest()
        node.designs.register(designer, design, bytes(32), bytes(32))
        node.designs.grant_licence(designer, design, out["buyer"], 50_000)
        out["design"] = design.hex()
    finally:
        node.close()
    (cli.data_dir / "p.pass").write_text(PASS)
    return out


@pytest.mark.slow
def test_an_order_through_the_cli(running: Cli, tmp_path: Path) -> None:
    cli = running
    m = members(cli)

    def signed_by(key: str, *args: str) -> list[str]:
        return [*args, "--from", key, "--passphrase-file", str(cli.data_dir / "p.pass")]

    def as_(key: str, *args: str) -> str:
        return ok(cli.run(*signed_by(key, *args)))

    def show() -> dict[str, Any]:
        return json.loads(ok(cli.run("job", "show", "1", "--json")))

    ok(cli.run("pay", "mint", m["buyer"], "5000"))
    order = ["--design", m["design"], "--quantity", "20", "--price", "1000", "--deadline", "+30d"]
    out = as_("buyer", "job", "create", *order, "--review-period", "2d")
    assert "job 1: created" in out
    assert show()["review_period"] == 2 * 86_400
    as_("buyer", "job", "fund", "1")
    machining = "factory=mill,step=machining,quantity=20,share=60%"
    assembly = "factory=assembler,step=assembly,quantity=20,share={},after=0"
    short = ["--split", machining, "--split", assembly.format("30%")]
    cli_refused(cli.run(*signed_by("buyer", "job", "split", "1", *short)), 1, "exactly 1000000")
    as_("buyer", "job", "split", "1", "--split", machining, "--split", assembly.format("33%"))
    assert show()["shares_total_ppm"] == 1_000_000

    as_("mill", "job", "accept", "1", "0")
    signed = tmp_path / "accept.json"
    as_("assembler", "job", "accept", "1", "1", "--sign-only", "--out", str(signed))
    assert json.loads(signed.read_text())["typed_data"]["primaryType"] == "AcceptSplit"
    ok(cli.run("job", "accept", "1", "1", "--signed", str(signed)))  # the operator relays
    assert show()["status"] == "in_production"

    as_("mill", "job", "deliver", "1", "0")
    early = cli.run(*signed_by("mill", "job", "finalize", "1", "0"))
    cli_refused(early, 1, "may review the delivery of split 0 of job 1 until")
    assert "review until" in ok(cli.run("job", "show", "1"))
    lots = tmp_path / "lots.json"
    lot = ["--lot", "LOT-7", "--quantity", "20"]
    as_("mill", "job", "handover", "1", "0", "1", *lot, "--sign-only", "--out", str(lots))
    as_("assembler", "job", "handover", "1", "0", "1", "--signed", str(lots))
    view = show()
    assert view["splits"][0]["custody"] == [m["assembler"]]
    as_("assembler", "job", "deliver", "1", "1")
    as_("buyer", "job", "accept-delivery", "1", "0")
    as_("buyer", "job", "accept-delivery", "1", "1")
    view = show()
    assert view["status"] == "settled" and view["escrow"]["held"] == 0
    text = ok(cli.run("job", "show", "1"))
    assert "machining" in text and "settled" in text and "1,000,000 ppm" in text
    listed = json.loads(ok(cli.run("job", "list", "--party", "assembler", "--json")))
    assert [j["id"] for j in listed] == [1]

    balance = json.loads(ok(cli.run("pay", "balance", "mill", "--json")))
    assert balance["withdrawable"] == 600 * 10**6
    assert "withdrew 600.000000 dUSD" in as_("mill", "pay", "withdraw")
    cli_refused(cli.run(*signed_by("mill", "pay", "withdraw")), 1, "nothing to withdraw")
    balance = json.loads(ok(cli.run("pay", "balance", "mill", "--json")))
    assert balance["wallet"] == 600 * 10**6 and balance["withdrawable"] == 0
    royalty = json.loads(ok(cli.run("pay", "balance", m["designer"], "--json")))
    assert royalty["withdrawable"] == 50 * 10**6
    totals = json.loads(ok(cli.run("pay", "totals", "--json")))
    assert totals["conserved"] and totals["deposited"] == 1000 * 10**6

    cli_refused(cli.run("job", "show", "9"), 1, "there is no job 9")
    cli_refused(cli.run("job", "split", "1", "--split", "factory=mill,step=x"), 2, "needs factory")
