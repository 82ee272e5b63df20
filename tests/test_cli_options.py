"""The options every command shares (--from, --data-dir, --rpc-url, --passphrase-file):
declared once on the root, accepted before or after the command, with their environment
fallbacks, listed in every command's help; a conflicting repeat is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from kit import FAST_KDF, PASSPHRASE
from ledger.cli import app
from ledger.core.keys import Keyring
from ledger.eth.toolchain import free_port

SHARED = ("--from", "--data-dir", "--rpc-url", "--passphrase-file")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COFAB_KDF_ITERATIONS", str(FAST_KDF))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    path = tmp_path / "pass"
    path.write_text(PASSPHRASE)
    return path


def key_names(runner: CliRunner, *args: str) -> list[str]:
    result = runner.invoke(app, [*args])
    assert result.exit_code == 0, result.output
    return [k["name"] for k in json.loads(result.stdout)]


def test_shared_options_stand_before_or_after_the_command(
    runner: CliRunner, tmp_path: Path, pass_file: Path
) -> None:
    after, before = tmp_path / "after", tmp_path / "before"
    args_after = ["keys", "new", "mill", "--data-dir", str(after), "--passphrase-file"]
    result = runner.invoke(app, [*args_after, str(pass_file)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["--data-dir", str(before), f"--passphrase-file={pass_file}", "keys", "new", "lab"]
    )
    assert result.exit_code == 0, result.output
    # each key is in the directory it was given, whichever side of the command
    assert [k.name for k in Keyring(after / "keystore").list()] == ["mill"]
    assert [k.name for k in Keyring(before / "keystore").list()] == ["lab"]
    Keyring(after / "keystore").unlock("mill", PASSPHRASE)  # the passphrase file was read
    assert key_names(runner, "keys", "list", "--json", "--data-dir", str(before)) == ["lab"]
    assert key_names(runner, "--data-dir", str(after), "keys", "list", "--json") == ["mill"]


def test_the_root_parses_the_options_wherever_they_stand() -> None:
    """--from (which needs a chain to act on) is parsed at the root in both places; the
    command keeps its own arguments and options."""
    group = typer.main.get_command(app)
    for args in (
        ["job", "fund", "7", "--from", "mill", "--json", "--rpc-url", "http://x:1"],
        ["--from", "mill", "job", "fund", "--rpc-url=http://x:1", "7", "--json"],
        ["job", "--from=mill", "--rpc-url", "http://x:1", "fund", "7", "--json"],
    ):
        ctx = group.make_context("cofab", list(args))
        assert ctx.params["key"] == "mill"
        assert ctx.params["rpc_url"] == "http://x:1"
        assert [*ctx._protected_args, *ctx.args] == ["job", "fund", "7", "--json"], args
    ctx = group.make_context("cofab", ["step", "verify", "b.json", "--", "--from", "x"])
    assert ctx.params["key"] == "operator"  # after `--` nothing is an option
    assert ctx.args[-2:] == ["--from", "x"]


def test_environment_fallbacks_and_their_override(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pass_file: Path
) -> None:
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    monkeypatch.setenv("COFAB_DATA_DIR", str(env_dir))
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    assert runner.invoke(app, ["keys", "new", "mill"]).exit_code == 0
    Keyring(env_dir / "keystore").unlock("mill", PASSPHRASE)
    assert key_names(runner, "keys", "list", "--json") == ["mill"]
    assert key_names(runner, "keys", "list", "--json", "--data-dir", str(flag_dir)) == []

    unreachable = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("COFAB_RPC_URL", unreachable)
    result = runner.invoke(app, ["member", "list"])
    assert result.exit_code == 3
    assert f"no JSON-RPC answer from {unreachable}" in result.stderr
    other = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["member", "list", "--rpc-url", other])
    assert result.exit_code == 3
    assert f"no JSON-RPC answer from {other}" in result.stderr


def test_help_of_every_command_lists_the_shared_options(runner: CliRunner) -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    paths = []  # every group, every command of the root, one command of each group
    for name, command in root.commands.items():
        paths.append([name])
        if isinstance(command, TyperGroup):
            paths.append([name, next(iter(command.commands))])
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Shared options (before or after the command)" in result.stdout, path
        for option in SHARED:
            assert option in result.stdout, (path, option)


def test_a_conflicting_repeat_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--from", "mill", "job", "fund", "1", "--from", "lab"])
    assert result.exit_code == 2
    assert "'--from': given twice, as 'mill' and as 'lab'" in result.stderr
    # the same value twice is one option, not a conflict
    twice = ["--data-dir", str(tmp_path), "keys", "list", "--json", "--data-dir", str(tmp_path)]
    assert key_names(runner, *twice) == []
    result = runner.invoke(app, ["keys", "list", "--data-dir"])
    assert result.exit_code == 2
    assert "'--data-dir': needs a value" in result.stderr
    assert not (tmp_path / "keystore").exists()
