"""Shared fixtures: real chains (eth-tester in-process, anvil from npm), real contracts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth.abc import SignedTransactionAPI, StateAPI
from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.core.keys import Keyring
from ledger.core.private import private_dir
from ledger.eth.chain import Backend, Chain
from ledger.eth.deployment import Deployment
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import OPERATOR_KEY, Node, NodeOptions

PASSPHRASE = "correct horse battery staple"
FAST_KDF = 2**10  # scrypt cost for test keystores; real keys use eth-account's default


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's data directory or passphrase."""
    monkeypatch.setenv("COFAB_DATA_DIR", str(tmp_path / "cofab-data"))
    monkeypatch.delenv("COFAB_PASSPHRASE", raising=False)
    monkeypatch.delenv("COFAB_RPC_URL", raising=False)
    monkeypatch.setenv("COFAB_PUBLIC_URL", "http://testserver")  # TestClient's origin


def estimate_gas(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """py-evm's gas estimate in two executions instead of about a dozen.

    py-evm bisects the gas limit (Chain.gas_estimator), running the transaction at each
    step; estimating is most of the time of a test transaction. Here: one run at the block
    gas limit (a revert there raises, as py-evm's estimator does), then the gas it used plus
    the 1/64 that calls hold back, confirmed by a run at that limit; if that run fails,
    py-evm's bisection decides. Every estimate is still a limit the transaction succeeds with.
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
    limit = min(used + used // 63 + 2_300, state.gas_limit)
    snapshot = state.snapshot()
    try:
        at_limit = SpoofTransaction(transaction, gas=limit)
        enough = not state.apply_transaction(at_limit).is_error  # type: ignore[arg-type]
    finally:
        state.revert(snapshot)
    return limit if enough else int(binary_gas_search_intrinsic_tolerance(state, transaction))


@dataclass(frozen=True)
class Deployed:
    """The chain and contracts every `node` of one test process shares, and the snapshot
    each test starts from."""

    chain: Chain
    deployment: Deployment
    operator_key: bytes
    snapshot: int

    def rewind(self) -> None:
        """Back to the block right after the deployment: what a fresh deploy would give."""
        self.chain.w3.provider.ethereum_tester.revert_to_snapshot(self.snapshot)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Deploy once per test process (1-2 s each time); tests rewind to this state."""
    data_dir = tmp_path_factory.mktemp("deployed")
    passphrase_file = data_dir / "pass"
    passphrase_file.write_text(PASSPHRASE)
    opts = NodeOptions(
        backend=Backend.EMBEDDED,
        data_dir=data_dir / "node",
        kdf_iterations=FAST_KDF,
        passphrase_file=passphrase_file,
    )
    n = Node.start(opts)
    tester = n.chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.backend.chain.gas_estimator = estimate_gas  # kept by every rewind
    yield Deployed(n.chain, n.deployment, bytes(n.sender().account.key), tester.take_snapshot())
    n.close()


@pytest.fixture
def node(deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A node on a freshly deployed embedded chain: the shared deployment rewound to its
    snapshot, with this test's own data directory, keyring, senders and services (nothing
    kept in Python outlives the test: nonce caches, journals, anchoring threads)."""
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    deployed.rewind()
    data_dir = private_dir(tmp_path / "node")
    keyring = Keyring(data_dir / "keystore")
    keyring.import_private_key(
        OPERATOR_KEY, deployed.operator_key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF
    )
    n = Node(deployed.chain, deployed.deployment, keyring, data_dir)
    n.add_signer(Account.from_key(deployed.operator_key))
    yield n
    n.close()


@pytest.fixture
def operator(node: Node) -> Sender:
    return node.sender()


def new_account() -> LocalAccount:
    return Account.create(os.urandom(32).hex())


def admit(node: Node, roles: int, account: LocalAccount | None = None) -> Sender:
    """Admit a new member with `roles` (quorum 1: the operator's proposal executes)."""
    account = account or new_account()
    node.consortium.propose_admit(node.sender(), account.address, roles)
    return node.add_signer(account)


@pytest.fixture
def factory(node: Node) -> Sender:
    return admit(node, int(Role.FACTORY))
