"""Shared fixtures: real chains (eth-tester in-process, anvil from npm), real contracts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.eth.chain import Backend
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions

PASSPHRASE = "correct horse battery staple"
FAST_KDF = 2**10  # scrypt cost for test keystores; real keys use eth-account's default


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's data directory or passphrase."""
    monkeypatch.setenv("COFAB_DATA_DIR", str(tmp_path / "cofab-data"))
    monkeypatch.delenv("COFAB_PASSPHRASE", raising=False)
    monkeypatch.delenv("COFAB_RPC_URL", raising=False)
    monkeypatch.setenv("COFAB_PUBLIC_URL", "http://testserver")  # TestClient's origin


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A node on a fresh embedded chain with freshly deployed contracts."""
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    opts = NodeOptions(
        backend=Backend.EMBEDDED, data_dir=tmp_path / "node", kdf_iterations=FAST_KDF
    )
    n = Node.start(opts)
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
