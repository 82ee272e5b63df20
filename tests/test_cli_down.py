"""`cofab down` stops what is there and says what it found: a devnet that died before it
(killed, crashed) is reported, not a failure."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from kit import Cli, ok
from ledger.eth.devnet import port_is_free, process_alive


@pytest.mark.slow
def test_down_when_the_devnet_was_already_killed_exits_0_and_says_so(cli: Cli) -> None:
    ok(cli.run(*cli.up_args(), "--detach"))
    info = json.loads((cli.data_dir / "run.json").read_text())
    node_pid, devnet_pid = int(info["pid"]), int(info["devnet_pid"])
    cmdline = Path(f"/proc/{devnet_pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"anvil") and str(cli.devnet_port).encode() in cmdline
    os.kill(devnet_pid, signal.SIGKILL)  # the devnet dies under the running node

    result = cli.process("down")
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    said = " ".join(result.stdout.split())
    assert f"node stopped (pid {node_pid})" in said
    assert f"the devnet (pid {devnet_pid}) had already stopped" in said
    assert "blocks it made after its last state dump" in said
    assert not process_alive(node_pid) and not (cli.data_dir / "run.json").exists()
    assert port_is_free("127.0.0.1", cli.api_port) and port_is_free("127.0.0.1", cli.devnet_port)
    log = " ".join((cli.data_dir / "node.log").read_text().split())
    assert "the devnet had stopped on its own (killed by SIGKILL)" in log

    # the next start resumes the chain; a devnet that is up is stopped and its state kept
    ok(cli.run(*cli.up_args(), "--detach"))
    result = cli.run("down")
    said = " ".join(ok(result).split())
    assert "devnet stopped; its state is kept" in said and "already stopped" not in said


def test_down_with_no_node_running_exits_0(cli: Cli) -> None:
    assert "no node is running" in ok(cli.run("down"))
