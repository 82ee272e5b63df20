"""`cofab design` as a user runs it, against a detached devnet node (anvil)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kit import FAST_KDF, Cli, cli_refused, ok
from ledger.core.keys import Keyring


def test_register_verify_license_share_fetch(running: Cli, tmp_path: Path) -> None:
    c = running
    operator = json.loads(ok(c.run("keys", "list", "--json")))[0]["address"]
    ok(c.run("member", "propose", "set-roles", operator, "--roles", "council,designer"))
    files = {}
    for name in ("bracket.step", "hinge.step", "cover.step", "unregistered.step"):
        files[name] = tmp_path / name
        files[name].write_bytes(os.urandom(2048))
    bundles = tmp_path / "bundles"

    [single] = json.loads(
        ok(
            c.run(
                "design",
                "register",
                str(files["bracket.step"]),
                "--title",
                "Bracket",
                "--bundle-dir",
                str(bundles),
                "--json",
            )
        )
    )
    out = ok(
        c.run(
            "design",
            "register",
            str(files["hinge.step"]),
            str(files["cover.step"]),
            "--parent",
            single["design_id"],
            "--bundle-dir",
            str(bundles),
        )
    )
    assert "one batch of 2 files" in out
    cli_refused(c.run("design", "register", str(files["bracket.step"])), 1, "already registered")

    rpc = ["--rpc-url", f"http://127.0.0.1:{c.devnet_port}"]
    bracket_cert = bundles / "bracket.step.cert.json"
    out = ok(
        c.run("design", "verify", str(files["bracket.step"]), "--proof", str(bracket_cert), *rpc)
    )
    assert "registered" in out and operator in out and f"block    {single['block_number']}" in out
    assert "priority unrevealed" in out  # committed only: the chain does not know the hash
    out = ok(
        c.run(
            "design",
            "verify",
            str(files["hinge.step"]),
            "--proof",
            str(bundles / "hinge.step.cert.json"),
            *rpc,
        )
    )
    assert "priority unrevealed" in out
    contract = json.loads(ok(c.run("status", "--json")))["contracts"]["DesignRegistry"]
    cli_refused(
        c.run("design", "verify", str(files["unregistered.step"]), "--contract", contract, *rpc),
        1,
        "not registered",
    )
    cli_refused(
        c.run("design", "verify", str(files["hinge.step"]), "--proof", str(bracket_cert), *rpc),
        2,
        "does not match the bundle",
    )
    truncated = tmp_path / "truncated.json"
    truncated.write_text(bracket_cert.read_text()[:200])
    cli_refused(
        c.run("design", "verify", str(files["bracket.step"]), "--proof", str(truncated), *rpc),
        2,
        "corrupt bundle",
    )
    other_chain = tmp_path / "other-chain.json"
    other_chain.write_text(json.dumps({**json.loads(bracket_cert.read_text()), "chain_id": 1}))
    cli_refused(
        c.run("design", "verify", str(files["bracket.step"]), "--proof", str(other_chain), *rpc),
        2,
        "wrong chain",
    )

    # a factory publishes its encryption key, is licensed, receives the file encrypted
    (c.data_dir / "plant.pass").write_text("plant-pass\n")
    plant = Keyring(c.data_dir / "keystore").new("plant", "plant-pass", kdf_iterations=FAST_KDF)
    as_plant = ["--from", "plant", "--passphrase-file", str(c.data_dir / "plant.pass")]
    ok(c.run("member", "propose", "admit", plant.address, "--roles", "factory"))
    ok(c.run("design", "key", "--publish", *as_plant))
    did = single["design_id"]
    cli_refused(c.run("design", "share", did, "--to", plant.address), 1, "no active licence")
    ok(c.run("design", "license", did, "--to", plant.address, "--royalty-ppm", "25000"))
    ok(c.run("design", "share", did, "--to", plant.address))
    received = tmp_path / "received.step"
    ok(c.run("design", "fetch", did, "--out", str(received), *as_plant))
    assert received.read_bytes() == files["bracket.step"].read_bytes()
    ok(c.run("design", "license", did, "--to", plant.address, "--revoke"))
    cli_refused(
        c.run("design", "fetch", did, "--out", str(tmp_path / "again.step"), *as_plant),
        1,
        "no active licence",
    )
    shown = json.loads(ok(c.run("design", "show", did, "--json")))
    assert shown["designer"] == operator and shown["metadata"]["title"] == "Bracket"
    assert shown["status"] == "active" and shown["block_number"] == single["block_number"]
    out = ok(
        c.run("design", "verify", str(files["bracket.step"]), "--proof", str(bracket_cert), *rpc)
    )
    assert "priority held" in out  # licensing revealed it, dated at its commitment

    # a batch member goes on chain with `design reveal`, from a certificate file too
    hinge = json.loads((bundles / "hinge.step.cert.json").read_text())
    revealed = json.loads(
        ok(
            c.run(
                "design", "reveal", hinge["design_id"],
                "--proof", str(bundles / "hinge.step.cert.json"), "--json",
            )
        )
    )  # fmt: skip
    assert revealed["designer"] == operator and revealed["block_number"] == hinge["block_number"]
    assert revealed["from_batch"] is True
    # the parent of the batch (the bracket) was already on chain; the chain alone now knows
    out = ok(c.run("design", "verify", str(files["hinge.step"]), "--contract", contract, *rpc))
    assert "priority held" in out
