"""FastAPI dependencies: the node, the session store and the signed-in member."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.sessions import Session, SessionStore
from ledger.errors import Unauthorized
from ledger.node import Node

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")


def get_node(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]


def get_sessions(request: Request) -> SessionStore:
    return request.app.state.sessions  # type: ignore[no-any-return]


def current_session(
    sessions: Annotated[SessionStore, Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("this endpoint needs a bearer token: sign in with POST /auth/login")
    return sessions.resolve(credentials.credentials)


NodeDep = Annotated[Node, Depends(get_node)]
SessionDep = Annotated[Session, Depends(current_session)]
