"""Where cofab keeps things, and the compiler settings read from brownie-config.yaml.

Every path and toolchain setting is defined here once; other modules import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
TOOLCHAIN_DIR = PROJECT_ROOT / ".toolchain"
BUILD_DIR = PROJECT_ROOT / "build" / "cofab"
BROWNIE_CONFIG = PROJECT_ROOT / "brownie-config.yaml"

DATA_DIR_ENV = "COFAB_DATA_DIR"
DEFAULT_DATA_DIR = PROJECT_ROOT / ".cofab"
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEVNET_CHAIN_ID = 31337
EIP712_DOMAIN_NAME = "cofab"
EIP712_DOMAIN_VERSION = "1"

# What one HTTP request may carry. JSON bodies are parsed in memory, so they are bounded
# in size and nesting; file uploads (designs, evidence) stream to disk and have their own
# bound, set with $COFAB_MAX_UPLOAD_BYTES.
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_UPLOAD_BYTES_ENV = "COFAB_MAX_UPLOAD_BYTES"
DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024 * 1024


def max_upload_bytes() -> int:
    """The largest file upload the API accepts ($COFAB_MAX_UPLOAD_BYTES, default 1 GiB)."""
    raw = os.environ.get(MAX_UPLOAD_BYTES_ENV)
    return int(raw) if raw and raw.isdigit() else DEFAULT_MAX_UPLOAD_BYTES


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The node's data directory: explicit override, then $COFAB_DATA_DIR, then ./.cofab."""
    raw = override or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class CompilerSettings:
    solc_version: str
    evm_version: str
    optimizer_enabled: bool
    optimizer_runs: int
    remappings: tuple[str, ...]

    def standard_json_settings(self) -> dict[str, Any]:
        return {
            "evmVersion": self.evm_version,
            "optimizer": {"enabled": self.optimizer_enabled, "runs": self.optimizer_runs},
            "remappings": [self._absolute(r) for r in self.remappings],
        }

    @staticmethod
    def _absolute(remapping: str) -> str:
        prefix, _, target = remapping.partition("=")
        path = Path(target)
        return f"{prefix}={path if path.is_absolute() else PROJECT_ROOT / path}"


@cache
def compiler_settings() -> CompilerSettings:
    config = yaml.safe_load(BROWNIE_CONFIG.read_text())
    compiler = config["compiler"]
    solc = compiler["solc"]
    optimizer = solc.get("optimizer") or {}
    return CompilerSettings(
        solc_version=str(solc["version"]),
        evm_version=str(compiler["evm_version"]),
        optimizer_enabled=bool(optimizer.get("enabled", True)),
        optimizer_runs=int(optimizer.get("runs", 200)),
        remappings=tuple(solc.get("remappings") or ()),
    )
