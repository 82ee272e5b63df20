"""The offline toolchain: solc from npm as a native-looking executable, anvil from npm.

`python -m ledger.eth.toolchain install` puts `solc` and `anvil` in .toolchain/bin and
registers solc where py-solc-x (and so brownie) looks for solc-v<version>: the project's
own .toolchain/solcx (used with $SOLCX_BINARY_PATH) and ~/.solcx.

The entry in ~/.solcx is shared by every checkout on the machine, so it must not point
into any one of them: it points at a self-contained copy of the wrapper and the npm
compiler (with its dependencies) under ~/.solcx/cofab-solc-v<version>/, which moving or
deleting a checkout leaves working.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from ledger.core.errors import ToolchainError
from ledger.core.settings import NODE_MODULES, PROJECT_ROOT, TOOLCHAIN_DIR, compiler_settings

SOLC_WRAPPER = PROJECT_ROOT / "toolchain" / "solc.cjs"
_ANVIL_PLATFORMS = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("darwin", "arm64"): "darwin-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
}


def solc_binary() -> Path:
    """The solc executable: the npm compiler behind toolchain/solc.cjs."""
    if not (NODE_MODULES / "solc").is_dir():
        raise ToolchainError("the npm package 'solc' is missing: run `make setup` (npm ci)")
    if shutil.which("node") is None:
        raise ToolchainError("node is not on PATH: install Node.js 20 or newer")
    return SOLC_WRAPPER


def anvil_binary() -> Path:
    """The native anvil binary shipped by @foundry-rs/anvil, else `anvil` on PATH.

    The native file is used rather than the npm `bin.mjs` launcher so that signals reach
    anvil itself and its state is dumped on shutdown.
    """
    key = (sys.platform, platform.machine().lower())
    suffix = _ANVIL_PLATFORMS.get(key)
    if suffix:
        native = NODE_MODULES / "@foundry-rs" / f"anvil-{suffix}" / "bin" / "anvil"
        if native.is_file():
            return native
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ToolchainError("anvil is missing: run `make setup` (npm ci installs @foundry-rs/anvil)")


def solcx_dirs() -> list[Path]:
    dirs = [TOOLCHAIN_DIR / "solcx"]
    env = os.environ.get("SOLCX_BINARY_PATH")
    if env:
        dirs.append(Path(env))
    dirs.append(Path.home() / ".solcx")
    return list(dict.fromkeys(dirs))


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
    link.symlink_to(target)


def _npm_closure(package: str) -> list[str]:
    """`package` and everything it depends on, as installed in node_modules."""
    seen: list[str] = []
    todo = [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        manifest = json.loads((NODE_MODULES / name / "package.json").read_text())
        todo.extend(manifest.get("dependencies", {}))
    return seen


def standalone_solc(home: Path, version: str) -> Path:
    """A copy of the solc wrapper and the npm compiler under `home` that needs nothing
    from this checkout; reused when already there for this version."""
    bundle = home / f"cofab-solc-v{version}"
    wrapper = bundle / "toolchain" / SOLC_WRAPPER.name
    if wrapper.is_file() and wrapper.read_bytes() == SOLC_WRAPPER.read_bytes():
        return wrapper
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cofab-solc-", dir=home))
    try:
        (staging / "toolchain").mkdir()
        shutil.copy2(SOLC_WRAPPER, staging / "toolchain" / SOLC_WRAPPER.name)
        for name in _npm_closure("solc"):
            shutil.copytree(NODE_MODULES / name, staging / "node_modules" / name, symlinks=True)
        if bundle.exists():  # an older wrapper: set aside, then swap in the new copy
            stale = Path(tempfile.mkdtemp(prefix=".cofab-stale-", dir=home))
            os.replace(bundle, stale / bundle.name)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, bundle)  # atomic: a second checkout installing at once is fine
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not wrapper.is_file():
            raise
    return wrapper


def install() -> list[Path]:
    """Create the executables and registrations; idempotent."""
    version = compiler_settings().solc_version
    solc = solc_binary()
    made = [TOOLCHAIN_DIR / "bin" / "solc", TOOLCHAIN_DIR / "bin" / "anvil"]
    _link(solc, made[0])
    _link(anvil_binary(), made[1])
    for directory in solcx_dirs():
        link = directory / f"solc-v{version}"
        try:
            inside = directory.resolve().is_relative_to(PROJECT_ROOT.resolve())
            _link(solc if inside else standalone_solc(directory, version), link)
        except OSError:
            continue  # an unwritable home is fine: $SOLCX_BINARY_PATH covers brownie
        made.append(link)
    return made


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        for path in install():
            print(f"toolchain: {path}")
        return 0
    if argv[:1] == ["free-port"]:
        print(free_port())
        return 0
    print("usage: python -m ledger.eth.toolchain install|free-port", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
