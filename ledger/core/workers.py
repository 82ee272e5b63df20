"""The one fork server a process's worker pools start their workers from.

A process has a single fork server, started by the first pool that needs it and
preloading what was asked of it then. So every pool asks through `forkserver`, which
preloads the modules named so far and every module of cofab's own packages this process
has loaded: a new worker runs the process's main script again before its first task
(multiprocessing does so for a script started by its path, as `cofab`, a bench or
pytest is), and its imports would otherwise cost each worker about 0.2 s of CPU.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from functools import cache
from importlib.metadata import packages_distributions
from multiprocessing.context import ForkServerContext

_NAMED: list[str] = []
_LOCK = threading.Lock()


@cache
def _own_packages() -> frozenset[str]:
    """The top-level packages installed with `ledger` (cofab's distribution)."""
    found = packages_distributions()
    return frozenset(top for top, dists in found.items() if set(dists) & set(found["ledger"]))


def forkserver(*modules: str) -> ForkServerContext:
    """The fork-server context for a worker pool whose workers need `modules`."""
    with _LOCK:
        _NAMED.extend(m for m in modules if m not in _NAMED)
        try:
            own = _own_packages()
        except KeyError:  # run from a checkout that is not installed: what was named
            own = frozenset()
        loaded = sorted(
            m
            for m in list(sys.modules)
            if m.partition(".")[0] in own and not m.endswith("__main__")
        )
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([*_NAMED, *loaded])
    return context
