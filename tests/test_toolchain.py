"""The offline compiler: npm solc behind a native-looking executable, settings from one file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import solcx
import yaml

from ledger.core.settings import BROWNIE_CONFIG, PROJECT_ROOT, compiler_settings
from ledger.eth.compiler import artifact, artifacts
from ledger.eth.toolchain import anvil_binary, install, solc_binary


def test_settings_come_from_brownie_config() -> None:
    config = yaml.safe_load(BROWNIE_CONFIG.read_text())
    settings = compiler_settings()
    assert settings.solc_version == str(config["compiler"]["solc"]["version"])
    assert settings.evm_version == config["compiler"]["evm_version"] == "cancun"


def test_solc_wrapper_answers_like_native_solc() -> None:
    out = subprocess.run([solc_binary(), "--version"], capture_output=True, text=True, check=True)
    assert f"Version: {compiler_settings().solc_version}+commit" in out.stdout
    # py-solc-x (and so brownie) finds it where it looks for an installed compiler
    installed = [str(v) for v in solcx.get_installed_solc_versions()]
    assert compiler_settings().solc_version in installed
    solcx.set_solc_version(compiler_settings().solc_version, silent=True)
    assert str(solcx.get_solc_version()) == compiler_settings().solc_version


def test_standard_json_output_is_whole_json_beyond_64k() -> None:
    # solcjs cut piped output at 64 KB; this output is several times that.
    functions = " ".join(
        f"function f{i}(uint x) external pure returns (uint) {{ return x + {i}; }}"
        for i in range(200)
    )
    source = {
        "language": "Solidity",
        "sources": {"C.sol": {"content": f"contract C {{ {functions} }}"}},
        "settings": {"outputSelection": {"*": {"*": ["*"], "": ["ast"]}}},
    }
    proc = subprocess.run(
        [solc_binary(), "--standard-json"],
        input=json.dumps(source),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(proc.stdout)
    assert "C" in data["contracts"]["C.sol"]
    assert len(proc.stdout) > 65536


def test_contracts_compile_for_cancun() -> None:
    consortium = artifact("Consortium")
    assert consortium.bytecode and consortium.deployed_bytecode
    names = {item.get("name") for item in consortium.abi}
    assert {"proposeAdmit", "approve", "rolesAt", "authorizeDevice", "MemberAdmitted"} <= names
    assert artifacts() is artifacts()  # cached in-process


def test_anvil_binary_runs() -> None:
    out = subprocess.run([anvil_binary(), "--version"], capture_output=True, text=True, check=True)
    assert "anvil" in out.stdout.lower()


def test_home_entry_does_not_depend_on_this_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another clone, or this one deleted, must not break a bare `brownie compile`."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SOLCX_BINARY_PATH", raising=False)
    install()
    install()  # idempotent: the second checkout finds the copy in place
    entry = tmp_path / ".solcx" / f"solc-v{compiler_settings().solc_version}"
    target = entry.resolve()
    assert not target.is_relative_to(PROJECT_ROOT.resolve())
    bundle = target.parent.parent
    links = [p for p in bundle.rglob("*") if p.is_symlink()]
    assert all(not p.resolve().is_relative_to(PROJECT_ROOT.resolve()) for p in links)
    out = subprocess.run(
        [str(entry), "--version"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert f"Version: {compiler_settings().solc_version}+commit" in out.stdout
