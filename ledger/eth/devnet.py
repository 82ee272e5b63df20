"""Supervise an anvil devnet whose state lives in the data directory.

anvil dumps its state on SIGINT/SIGTERM and every few seconds (--state-interval), so a
restart resumes the same chain: blocks, logs and contracts. `--prune-history N` keeps
memory flat under long automine runs (default flags were seen to stall near block 4000)
while still holding the last N states: with no window, a call at `latest` that races a
newly mined block fails with BlockOutOfRangeError. The audit never needs older state
because membership history lives in the contracts.

anvil rewrites state.json in place, so a SIGKILL in the middle of a dump leaves a
truncated file that anvil refuses to load. Every start that finds a readable state keeps
it as state.good.json; a start that finds an unreadable one resumes from that copy and
says so (the blocks after it are lost, as after any rollback).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from web3 import Web3

from ledger.core.errors import ChainUnavailable, ConfigError
from ledger.core.private import open_private, private_dir
from ledger.core.settings import DEVNET_CHAIN_ID
from ledger.eth.toolchain import anvil_binary

STATE_INTERVAL_SECONDS = 2
READY_TIMEOUT_SECONDS = 30
STATES_IN_MEMORY = 64  # recent states kept by --prune-history: reads at `latest` never race


def _terminate_with_parent() -> None:
    """In the child: SIGTERM anvil if cofab dies, even by SIGKILL, so it still writes its
    state and frees its port (Linux; elsewhere cofab's own shutdown does it)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class Devnet:
    """One anvil process bound to 127.0.0.1; `state_dir` holds state.json and anvil.log."""

    state_dir: Path
    port: int = 8545
    host: str = "127.0.0.1"
    chain_id: int = DEVNET_CHAIN_ID
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    recovered: str | None = field(default=None, repr=False)  # set by start(), in words
    died: str | None = field(default=None, repr=False)  # set by stop() if anvil was gone

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def good_state_file(self) -> Path:
        return self.state_dir / "state.good.json"

    def command(self) -> list[str]:
        return [
            str(anvil_binary()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--state",
            str(self.state_file),
            "--state-interval",
            str(STATE_INTERVAL_SECONDS),
            "--prune-history",
            str(STATES_IN_MEMORY),
            "--block-base-fee-per-gas",
            "0",
            "--gas-price",
            "0",
            "--gas-limit",
            "60000000",
            "--code-size-limit",
            "49152",
        ]

    def start(self) -> None:
        if self.process is not None:
            return
        if not port_is_free(self.host, self.port):
            raise ConfigError(
                f"port {self.port} on {self.host} is already taken: stop what uses it or "
                f"choose another with --devnet-port"
            )
        private_dir(self.state_dir)
        self.recovered = self._check_state()
        log = os.fdopen(open_private(self.state_dir / "anvil.log"), "ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches cofab, which stops anvil in order
                preexec_fn=_terminate_with_parent,
                umask=0o077,  # anvil's state file is private to the node's user
            )
        finally:
            log.close()
        self._wait_ready()

    def _check_state(self) -> str | None:
        """Keep a readable state as the last good copy; replace an unreadable one by it.

        Returns a sentence for the operator when it recovered, else None. Raises
        ChainUnavailable, saying what to do, when there is nothing to recover from.
        """
        if not self.state_file.exists():
            return None
        height = state_height(self.state_file)
        if height is not None:
            tmp = self.good_state_file.with_suffix(".tmp")
            shutil.copyfile(self.state_file, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.good_state_file)
            return None
        broken = self.state_file.with_name(f"state.broken-{int(time.time())}.json")
        os.replace(self.state_file, broken)
        good = state_height(self.good_state_file) if self.good_state_file.exists() else None
        if good is None:
            raise ChainUnavailable(
                f"the devnet state {self.state_file} is unreadable (anvil was killed while "
                f"writing it) and there is no good copy to resume from; it was moved to "
                f"{broken}. Start a new devnet with `cofab up --redeploy` (the old chain's "
                f"journal is set aside), or restore state.json from a backup."
            )
        shutil.copyfile(self.good_state_file, self.state_file)
        os.chmod(self.state_file, 0o600)
        return (
            f"the devnet state was unreadable (moved to {broken.name}); resumed from the "
            f"last good copy at block {good}: blocks after it are lost"
        )

    def wait_saved(self, block: int, timeout: float = 3 * STATE_INTERVAL_SECONDS) -> bool:
        """Wait until anvil's state file holds `block` (it writes one every
        STATE_INTERVAL_SECONDS), so what was done up to it outlives a SIGKILL of anvil;
        False if it did not within `timeout`."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            try:
                written = self.state_file.stat().st_mtime_ns
            except FileNotFoundError:
                written = 0
            if written != seen:  # read only a file anvil has written since the last look
                seen = written
                height = state_height(self.state_file)
                if height is not None and height >= block:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _wait_ready(self) -> None:
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 2}))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = (self.state_dir / "anvil.log").read_text(errors="replace")[-800:]
                self.process = None
                raise ChainUnavailable(f"anvil exited during start-up:\n{tail}")
            try:
                if w3.eth.chain_id == self.chain_id:
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        self.stop()
        raise ChainUnavailable(
            f"anvil did not answer on {self.url} within {READY_TIMEOUT_SECONDS}s"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (anvil writes its state), then SIGKILL if it does not exit in time."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is not None:  # it stopped on its own: nothing wrote its last blocks
            self.died = exit_reason(proc.returncode)
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> Devnet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exit_reason(returncode: int) -> str:
    """How a process ended, in words ("killed by SIGKILL", "exit code 1")."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (and is not a zombie of ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True  # no /proc: trust the signal


def state_height(path: Path) -> int | None:
    """The block number an anvil state file resumes at, or None if it is unreadable."""
    try:
        with path.open("rb") as fh:
            state = json.load(fh)
        if isinstance(state.get("best_block_number"), int):
            return int(state["best_block_number"])
        number = (state.get("block") or {}).get("number")
        if isinstance(number, str):
            return int(number, 16)
        if isinstance(number, int):
            return number
        blocks = state.get("blocks") or []
        return len(blocks) - 1 if blocks else 0
    except (OSError, ValueError, AttributeError):
        return None
