"""Reading contracts: one `call` that turns a revert into the project's typed error."""

from __future__ import annotations

from typing import Any

from ledger.eth.tx import revert_from, reverts


def call(fn: Any, block: int | str = "latest") -> Any:
    """`fn.call()` at `block`; a revert raises the decoded custom error (ledger.core.errors)."""
    try:
        return fn.call(block_identifier=block)
    except reverts() as exc:
        raise revert_from(exc) from None
