"""The exceptions cofab raises: each says what was wrong in one sentence.

The CLI prints `error: <message>` and exits with `exit_code`; the API answers RFC 9457
problem+json with `status` and `title`. Nothing else should reach a user.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar


class LedgerError(Exception):
    """Base of every expected failure."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(LedgerError):
    """A value the caller sent is wrong; `field` names it (dotted path, as in the request),
    and the API answers `errors: [{"field", "message"}]` like any validation failure."""

    status = 422
    title = "Invalid input"
    exit_code = 2

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        if field is not None and "errors" not in details:
            details["errors"] = [{"field": field, "message": message}]
        super().__init__(message, **details)
        self.field = field


class QueryParameterError(InvalidInput):
    """An EPCIS query parameter or subscription control is wrong: EPCIS 2.0 answers 400
    (QueryParameterException, SubscriptionControlsException), naming the parameter."""

    status = 400
    title = "Invalid query parameter"


class NotFound(LedgerError):
    status = 404
    title = "Not found"


class Conflict(LedgerError):
    status = 409
    title = "Conflict"


class Unauthorized(LedgerError):
    status = 401
    title = "Sign-in required"


class Forbidden(LedgerError):
    status = 403
    title = "Forbidden"


class TooManyRequests(LedgerError):
    """A caller went over a rate limit; it may try again after the window."""

    status = 429
    title = "Too many requests"


class TooLarge(LedgerError):
    status = 413
    title = "Too large"


class ContractRevert(LedgerError):
    """The chain refused a call; `error` is the contract's custom error name."""

    status = 409
    title = "Refused by the contract"

    def __init__(self, message: str, error: str = "", args: tuple[Any, ...] = ()) -> None:
        super().__init__(message, error=error, args=[jsonable(a) for a in args])
        self.error = error
        self.error_args = args


class ChainUnavailable(LedgerError):
    status = 503
    title = "Chain unavailable"
    exit_code = 3


class DiskFull(LedgerError):
    status = 507
    title = "Insufficient storage"
    exit_code = 3


class NodeNotRunning(LedgerError):
    status = 503
    title = "Node not running"
    exit_code = 3


class KeystoreError(LedgerError):
    title = "Keystore error"


class ConfigError(LedgerError):
    title = "Configuration error"
    exit_code = 2


class ToolchainError(LedgerError):
    title = "Toolchain error"
    exit_code = 3


class DeploymentError(LedgerError):
    title = "Deployment error"
    exit_code = 3


def field_name(what: str) -> str:
    """The request field a described value is ("evidence hash" -> "evidence_hash")."""
    return what.strip().lower().replace(" ", "_")


def jsonable(value: Any) -> Any:
    """Bytes as 0x-hex, tuples as lists: contract values ready for JSON."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _fault_types() -> tuple[type[Exception], ...]:
    import sqlite3

    import requests
    from web3.exceptions import (
        MismatchedABI,
        ProviderConnectionError,
        TimeExhausted,
        Web3RPCError,
    )

    return (
        OSError,
        sqlite3.OperationalError,
        requests.RequestException,
        ProviderConnectionError,
        TimeExhausted,
        MismatchedABI,
        Web3RPCError,
    )


FAULTS = _fault_types()
"""Exception types that may be faults `fault()` knows (a subset of each type is)."""


def fault(exc: BaseException) -> LedgerError | None:
    """The LedgerError a known fault of the machine or the chain means, or None.

    Faults come from below cofab (the HTTP client to the chain, SQLite, the disk) as
    their own exception types; each adapter turns them into the same answer with this.
    """
    import errno
    import sqlite3

    import requests
    from web3.exceptions import (
        MismatchedABI,
        ProviderConnectionError,
        TimeExhausted,
        Web3RPCError,
    )

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFull("the node's disk is full: free space on its data directory's disk")
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        return DiskFull("the node's disk is full: free space on its data directory's disk")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ProviderConnectionError)):
        return ChainUnavailable("the node cannot reach its chain: is the chain's RPC endpoint up?")
    if isinstance(exc, TimeExhausted):
        return ChainUnavailable(f"the chain did not answer in time: {exc}")
    if isinstance(exc, Web3RPCError):  # e.g. eth_getLogs over pruned history, a rate limit
        return ChainUnavailable(f"the chain's node refused a request: {exc.message}")
    if isinstance(exc, MismatchedABI):  # a value the API edge let through unbounded
        reasons = [line.strip() for line in str(exc).splitlines() if "not compatible" in line]
        return InvalidInput(
            "a value does not fit the contract's type: "
            + ("; ".join(reasons) or "a number out of range")
        )
    return None


class FaultLog:
    """What a background loop (anchoring, notifications) logs of its rounds: an unknown
    failure with its traceback every time; a known fault (the chain unreachable, the disk
    full) once, until it changes; the recovery once."""

    def __init__(self, log: logging.Logger, failed: str, waits: str, resumed: str) -> None:
        self.log = log
        self.failed_text, self.waits_text, self.resumed_text = failed, waits, resumed
        self.paused: str | None = None  # the known fault the loop waits on

    def failed(self, exc: Exception) -> None:
        known = fault(exc)
        if known is None:
            self.log.exception(self.failed_text)
        elif known.message != self.paused:
            self.paused = known.message
            self.log.warning("%s: %s", self.waits_text, known.message)

    def succeeded(self) -> None:
        if self.paused is not None:
            self.paused = None
            self.log.warning("the chain answers again: %s", self.resumed_text)
