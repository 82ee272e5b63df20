"""Files only the node's user may read: the data directory is 0700 and what is in it 0600.

The data directory holds keystores, passphrases, the step journal and design keys, so
nothing in it is readable by other accounts on the machine. Modes are set explicitly
(`os.open` with a mode, then `chmod`), so the result does not depend on the umask, and
files and directories made by an older version are tightened when the node opens them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it if it already exists."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for created in (*missing, path):
        os.chmod(created, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a 0600 file (created empty if absent), in a 0700 directory."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def tighten(path: Path) -> None:
    """Set an existing file to 0600 (nothing if it is absent)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """An OS file descriptor for `path`, created 0600 (e.g. a log opened for appending)."""
    private_dir(path.parent)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, data: str | bytes) -> Path:
    """Write `path` atomically as a 0600 file: temporary file, fsync, rename."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
