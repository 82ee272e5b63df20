"""The exceptions cofab raises: each says what was wrong in one sentence.

The CLI prints `error: <message>` and exits with `exit_code`; the API answers RFC 9457
problem+json with `status` and `title`. Nothing else should reach a user.
"""

from __future__ import annotations

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
    status = 422
    title = "Invalid input"
    exit_code = 2


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


def jsonable(value: Any) -> Any:
    """Bytes as 0x-hex, tuples as lists: contract values ready for JSON."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
