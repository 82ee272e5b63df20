"""The offline toolchain: solc from npm as a native-looking executable, anvil from npm.

`python -m ledger.toolchain install` puts `solc` and `anvil` in .toolchain/bin and
registers solc where py-solc-x (and so brownie) looks for solc-v<version>: the project's
own .toolchain/solcx (used with $SOLCX_BINARY_PATH) and ~/.solcx.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from pathlib import Path

from ledger.errors import ToolchainError
from ledger.settings import NODE_MODULES, PROJECT_ROOT, TOOLCHAIN_DIR, compiler_settings

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
            _link(solc, link)
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
    print("usage: python -m ledger.toolchain install|free-port", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
