"""Supervise an anvil devnet whose state lives in the data directory.

anvil dumps its state on SIGINT/SIGTERM and every few seconds (--state-interval), so a
restart resumes the same chain: blocks, logs and contracts. --prune-history keeps memory
flat under long automine runs (default flags were seen to stall near block 4000); the
audit never needs historical state because membership history lives in the contracts.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from web3 import Web3

from ledger.errors import ChainUnavailable, ConfigError
from ledger.private import open_private, private_dir
from ledger.settings import DEVNET_CHAIN_ID
from ledger.toolchain import anvil_binary

STATE_INTERVAL_SECONDS = 2
READY_TIMEOUT_SECONDS = 30


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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

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
        if proc is None or proc.poll() is not None:
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
