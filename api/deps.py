"""FastAPI dependencies: the node, the session store, the signed-in member and its key.

Rule: the node signs a transaction or a consent only with the key of the signed-in
member, and only when that member holds the role the action needs. `MemberDep` resolves
the bearer token and re-checks on every request that its address is still an active
member (a suspended member's token stops working at once); `signer_for` returns that
member's own key, never the operator's or any other key the node holds.

An endpoint that needs a token is refused (401) on its headers alone, before its body is
read: `refuse_anonymous` is what `api.limits.RequestLimits` asks before it reads a body,
so an anonymous caller cannot make the node read (or store) anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Match

from api.sessions import Session, SessionStore
from ledger.core.errors import Forbidden, Unauthorized
from ledger.eth.tx import Sender
from ledger.membership.consortium import Member, MemberStatus
from ledger.membership.roles import role_names
from ledger.node import Node

Scope = MutableMapping[str, Any]
NOT_A_MEMBER = "not an active member of this consortium"
NEEDS_TOKEN = "this endpoint needs a bearer token: sign in with POST /auth/login"
NEEDS_TOKEN_OR_KEY = (
    "this endpoint needs a bearer token (POST /auth/login) or an EPCIS API key (POST /epcis/keys)"
)
ApiKeys = Callable[[str], str | None]
"""An API key's owner (an address), or None: `app.state.api_keys`."""

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def get_sessions(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


def active_member(node: Node, address: str) -> Member:
    """The member at `address` if it is active now; 403 otherwise."""
    found = node.consortium.member_now(address)
    if found is None or found.status is not MemberStatus.ACTIVE:
        raise Forbidden(f"{address} is {NOT_A_MEMBER}")
    return found


def _token_session(
    sessions: Annotated[SessionStore, Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(NEEDS_TOKEN)
    return sessions.resolve(credentials.credentials)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a member's address, signed in (`token`) or through one of
    its API keys (`api-key`, which only the endpoints taking a Principal accept)."""

    address: str
    via: str


def _token_or_api_key(
    request: Request,
    sessions: Annotated[SessionStore, Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(NEEDS_TOKEN_OR_KEY)
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    owner = keys(credentials.credentials) if keys is not None else None
    if owner is not None:
        return Principal(owner, "api-key")
    return Principal(sessions.resolve(credentials.credentials).address, "token")


def needs_token(route: APIRoute) -> bool:
    """Whether the route requires a signed-in session (an optional one does not count)."""
    return _depends_on(route, _token_session)


def takes_api_key(route: APIRoute) -> bool:
    """Whether the route accepts an API key in place of a session token."""
    return _depends_on(route, _token_or_api_key)


def _depends_on(route: APIRoute, call: Callable[..., Any]) -> bool:
    def walk(dependant: Dependant) -> bool:
        return dependant.call is call or any(map(walk, dependant.dependencies))

    return walk(route.dependant)


class TokenGate:
    """Which requests need a token, told from their method and path alone (the routes
    in the order the app matches them), so a request without one is refused before any
    of its body is read."""

    def __init__(self, routers: Iterable[APIRouter]) -> None:
        routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
        self.routes = [(route, needs_token(route) or takes_api_key(route)) for route in routes]
        self.key_routes = [route for route in routes if takes_api_key(route)]

        self._known: dict[tuple[Any, Any, Any], tuple[bool, bool]] = {}

    def needs_token(self, scope: Scope) -> bool:
        return self._needs(scope)[0]

    def _needs(self, scope: Scope) -> tuple[bool, bool]:
        """(needs a token, an API key will do) for this request. Remembered per (method,
        path): a route's match depends on nothing else, and a node sees the same few paths
        again and again (bounded, so any paths may come)."""
        key = (scope.get("method"), scope.get("root_path", ""), scope.get("path", ""))
        found = self._known.get(key)
        if found is None:
            found = next(
                (
                    (needed, any(route is r for r in self.key_routes))
                    for route, needed in self.routes
                    if route.matches(scope)[0] is Match.FULL
                ),
                (False, False),
            )
            if len(self._known) >= 4096:
                self._known.clear()
            self._known[key] = found
        return found

    def refuse(
        self, scope: Scope, sessions: SessionStore, api_keys: ApiKeys | None = None
    ) -> Unauthorized | None:
        """The 401 for a request that needs a token (or, where one will do, an API key)
        and carries no valid one; else None."""
        needed, key_ok = self._needs(scope)
        if not needed:
            return None
        headers = {k.lower(): v for k, v in scope["headers"]}
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise Unauthorized(NEEDS_TOKEN_OR_KEY if key_ok else NEEDS_TOKEN)
            if key_ok and api_keys is not None and api_keys(token) is not None:
                return None
            sessions.resolve(token)
        except Unauthorized as refusal:
            return refusal
        return None


def refuse_anonymous(scope: Scope) -> Unauthorized | None:
    """The 401 for a request to this app that needs a token and carries no valid one,
    judged from its headers alone; None if it may go on (its body not read yet)."""
    state: Any = getattr(scope.get("app"), "state", None)
    gate = getattr(state, "token_gate", None)
    if not isinstance(gate, TokenGate):
        return None
    return gate.refuse(scope, state.sessions, getattr(state, "api_keys", None))


def current_member(
    node: Annotated[Node, Depends(get_node)],
    session: Annotated[Session, Depends(_token_session)],
) -> Member:
    """The signed-in member, checked against the chain on this request."""
    return active_member(node, session.address)


def current_session(
    session: Annotated[Session, Depends(_token_session)],
    _member: Annotated[Member, Depends(current_member)],
) -> Session:
    """The session of a signed-in member who is still active."""
    return session


def optional_member(
    node: Annotated[Node, Depends(get_node)],
    sessions: Annotated[SessionStore, Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Member | None:
    """The signed-in member if a token is sent (it must be valid), else None."""
    if credentials is None:
        return None
    return current_member(node, _token_session(sessions, credentials))


def signer_for(node: Node, member: Member, role: int | None = None) -> Sender:
    """The signed-in member's own key, if this node holds it and, for `role` (a mask:
    any of its roles will do), the member holds that role. Never another key."""
    if role is not None and not member.roles & role:
        needed = " or ".join(role_names(role))
        held = ", ".join(role_names(member.roles)) or "no role"
        raise Forbidden(f"this needs the {needed} role; {member.address} holds {held}")
    return node.sender(member.address)


NodeDep = Annotated[Node, Depends(get_node)]
SessionDep = Annotated[Session, Depends(current_session)]
MemberDep = Annotated[Member, Depends(current_member)]
OptionalMemberDep = Annotated[Member | None, Depends(optional_member)]
PrincipalDep = Annotated[Principal, Depends(_token_or_api_key)]
