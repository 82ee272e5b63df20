"""Keystores: standard Ethereum V3 JSON (eth-account), one file per key, by name.

Any wallet that reads V3 keystores (geth, MetaMask import, ethers) reads these, and
cofab imports theirs. Passphrases come from a file, $COFAB_PASSPHRASE or a prompt, and
are never printed or logged.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_hex, to_checksum_address

from ledger.core.errors import InvalidInput, KeystoreError, NotFound
from ledger.core.private import private_dir
from ledger.core.settings import kdf_iterations

PASSPHRASE_ENV = "COFAB_PASSPHRASE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class KeyInfo:
    name: str
    address: str
    path: Path


def read_passphrase(
    passphrase_file: Path | None = None,
    *,
    prompt: Callable[[], str] | None = None,
) -> str:
    """A passphrase from (in order) a file, $COFAB_PASSPHRASE, or an interactive prompt."""
    if passphrase_file is not None:
        try:
            text = Path(passphrase_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise KeystoreError(
                f"cannot read passphrase file {passphrase_file}: {exc.strerror}"
            ) from None
        if not text:
            raise KeystoreError(f"passphrase file {passphrase_file} is empty")
        return text
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if prompt is not None:
        return prompt()
    raise KeystoreError(
        f"a passphrase is needed: pass --passphrase-file, set ${PASSPHRASE_ENV}, "
        "or run in a terminal to be prompted"
    )


class Keyring:
    """The keystore directory of a node."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InvalidInput(
                f"key name {name!r} is invalid: use letters, digits, '.', '_' or '-' "
                "(at most 64 characters)"
            )
        return self.directory / f"{name}.json"

    def list(self) -> list[KeyInfo]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                address = json.loads(path.read_text())["address"]
            except (OSError, ValueError, KeyError):
                continue
            found.append(KeyInfo(path.stem, to_checksum_address(address), path))
        return found

    def find(self, name_or_address: str) -> KeyInfo:
        for info in self.list():
            if name_or_address in (info.name, info.address) or (
                name_or_address.lower() == info.address.lower()
            ):
                return info
        raise NotFound(f"no key named or at {name_or_address!r} in {self.directory}")

    def _write(self, name: str, keystore: dict[str, Any]) -> KeyInfo:
        path = self._path(name)
        if path.exists():
            raise InvalidInput(f"a key named {name!r} already exists")
        address = to_checksum_address(keystore["address"])
        for info in self.list():
            if info.address == address:
                raise InvalidInput(f"address {address} is already stored as {info.name!r}")
        private_dir(self.directory)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(keystore, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return KeyInfo(name, address, path)

    def new(self, name: str, passphrase: str, *, kdf_iterations: int | None = None) -> KeyInfo:
        self._path(name)
        account = Account.create(secrets.token_hex(32))
        return self._write(name, _encrypt(account.key, passphrase, kdf_iterations))

    def import_private_key(
        self, name: str, private_key: str, passphrase: str, *, kdf_iterations: int | None = None
    ) -> KeyInfo:
        key = private_key.strip()
        if not (is_hex(key) and len(key.removeprefix("0x")) == 64):
            raise InvalidInput("a private key is 32 bytes of hex (64 hex digits)")
        try:
            account = Account.from_key(key)
        except ValueError:
            raise InvalidInput("that private key is not valid on secp256k1") from None
        return self._write(name, _encrypt(account.key, passphrase, kdf_iterations))

    def import_keystore(self, name: str, keystore_file: Path, passphrase: str) -> KeyInfo:
        """Import a V3 keystore from another wallet; the passphrase proves it opens."""
        try:
            keystore = json.loads(Path(keystore_file).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{keystore_file} is not a readable keystore JSON: {exc}") from None
        _decrypt(keystore, passphrase, str(keystore_file))
        return self._write(name, keystore)

    def export(self, name_or_address: str) -> dict[str, Any]:
        keystore: dict[str, Any] = json.loads(self.find(name_or_address).path.read_text())
        return keystore

    def unlock(self, name_or_address: str, passphrase: str) -> LocalAccount:
        info = self.find(name_or_address)
        account: LocalAccount = Account.from_key(
            _decrypt(json.loads(info.path.read_text()), passphrase, info.name)
        )
        return account


def _encrypt(key: bytes, passphrase: str, iterations: int | None) -> dict[str, Any]:
    if not passphrase:
        raise KeystoreError("the passphrase must not be empty")
    return Account.encrypt(key, passphrase, iterations=iterations or kdf_iterations())


def _decrypt(keystore: dict[str, Any], passphrase: str, label: str) -> bytes:
    if keystore.get("version") != 3 or ("crypto" not in keystore and "Crypto" not in keystore):
        raise InvalidInput(f"{label} is not a V3 keystore")
    try:
        return bytes(Account.decrypt(keystore, passphrase))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeystoreError(f"wrong passphrase for key {label}") from None
        raise InvalidInput(f"{label} is not a usable keystore: {exc}") from None
