"""Compile contracts/ with the settings in brownie-config.yaml, cached by content.

The runtime deploys from these artifacts; `brownie compile` builds its own copy from
the same settings, so both always agree on bytecode.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from ledger.core.errors import ToolchainError
from ledger.core.settings import (
    BROWNIE_CONFIG,
    BUILD_DIR,
    CONTRACTS_DIR,
    PROJECT_ROOT,
    compiler_settings,
)
from ledger.eth.toolchain import solc_binary


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    immutables: tuple[tuple[int, int], ...] = ()  # (offset, length) set at construction
    userdoc: dict[str, Any] = field(default_factory=dict)  # NatSpec @notice, by signature

    def runs_as(self, code: bytes) -> bool:
        """Whether `code` (read from a chain) is this contract's runtime code: equal to
        the compiled code once the immutables, filled in by the constructor, are masked."""
        if len(code) != len(self.deployed_bytecode) or not code:
            return False
        masked = bytearray(code)
        for start, length in self.immutables:
            masked[start : start + length] = bytes(length)
        return bytes(masked) == self.deployed_bytecode


OUTPUTS_VERSION = b"outputs-3"  # bump when _standard_input selects other outputs


def _sources() -> dict[str, Path]:
    return {
        path.relative_to(PROJECT_ROOT).as_posix(): path
        for path in sorted(CONTRACTS_DIR.rglob("*.sol"))
    }


def _fingerprint(sources: dict[str, Path]) -> str:
    digest = hashlib.sha256(OUTPUTS_VERSION)
    lock = PROJECT_ROOT / "package-lock.json"
    for extra in (BROWNIE_CONFIG, lock):
        if extra.exists():
            digest.update(extra.read_bytes())
    for name, path in sources.items():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _standard_input(sources: dict[str, Path]) -> dict[str, Any]:
    settings = compiler_settings().standard_json_settings()
    # The AST only of cofab's own sources: the vocabulary test reads it, nothing at runtime.
    settings["outputSelection"] = {
        **{name: {"": ["ast"]} for name in sources},
        "*": {
            "*": [
                "abi",
                "userdoc",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
            ],
        },
    }
    return {
        "language": "Solidity",
        "sources": {name: {"content": path.read_text()} for name, path in sources.items()},
        "settings": settings,
    }


def _compile(sources: dict[str, Path]) -> dict[str, Any]:
    try:
        return solcx.compile_standard(
            _standard_input(sources),
            solc_binary=solc_binary(),
            allow_paths=[str(PROJECT_ROOT)],
            base_path=str(PROJECT_ROOT),
        )
    except SolcError as exc:
        raise ToolchainError(f"contracts failed to compile:\n{_errors(exc)}") from None


def _errors(exc: SolcError) -> str:
    """Just the compiler's error messages, not its whole JSON output."""
    try:
        output = json.loads(exc.stdout_data or "")
        messages = [
            e.get("formattedMessage") or e.get("message", "")
            for e in output.get("errors", [])
            if e.get("severity") == "error"
        ]
    except (TypeError, ValueError, AttributeError):
        messages = []
    return "\n".join(messages) or (exc.stderr_data or str(exc))[:2000]


@cache
def _output() -> dict[str, Any]:
    """The compiler's standard-JSON output for contracts/, cached by content fingerprint.

    Processes started together (test workers, a node, the API fuzzer) compile one at a
    time: the others wait for the first and read its cache instead of compiling the same
    sources again, about 25 CPU-seconds each."""
    sources = _sources()
    if not sources:
        raise ToolchainError(f"no Solidity sources under {CONTRACTS_DIR}")
    cache_file = BUILD_DIR / f"artifacts-{_fingerprint(sources)}.json"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / "compile.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if cache_file.exists():
            output: dict[str, Any] = json.loads(cache_file.read_text())
            return output
        output = _compile(sources)
        fd, tmp = tempfile.mkstemp(dir=BUILD_DIR, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(output, handle)
        os.replace(tmp, cache_file)
        return output


def source_asts() -> dict[str, dict[str, Any]]:
    """The AST of every source under contracts/, by path: what the Python vocabulary
    (enums, role bits) is checked against."""
    return {
        name: source["ast"]
        for name, source in _output()["sources"].items()
        if name.startswith("contracts/")
    }


@cache
def artifacts() -> dict[str, Artifact]:
    """Every contract under contracts/, compiled once per content fingerprint."""
    output = _output()
    result: dict[str, Artifact] = {}
    for source, contracts in output["contracts"].items():
        if not source.startswith("contracts/"):
            continue
        for name, data in contracts.items():
            code = data["evm"]["bytecode"]["object"]  # empty for interfaces
            result[name] = Artifact(
                name=name,
                abi=data["abi"],
                bytecode=bytes.fromhex(code),
                deployed_bytecode=bytes.fromhex(data["evm"]["deployedBytecode"]["object"]),
                immutables=tuple(
                    (int(ref["start"]), int(ref["length"]))
                    for refs in data["evm"]["deployedBytecode"]
                    .get("immutableReferences", {})
                    .values()
                    for ref in refs
                ),
                userdoc=data.get("userdoc", {}),
            )
    return result


def artifact(name: str) -> Artifact:
    try:
        return artifacts()[name]
    except KeyError:
        raise ToolchainError(f"no compiled contract named {name!r}") from None
