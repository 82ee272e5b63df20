"""FastAPI dependencies: the node, the session store, the signed-in member and its key.

Rule: the node signs a transaction or a consent only with the key of the signed-in
member, and only when that member holds the role the action needs. `MemberDep` resolves
the bearer token and re-checks on every request that its address is still an active
member (a suspended member's token stops working at once); `signer_for` returns that
member's own key, never the operator's or any other key the node holds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.sessions import Session, SessionStore
from ledger.core.errors import Forbidden, NotFound, Unauthorized
from ledger.eth.tx import Sender
from ledger.membership.consortium import Member, MemberStatus
from ledger.membership.roles import role_names
from ledger.node import Node

NOT_A_MEMBER = "not an active member of this consortium"

_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/login")


def get_node(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]


def get_sessions(request: Request) -> SessionStore:
    return request.app.state.sessions  # type: ignore[no-any-return]


def active_member(node: Node, address: str) -> Member:
    """The member at `address` if it is active now; 403 otherwise."""
    try:
        found = node.consortium.member(address)
    except NotFound:
        found = None
    if found is None or found.status is not MemberStatus.ACTIVE:
        raise Forbidden(f"{address} is {NOT_A_MEMBER}")
    return found


def _token_session(
    sessions: Annotated[SessionStore, Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("this endpoint needs a bearer token: sign in with POST /auth/login")
    return sessions.resolve(credentials.credentials)


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
