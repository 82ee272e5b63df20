"""`cofab dispute` and the reputation in `cofab member show`, as a user runs them, against a
detached devnet node (anvil). The order is staged through the library on the same chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import FAST_KDF, Cli, cli_refused, ok
from ledger.core.keys import Keyring, read_passphrase
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.scenario import factory_shares, licensed_design, member, order_in_production

PASS = "parties-pass"


@pytest.mark.slow
def test_open_answer_vote_and_read_a_dispute(running: Cli, tmp_path: Path) -> None:
    c = running
    (c.data_dir / "parties.pass").write_text(PASS + "\n")
    keyring = Keyring(c.data_dir / "keystore")
    names = ("buyer", "painter", "machinist", "auditor-a", "auditor-b")
    keys = {n: keyring.new(n, PASS, kdf_iterations=FAST_KDF).address for n in names}

    node = Node.attach(c.data_dir)
    try:
        node.unlock("operator", read_passphrase(c.data_dir / "secrets" / "operator.pass"))
        roles = {"buyer": Role.BUYER, "painter": Role.FACTORY, "machinist": Role.FACTORY}
        senders = {n: node.unlock(n, PASS) for n in roles}
        for name, role in roles.items():
            member(node, int(role), senders[name].account)
        for name in ("auditor-a", "auditor-b"):
            node.consortium.propose_admit(node.sender(), keys[name], int(Role.AUDITOR))
        designer = member(node, int(Role.DESIGNER))
        design = licensed_design(node, designer, keys["buyer"])
        shares = factory_shares(2)
        specs = [
            SplitSpec(keys["machinist"], "machining", 10, shares[0]),
            SplitSpec(keys["painter"], "painting", 10, shares[1]),
        ]
        job = order_in_production(node, senders["buyer"], design, specs, 1_000 * 10**6)
        node.jobs.deliver(senders["painter"], job, 1)
    finally:
        node.close()

    def as_(name: str) -> list[str]:
        return ["--from", name, "--passphrase-file", str(c.data_dir / "parties.pass")]

    photos = tmp_path / "photos.zip"
    photos.write_bytes(b"photos of the flaking paint")
    out = ok(
        c.run(
            "dispute", "open", str(job), "1", "--reason", "paint flaking",
            "--evidence-file", str(photos), *as_("buyer"),
        )
    )  # fmt: skip
    assert f"dispute 1 on split 1 of job {job}: open, evidence" in out
    cli_refused(
        c.run(
            "dispute", "open", str(job), "1", "--reason", "again",
            "--evidence-hash", "0x" + "11" * 32, *as_("painter"),
        ),
        1,
        "already under open dispute 1",
    )  # fmt: skip
    cli_refused(
        c.run("dispute", "open", str(job), "0", "--reason", "x", *as_("buyer")), 2, "evidence"
    )
    cli_refused(c.run("job", "accept-delivery", str(job), "1", *as_("buyer")), 1, "frozen")
    cli_refused(
        c.run("dispute", "vote", "1", "--payout", "60%", "--fault", "factory", *as_("auditor-a")),
        1,
        "voting on dispute 1 opens when the respondent has submitted evidence",
    )
    ok(
        c.run(
            "dispute", "evidence", "1", "--evidence-hash", "0x" + "a2" * 32,
            "--uri", "ipfs://qc-report", *as_("painter"),
        )
    )  # fmt: skip
    cli_refused(
        c.run("dispute", "vote", "1", "--payout", "60%", "--fault", "factory", *as_("painter")),
        1,
        "not an active member with the auditor role",
    )
    cli_refused(c.run("dispute", "vote", "1", "--payout", "140%", *as_("auditor-a")), 2, "payout")
    ok(c.run("dispute", "vote", "1", "--payout", "60%", "--fault", "factory", *as_("auditor-a")))
    out = ok(
        c.run("dispute", "vote", "1", "--payout", "700000", "--fault", "factory", *as_("auditor-b"))
    )
    assert "ruled by 2 vote(s) — pay the factory 65%" in out and "fault: factory" in out

    shown = ok(c.run("dispute", "show", "1"))
    for text in ("paint flaking", "ipfs://qc-report", "at fault: factory", keys["auditor-b"]):
        assert text in shown
    listed = json.loads(ok(c.run("dispute", "list", "--job", str(job), "--json")))
    assert [(d["id"], d["status"], d["ruling"]["payout_ppm"]) for d in listed] == [
        (1, "ruled", 650_000)
    ]
    assert json.loads(ok(c.run("dispute", "list", "--status", "open", "--json"))) == []
    cli_refused(c.run("dispute", "list", "--status", "pending"), 2, "open, ruled or lapsed")
    cli_refused(c.run("dispute", "lapse", "1"), 1, "dispute 1 is ruled")
    cli_refused(c.run("dispute", "show", "9"), 1, "no dispute 9")

    painter = json.loads(ok(c.run("member", "show", keys["painter"], "--json")))
    rep = painter["reputation"]
    assert rep["disputes"] == {
        "against": 1,
        "opened": 0,
        "ruled": 1,
        "lost": 1,
        "lapsed": 0,
        "open": 0,
    }
    assert rep["splits"] == {"assigned": 1, "accepted": 1, "delivered": 1}
    text = ok(c.run("member", "show", keys["painter"]))
    assert "1 lost of 1 ruled" in text and "1 on time, 0 late" in text and "dUSD" in text
    buyer = json.loads(ok(c.run("member", "show", keys["buyer"], "--json")))
    assert "reputation" not in buyer
