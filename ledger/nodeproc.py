"""A cofab node as a real process against a chain it does not own (anvil started apart),
so a crash test can SIGKILL the node and restart it, and a benchmark can load it over
HTTP (bench/ingest.py, bench/audit.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.core.keys import Keyring
from ledger.eth.chain import Backend, connect
from ledger.eth.compiler import artifact
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import SplitSpec
from ledger.scenario import (
    factory_shares,
    licensed_design,
    make_operator_factory,
    member,
    order_in_production,
)
from ledger.steps.record import Domain

PASSPHRASE = "node-process-pass"
KDF = 2**10


@dataclass
class Stage:
    operator: LocalAccount
    job_id: int
    splits: int
    domain: Domain
    created_at: int  # the order's creation (block time): no step of it may be older


def prepare(data_dir: Path, rpc_url: str, splits: int = 1) -> Stage:
    """Deploy on the chain at `rpc_url` and put an order in production whose every split
    belongs to the node's operator (a factory running its own node)."""
    operator = Account.create(os.urandom(32).hex())
    Keyring(data_dir / "keystore").import_private_key(
        "operator", operator.key.hex(), PASSPHRASE, kdf_iterations=KDF
    )
    # a consortium chain brings its own ERC-20: here the operator deploys a demo one
    chain = connect(Backend.RPC, rpc_url=rpc_url)
    art = artifact("DemoStable")
    token = Sender(chain, operator).deploy(art.abi, art.bytecode)["contractAddress"]
    os.environ["COFAB_PASSPHRASE"] = PASSPHRASE
    try:
        opts = NodeOptions(
            backend=Backend.RPC,
            rpc_url=rpc_url,
            data_dir=data_dir,
            kdf_iterations=KDF,
            payment_token=token,
            deploy=True,
        )
        node = Node.start(opts)
    finally:
        os.environ.pop("COFAB_PASSPHRASE", None)
    try:
        op = make_operator_factory(node)
        buyer = member(node, int(Role.BUYER))
        designer = member(node, int(Role.DESIGNER))
        design = licensed_design(node, designer, buyer.address)
        specs = [
            SplitSpec(op.address, f"step {i}", 10, share)
            for i, share in enumerate(factory_shares(splits))
        ]
        job = order_in_production(node, buyer, design, specs, 1_000 * 10**6)
        created = node.steps.authority.job_created_at(job)
        return Stage(operator, job, splits, node.steps.domain, created)
    finally:
        node.close()


class NodeProcess:
    """`cofab up --backend rpc` in the foreground of a child process we can SIGKILL."""

    def __init__(
        self, data_dir: Path, rpc_url: str, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}  # settings ($COFAB_...) for the node process
        self.rpc_url = rpc_url
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFAB_")}
        env.update(COFAB_DATA_DIR=str(self.data_dir), COFAB_PASSPHRASE=PASSPHRASE, **self.env)
        log = open(self.data_dir / "node-process.log", "ab")  # noqa: SIM115 - child owns it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledger.cli",
                "up",
                "--backend",
                "rpc",
                "--rpc-url",
                self.rpc_url,
                "--port",
                str(self.port),
                *self.extra,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1, trust_env=False) as client:  # one TLS set-up, not one a poll
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    log_text = (self.data_dir / "node-process.log").read_text(errors="replace")
                    raise RuntimeError(f"node exited during start-up:\n{log_text[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/health").status_code == 200:
                        return
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("node did not become healthy")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        (self.data_dir / "run.json").unlink(missing_ok=True)  # a dead node's leftover

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
