"""The `cofab` command as a user runs it: a real devnet node in processes of its own, real
exit codes. Commands run through tests/kit.py's `cofab`; the entry point, Ctrl-C and a
missing terminal are checked on processes of their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from kit import FAST_KDF, Cli, cli_refused, new_account, ok
from ledger.core.keys import Keyring
from ledger.eth.devnet import port_is_free
from ledger.eth.toolchain import free_port


def test_help_lists_commands(cli: Cli) -> None:
    out = ok(cli.process("--help"))  # the entry point a user's shell runs
    for command in ("up", "down", "status", "keys", "member", "device"):
        assert command in out


def assert_private(data_dir: Path, *, running: bool) -> None:
    """The data directory and every directory in it 0700, every file 0600."""
    assert (data_dir.stat().st_mode & 0o777) == 0o700
    seen = set()
    for path in data_dir.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {mode:o}"
        seen.add(path.relative_to(data_dir).parts[0])
    assert {"node.log", "devnet", "keystore", "secrets", "deployments", "journal"} <= seen
    if running:  # the run file, SQLite's write-ahead log and shared memory
        assert "run.json" in seen
        assert list((data_dir / "journal").glob("*.sqlite-wal"))
        assert list((data_dir / "journal").glob("*.sqlite-shm"))


@pytest.mark.slow
def test_up_status_down_and_resume(cli: Cli) -> None:
    public = "https://node.example:8443/cofab"
    ok(cli.run(*cli.up_args(), "--public-url", public, "--detach"))
    api = f"http://127.0.0.1:{cli.api_port}"
    health = httpx.get(f"{api}/health", timeout=5)
    assert health.status_code == 200
    nonce = httpx.get(f"{api}/auth/nonce", timeout=5).json()
    assert (nonce["domain"], nonce["uri"]) == ("node.example:8443", public)
    anonymous = httpx.get(f"{api}/status", timeout=5).json()
    assert set(anonymous) == {"chain_id", "block_number", "contracts"}
    status = json.loads(ok(cli.run("status", "--json")))
    assert status["running"] and status["chain_id"] == 31337
    assert status["data_dir"] == str(cli.data_dir)
    consortium = status["contracts"]["Consortium"]
    assert_private(cli.data_dir, running=True)

    factory = new_account()
    out = ok(cli.run("member", "propose", "admit", factory.address, "--roles", "factory"))
    assert "executed" in out
    members = json.loads(ok(cli.run("member", "list", "--json")))
    assert {m["address"] for m in members} >= {factory.address}

    ok(cli.run("down"))
    assert port_is_free("127.0.0.1", cli.api_port) and port_is_free("127.0.0.1", cli.devnet_port)
    cli_refused(cli.run("member", "list"), 3, "no running node")

    os.chmod(cli.data_dir, 0o755)  # as an older version left it: tightened on start
    ok(cli.run(*cli.up_args(), "--detach"))
    nonce = httpx.get(f"{api}/auth/nonce", timeout=5).json()
    assert (nonce["domain"], nonce["uri"]) == (f"127.0.0.1:{cli.api_port}", api)
    status = json.loads(ok(cli.run("status", "--json")))
    assert status["contracts"]["Consortium"] == consortium
    assert json.loads(ok(cli.run("member", "list", "--json"))) == members
    ok(cli.run("down"))
    assert_private(cli.data_dir, running=False)


@pytest.mark.slow
def test_ctrl_c_stops_every_child_and_keeps_state(cli: Cli) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", *cli.up_args()],
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{cli.api_port}/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "node stopped" in output
    assert port_is_free("127.0.0.1", cli.devnet_port)  # anvil went down with it
    assert (cli.data_dir / "devnet" / "state.json").exists()
    assert not (cli.data_dir / "run.json").exists()


def test_devices_and_proposals_through_the_cli(running: Cli) -> None:
    cli = running
    # a factory key held by this node
    ring = Keyring(cli.data_dir / "keystore")
    (cli.data_dir / "f.pass").write_text("factory-pass\n")
    info = ring.new("plant", "factory-pass", kdf_iterations=FAST_KDF)
    ok(cli.run("member", "propose", "admit", info.address, "--roles", "factory"))
    # a device key held in this node's keystore: the CLI signs its consent with it
    (cli.data_dir / "d.pass").write_text("device-pass\n")
    device = ring.new("press-1", "device-pass", kdf_iterations=FAST_KDF).address
    signer = ["--from", "plant", "--passphrase-file", str(cli.data_dir / "f.pass")]
    device_pass = ["--device-passphrase-file", str(cli.data_dir / "d.pass")]
    out = json.loads(
        ok(
            cli.run(
                "device",
                "authorize",
                "press-1",
                "--expires",
                "+30d",
                *signer,
                *device_pass,
                "--json",
            )
        )
    )
    assert out["active"] and out["owner"] == info.address and out["expires_at"] > time.time()
    assert out["address"] == device and out["nonce"] == 1
    out = json.loads(ok(cli.run("device", "revoke", device, *signer, "--json")))
    assert not out["active"]
    cli_refused(cli.run("device", "revoke", device, *signer), 1, "is not authorised")

    # a device key held elsewhere signs the typed data `device binding` prints
    remote = new_account()
    cli_refused(cli.run("device", "authorize", remote.address, *signer), 2, "--signature")
    printed = json.loads(
        ok(cli.run("device", "binding", remote.address, "--for", info.address, "--expires", "+1d"))
    )
    expires_at = str(printed["expires_at"])
    signed = remote.sign_message(encode_typed_data(full_message=printed["typed_data"]))
    assert "0x" + bytes(signed.message_hash).hex() == printed["digest"]
    proof = "0x" + bytes(signed.signature).hex()
    # a squatter's own signature, or the right one for another expiry, binds nothing
    squat = (
        "0x"
        + bytes(
            new_account()
            .sign_message(encode_typed_data(full_message=printed["typed_data"]))
            .signature
        ).hex()
    )
    cli_refused(
        cli.run(
            "device",
            "authorize",
            remote.address,
            "--expires",
            expires_at,
            "--signature",
            squat,
            *signer,
        ),
        1,
        "only the device key itself can consent",
    )
    cli_refused(
        cli.run(
            "device",
            "authorize",
            remote.address,
            "--expires",
            str(int(expires_at) + 1),
            "--signature",
            proof,
            *signer,
        ),
        1,
        "only the device key itself can consent",
    )
    cli_refused(cli.run("device", "show", remote.address), 1, "is not a device key")
    out = json.loads(
        ok(
            cli.run(
                "device",
                "authorize",
                remote.address,
                "--expires",
                expires_at,
                "--signature",
                proof,
                *signer,
                "--json",
            )
        )
    )
    assert out["owner"] == info.address and out["expires_at"] == int(expires_at)
    cli_refused(
        cli.run("device", "authorize", new_account().address, "--signature", "0x" + "00" * 65),
        1,
        "not an active member with the factory role",
    )
    # the council unbinds it (quorum 1: at once)
    assert "unbind_device" in ok(cli.run("device", "unbind", remote.address))
    out = json.loads(ok(cli.run("device", "show", remote.address, "--json")))
    assert out["owner"] == "0x" + "00" * 20 and not out["active"]
    # quorum 1: the proposal executed at once, so approving it again is refused
    cli_refused(cli.run("member", "approve", "1"), 1, "already executed")
    proposals = json.loads(ok(cli.run("member", "proposals", "--json")))
    assert proposals[0]["kind"] == "admit" and proposals[0]["state"] == "executed"
    assert proposals[-1]["kind"] == "unbind_device" and proposals[-1]["state"] == "executed"
    cli_refused(cli.run("member", "approve", "99"), 1, "no proposal 99")


def test_bad_input_gets_one_clear_line(running: Cli, tmp_path: Path) -> None:
    cli = running
    cli_refused(
        cli.run("member", "propose", "admit", "0x1234", "--roles", "factory"),
        2,
        "not an Ethereum address",
    )
    cli_refused(
        cli.run("member", "propose", "admit", new_account().address, "--roles", "wizard"),
        2,
        "unknown role",
    )
    cli_refused(
        cli.run("member", "propose", "promote", new_account().address), 2, "unknown proposal kind"
    )
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not the passphrase")
    cli_refused(
        cli.run(
            "member", "propose", "suspend", new_account().address, "--passphrase-file", str(wrong)
        ),
        1,
        "wrong passphrase",
    )
    cli_refused(cli.run(*cli.up_args()), 2, "already running")
    members_before = ok(cli.run("member", "list", "--json"))
    cli_refused(cli.run("member", "propose", "suspend", new_account().address), 1, "not a member")
    assert ok(cli.run("member", "list", "--json")) == members_before


def test_refusals_without_a_node(cli: Cli) -> None:
    cli_refused(cli.run("status"), 3, "not running")
    cli_refused(
        cli.run(
            "up",
            "--backend",
            "rpc",
            "--rpc-url",
            f"http://127.0.0.1:{free_port()}",
            "--port",
            str(cli.api_port),
        ),
        3,
        "no JSON-RPC answer",
    )
    with __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        cli_refused(cli.refused("up", "--port", str(taken)), 2, "already taken")
    # bound to every address, the node cannot guess where members reach it
    cli_refused(
        cli.refused("up", "--host", "0.0.0.0", "--port", str(cli.api_port)), 2, "--public-url"
    )
    cli_refused(cli.refused(*cli.up_args(), "--public-url", "ftp://node.example"), 2, "not an http")


def test_keys_commands(cli: Cli, tmp_path: Path) -> None:
    pass_file = tmp_path / "p"
    pass_file.write_text("s3cret")
    out = ok(cli.run("keys", "new", "alice", "--passphrase-file", str(pass_file)))
    assert "s3cret" not in out
    keys = json.loads(ok(cli.run("keys", "list", "--json")))
    assert keys[0]["name"] == "alice"
    exported = tmp_path / "alice.json"
    ok(cli.run("keys", "export", "alice", "--out", str(exported)))
    assert json.loads(exported.read_text())["address"].lower() == keys[0]["address"][2:].lower()
    foreign = new_account()  # a key from another wallet, as a V3 keystore
    wallet = tmp_path / "wallet.json"
    wallet.write_text(json.dumps(Account.encrypt(foreign.key, "s3cret", iterations=FAST_KDF)))
    out = ok(
        cli.run(
            "keys", "import", "bob", "--keystore", str(wallet), "--passphrase-file", str(pass_file)
        )
    )
    assert foreign.address in out
    listed = {k["name"]: k["address"] for k in json.loads(ok(cli.run("keys", "list", "--json")))}
    assert listed["bob"] == foreign.address
    cli_refused(
        cli.run(
            "keys",
            "import",
            "again",
            "--keystore",
            str(exported),
            "--passphrase-file",
            str(pass_file),
        ),
        2,
        "already stored",
    )
    key_file = tmp_path / "k"
    key_file.write_text("0x1234")
    cli_refused(
        cli.run(
            "keys",
            "import",
            "bad",
            "--private-key-file",
            str(key_file),
            "--passphrase-file",
            str(pass_file),
        ),
        2,
        "32 bytes",
    )
    cli_refused(cli.process("keys", "new", "bob"), 1, "passphrase is needed")  # no tty, no file
