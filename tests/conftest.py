"""Shared fixtures: real chains (anvil from npm, eth-tester in-process), real contracts."""

from __future__ import annotations

import os

# py-evm hashes through eth_hash, whose default backend (pycryptodome) costs ~5x the
# pysha3 the project depends on for its own hot path; chosen before eth_hash is imported.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
# xdist workers start with COLUMNS=80 and LINES=24, which the CLI's rich consoles would
# keep for good when imported: a command run in this process would wrap its one-line
# errors at 80 columns whatever COLUMNS its environment gives (tests/kit.py `cofab`)
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

import contextlib
import gc
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth.abc import SignedTransactionAPI, StateAPI
from eth.chains.base import Chain as PyEVMChain
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from hypothesis import Phase, settings

from kit import (
    CHROMIUM,
    FAST_KDF,
    PASSPHRASE,
    Cli,
    Served,
    Tabs,
    admit,
    anvil_node,
    ok,
    rewound,
    serve_portal_node,
    snapshot,
)
from ledger.core.keys import Keyring
from ledger.core.private import private_dir
from ledger.eth.chain import Chain
from ledger.eth.deployment import Deployment
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import OPERATOR_KEY, Node

# The test processes build many short-lived objects (py-evm states, web3 requests): a
# young-generation collection every 50,000 allocations instead of 700, and the imported
# modules frozen out of every collection, save about 5 % of the suite's CPU time.
gc.freeze()
gc.set_threshold(50_000, 20, 100)

# This Hypothesis (the version brownie pins) spends over half of a property test's time
# in its `target` phase, shrinking the examples it keeps in its database (the "pareto
# front"). No test here asks for targeting (`hypothesis.target`), so the phase buys
# nothing; the examples generated and the shrinking of a failure are the same.
settings.register_profile(
    "cofab", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)
settings.load_profile("cofab")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's data directory or passphrase."""
    monkeypatch.setenv("COFAB_DATA_DIR", str(tmp_path / "cofab-data"))
    monkeypatch.delenv("COFAB_PASSPHRASE", raising=False)
    monkeypatch.delenv("COFAB_RPC_URL", raising=False)
    monkeypatch.setenv("COFAB_PUBLIC_URL", "http://testserver")  # TestClient's origin


def estimate_gas(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """py-evm's gas estimate in one execution instead of about a dozen.

    py-evm bisects the gas limit (Chain.gas_estimator), running the transaction at each
    step; estimating is most of the time of a test transaction. Here: one run at the block
    gas limit (a revert there raises, as py-evm's estimator does), and the gas it used plus
    the 1/64 that calls hold back. Sender adds a quarter and 50,000 gas to every estimate;
    a limit that still fell short would fail the transaction on chain, and so the test.
    """
    snapshot = state.snapshot()
    try:
        ample = SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
        computation = state.apply_transaction(ample)  # type: ignore[arg-type]
    finally:
        state.revert(snapshot)
    if computation.is_error:
        raise computation.error
    used = transaction.intrinsic_gas + computation.get_gas_used()
    return min(used + used // 63 + 2_300, state.gas_limit)


# every embedded (py-evm) chain this test process makes
PyEVMChain.gas_estimator = staticmethod(estimate_gas)


@dataclass
class Deployed:
    """The chain and contracts every `node` of one test process shares, and the snapshot
    each test starts from."""

    chain: Chain
    deployment: Deployment
    operator_key: bytes
    snapshot: int

    def rewind(self) -> None:
        """Back to the block right after the deployment: what a fresh deploy would give."""
        self.snapshot = rewound(self.chain, self.snapshot)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Deploy once per test process on its own anvil; tests rewind to this state."""
    with anvil_node(tmp_path_factory.mktemp("deployed")) as n:
        yield Deployed(n.chain, n.deployment, bytes(n.sender().account.key), snapshot(n.chain))


@pytest.fixture
def node(deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A node on a freshly deployed chain: the process's anvil rewound to its deployment
    snapshot, with this test's own data directory, keyring, senders and services (nothing
    kept in Python outlives the test: nonce caches, journals, anchoring threads)."""
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    deployed.rewind()
    data_dir = private_dir(tmp_path / "node")
    keyring = Keyring(data_dir / "keystore")
    keyring.import_private_key(
        OPERATOR_KEY, deployed.operator_key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF
    )
    # the shared chain, which this test's node must not stop when it closes
    n = Node(replace(deployed.chain, devnet=None), deployed.deployment, keyring, data_dir)
    n.add_signer(Account.from_key(deployed.operator_key))
    yield n
    n.close()


@pytest.fixture
def operator(node: Node) -> Sender:
    return node.sender()


@pytest.fixture
def factory(node: Node) -> Sender:
    return admit(node, int(Role.FACTORY))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """A shell for one node's data directory, with free ports for `cofab up`; a node the
    test left running is stopped."""
    c = Cli(tmp_path / "data", free_port(), free_port())
    yield c
    pid = c.pid()
    if pid:
        c.run("down")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def running(cli: Cli) -> Cli:
    """A devnet node started by `cofab up --detach`."""
    ok(cli.run(*cli.up_args(), "--detach"))
    return cli


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The portal tests' node, one per test process, each module adding its own people."""
    with serve_portal_node(tmp_path_factory) as node:
        yield node


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) through Playwright: one per test process, a fresh
    context (its own storage) per person."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def tabs(browser: Any) -> Iterator[Tabs]:
    """The browser's tabs, handed from person to person across this process's tests."""
    pool = Tabs(browser)
    yield pool
    pool.close()
