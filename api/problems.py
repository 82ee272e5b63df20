"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.core.errors import FAULTS, LedgerError, fault

PROBLEM = "application/problem+json"
log = logging.getLogger("cofab.api")


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **{k: v for k, v in extra.items() if v not in (None, {}, [])},
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _errors(exc: LedgerError) -> dict[str, Any]:
    """`exc.details`, with `errors` on every 422: a check that cannot name one input
    (a value the chain's ABI refused, a rule over several fields) names none."""
    if exc.status != 422 or exc.details.get("errors"):
        return exc.details
    return {**exc.details, "errors": [{"field": None, "message": exc.message}]}


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.message, request, **_errors(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or e["loc"][0], "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Invalid input", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {
            404: "Not found",
            405: "Method not allowed",
            401: "Sign-in required",
            413: "Request too large",
        }.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), request)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        known = fault(exc)
        if known is not None:
            log.warning("%s on %s: %s", known.title, request.url.path, exc)
            return problem(known.status, known.title, known.message, request, **_errors(known))
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "Internal error", "the node failed unexpectedly; see its log", request)

    # the faults below cofab (chain transport, disk) by type, so they are answered as
    # problems rather than re-raised by the server's last-resort handler
    for kind in (*FAULTS, Exception):
        app.add_exception_handler(kind, unexpected)
