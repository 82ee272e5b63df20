"""Keystores: V3 JSON in and out, passphrases from file / env / prompt, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from kit import FAST_KDF, PASSPHRASE
from ledger.core.errors import ConfigError, InvalidInput, KeystoreError, NotFound
from ledger.core.keys import Keyring, read_passphrase
from ledger.core.settings import KDF_ITERATIONS_ENV, kdf_iterations


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keystore")


def test_new_key_is_a_standard_v3_keystore(ring: Keyring) -> None:
    info = ring.new("alice", PASSPHRASE, kdf_iterations=FAST_KDF)
    data = json.loads(info.path.read_text())
    assert data["version"] == 3
    assert Account.from_key(Account.decrypt(data, PASSPHRASE)).address == info.address
    assert info.path.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert [k.name for k in ring.list()] == ["alice"]


def test_kdf_cost_is_strong_unless_lowered_on_purpose(
    ring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KDF_ITERATIONS_ENV, raising=False)
    assert kdf_iterations() is None  # eth-account's default, 2**18
    monkeypatch.setenv(KDF_ITERATIONS_ENV, str(FAST_KDF))
    info = ring.new("alice", PASSPHRASE)
    assert json.loads(info.path.read_text())["crypto"]["kdfparams"]["n"] == FAST_KDF
    explicit = ring.new("bob", PASSPHRASE, kdf_iterations=2 * FAST_KDF)
    assert json.loads(explicit.path.read_text())["crypto"]["kdfparams"]["n"] == 2 * FAST_KDF
    for bad in ("1000", "1", "0", "-4", "2**10", "lots"):
        monkeypatch.setenv(KDF_ITERATIONS_ENV, bad)
        with pytest.raises(ConfigError, match=KDF_ITERATIONS_ENV):
            ring.new(f"k{len(ring.list())}", PASSPHRASE)
    assert [k.name for k in ring.list()] == ["alice", "bob"]  # nothing written when refused


def test_unlock_by_name_or_address(ring: Keyring) -> None:
    info = ring.new("alice", PASSPHRASE, kdf_iterations=FAST_KDF)
    assert ring.unlock("alice", PASSPHRASE).address == info.address
    assert ring.unlock(info.address.lower(), PASSPHRASE).address == info.address


def test_wrong_passphrase_is_refused(ring: Keyring) -> None:
    ring.new("alice", PASSPHRASE, kdf_iterations=FAST_KDF)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        ring.unlock("alice", "not it")


def test_import_keystore_from_another_wallet_and_export_round_trip(
    ring: Keyring, tmp_path: Path
) -> None:
    foreign = Account.create()
    path = tmp_path / "wallet.json"
    path.write_text(json.dumps(Account.encrypt(foreign.key, "w", iterations=FAST_KDF)))
    info = ring.import_keystore("bob", path, "w")
    assert info.address == foreign.address
    exported = ring.export("bob")
    assert Account.decrypt(exported, "w") == foreign.key


def test_import_keystore_with_wrong_passphrase_writes_nothing(
    ring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "wallet.json"
    path.write_text(json.dumps(Account.encrypt(Account.create().key, "w", iterations=FAST_KDF)))
    with pytest.raises(KeystoreError):
        ring.import_keystore("bob", path, "nope")
    assert ring.list() == []


def test_import_private_key(ring: Keyring) -> None:
    acct = Account.create()
    info = ring.import_private_key("carol", acct.key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF)
    assert info.address == acct.address
    with pytest.raises(InvalidInput, match="already stored"):
        ring.import_private_key("carol2", acct.key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF)


@pytest.mark.parametrize("bad", ["", "zz", "0x1234", "g" * 64])
def test_bad_private_key_is_refused(ring: Keyring, bad: str) -> None:
    with pytest.raises(InvalidInput):
        ring.import_private_key("x", bad, PASSPHRASE)
    assert ring.list() == []


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "x" * 65, "-lead"])
def test_bad_names_are_refused(ring: Keyring, name: str) -> None:
    with pytest.raises(InvalidInput):
        ring.new(name, PASSPHRASE)


def test_duplicate_name_is_refused(ring: Keyring) -> None:
    ring.new("alice", PASSPHRASE, kdf_iterations=FAST_KDF)
    with pytest.raises(InvalidInput, match="already exists"):
        ring.new("alice", PASSPHRASE, kdf_iterations=FAST_KDF)


def test_unknown_key(ring: Keyring) -> None:
    with pytest.raises(NotFound):
        ring.unlock("nobody", PASSPHRASE)


def test_passphrase_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pass"
    file.write_text("from-file\n")
    monkeypatch.setenv("COFAB_PASSPHRASE", "from-env")
    assert read_passphrase(file) == "from-file"
    assert read_passphrase(None) == "from-env"
    monkeypatch.delenv("COFAB_PASSPHRASE")
    assert read_passphrase(None, prompt=lambda: "typed") == "typed"
    with pytest.raises(KeystoreError, match="passphrase is needed"):
        read_passphrase(None)
    with pytest.raises(KeystoreError, match="cannot read"):
        read_passphrase(tmp_path / "missing")
