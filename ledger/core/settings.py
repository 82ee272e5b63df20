"""Where cofab keeps things, and the compiler settings read from brownie-config.yaml.

Every path and toolchain setting is defined here once; other modules import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml

from ledger.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
TOOLCHAIN_DIR = PROJECT_ROOT / ".toolchain"
BUILD_DIR = PROJECT_ROOT / "build" / "cofab"
BROWNIE_CONFIG = PROJECT_ROOT / "brownie-config.yaml"

DATA_DIR_ENV = "COFAB_DATA_DIR"
RPC_URL_ENV = "COFAB_RPC_URL"
PUBLIC_URL_ENV = "COFAB_PUBLIC_URL"
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


INGEST_WORKERS_ENV = "COFAB_INGEST_WORKERS"


def usable_cores(cap: int | None = None) -> int:
    """Cores this process may run on (its CPU affinity), at most `cap`."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows: no affinity to ask
        cores = os.cpu_count() or 1
    return min(cores, cap) if cap else cores


def default_ingest_workers() -> int:
    """Processes that check step batches by default: one per core beside the node
    process's own, none on one core. The node process keeps about half a core busy (HTTP,
    authority checks, commits); a worker on that core too would only take turns with it."""
    return usable_cores() - 1


KDF_ITERATIONS_ENV = "COFAB_KDF_ITERATIONS"


def kdf_iterations() -> int | None:
    """The scrypt cost N of keystores cofab writes: $COFAB_KDF_ITERATIONS (a power of two),
    else None for eth-account's default 2**18. A lower cost unlocks faster and falls to a
    brute force sooner: for throwaway dev chains and test runs, never for a member's key."""
    raw = os.environ.get(KDF_ITERATIONS_ENV)
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 2 or int(raw) & (int(raw) - 1):
        raise ConfigError(f"${KDF_ITERATIONS_ENV} must be a power of two, e.g. 262144: {raw!r}")
    return int(raw)


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The node's data directory: explicit override, then $COFAB_DATA_DIR, then ./.cofab."""
    raw = override or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(raw).expanduser().resolve()


_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PublicOrigin:
    """Where members reach the node's API: the only origin sign-in messages may name."""

    scheme: str
    host: str
    port: int
    path: str  # a prefix when the API is served under a path, else ""

    @property
    def authority(self) -> str:
        """host[:port] as a browser writes it (EIP-4361 `domain`): no default port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    def __str__(self) -> str:
        return self.url

    def names_domain(self, domain: str) -> bool:
        """Whether an EIP-4361 `domain` (an authority, no scheme) is this origin's."""
        parts = urlsplit(f"{self.scheme}://{domain}")
        return parts.netloc == domain and self._same_origin(parts)

    def covers_uri(self, uri: str) -> bool:
        """Whether `uri` is on this origin, at or under its path."""
        parts = urlsplit(uri)
        if not self._same_origin(parts) or parts.scheme.lower() != self.scheme:
            return False
        path = parts.path
        return not self.path or path == self.path or path.startswith(self.path + "/")

    def _same_origin(self, parts: SplitResult) -> bool:
        try:
            port = parts.port or _DEFAULT_PORTS[self.scheme]
        except ValueError:
            return False
        return (
            parts.username is None
            and parts.password is None
            and (parts.hostname or "") == self.host
            and port == self.port
        )


def public_origin(
    url: str | None = None, *, host: str = DEFAULT_API_HOST, port: int = DEFAULT_API_PORT
) -> PublicOrigin:
    """The node's public origin: `url`, else $COFAB_PUBLIC_URL, else the bind address."""
    raw = url or os.environ.get(PUBLIC_URL_ENV)
    if not raw:
        if host in _WILDCARD_HOSTS:
            raise ConfigError(
                f"the API binds every address ({host!r}): say where members reach it with "
                "--public-url (e.g. https://node.example.org)"
            )
        bracketed = f"[{host}]" if ":" in host else host
        raw = f"http://{bracketed}:{port}"
    parts = urlsplit(raw.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"public URL {raw!r} is not an http:// or https:// URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"public URL {raw!r} must have no user, query or fragment")
    try:
        explicit_port = parts.port
    except ValueError:
        raise ConfigError(f"public URL {raw!r} has an invalid port") from None
    return PublicOrigin(
        scheme=scheme,
        host=parts.hostname.lower(),
        port=explicit_port or _DEFAULT_PORTS[scheme],
        path=parts.path.rstrip("/"),
    )


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


@dataclass(frozen=True)
class NotifySettings:
    """Notifications: lead time of 'about to close' events, the depth a block must reach
    before its events are told, webhook retries and SSRF stance, the SSE heartbeat."""

    lead: int = 86_400  # $COFAB_NOTIFY_LEAD, seconds before a window or deadline closes
    confirmations: int | None = None  # $COFAB_NOTIFY_CONFIRMATIONS (None: --confirmations)
    allow_private: bool = False  # $COFAB_WEBHOOK_ALLOW_PRIVATE=1: webhooks to private addresses
    max_attempts: int = 8  # $COFAB_WEBHOOK_MAX_ATTEMPTS, then the delivery is marked failed
    retry_base: float = 2.0  # $COFAB_WEBHOOK_RETRY_BASE, seconds before the first retry
    retry_cap: float = 3600.0  # the longest wait between two attempts
    heartbeat: float = 15.0  # $COFAB_SSE_HEARTBEAT, seconds between SSE comment lines


def notify_settings() -> NotifySettings:
    env = os.environ

    def number(name: str, default: float, minimum: float) -> float:
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"${name} must be a number: {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"${name} must be at least {minimum}: {raw!r}")
        return value

    confirmations = env.get("COFAB_NOTIFY_CONFIRMATIONS")
    return NotifySettings(
        lead=int(number("COFAB_NOTIFY_LEAD", 86_400, 0)),
        confirmations=int(number("COFAB_NOTIFY_CONFIRMATIONS", 0, 0)) if confirmations else None,
        allow_private=env.get("COFAB_WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes"),
        max_attempts=int(number("COFAB_WEBHOOK_MAX_ATTEMPTS", 8, 1)),
        retry_base=number("COFAB_WEBHOOK_RETRY_BASE", 2.0, 0.01),
        heartbeat=number("COFAB_SSE_HEARTBEAT", 15.0, 0.05),
    )
