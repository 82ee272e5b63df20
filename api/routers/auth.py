"""Sign-in: a nonce and the node's public origin, then a signed EIP-4361 message."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import MemberDep, NodeDep, SessionDep, get_sessions
from api.models import LoginIn, LoginOut, NonceOut
from api.sessions import SessionStore
from ledger.membership.roles import role_names

router = APIRouter(prefix="/auth", tags=["auth"])
Sessions = Annotated[SessionStore, Depends(get_sessions)]


@router.get(
    "/nonce",
    response_model=NonceOut,
    summary="A one-time nonce, and the domain and URI the message must name",
)
def nonce(sessions: Sessions, node: NodeDep) -> NonceOut:
    origin = sessions.origin
    return NonceOut(
        nonce=sessions.new_nonce(),
        domain=origin.authority,
        uri=origin.url,
        chain_id=node.chain.chain_id,
    )


@router.post(
    "/login",
    response_model=LoginOut,
    summary="Exchange a signed EIP-4361 message for a token (active members only)",
)
def login(body: LoginIn, sessions: Sessions) -> LoginOut:
    token, session = sessions.sign_in(body.message, body.signature)
    return LoginOut(token=token, address=session.address, expires_at=int(session.expires_at))


@router.get("/me", summary="Who the bearer token belongs to, and the roles it holds now")
def me(session: SessionDep, member: MemberDep) -> dict[str, object]:
    return {
        "address": session.address,
        "expires_at": int(session.expires_at),
        "roles": role_names(member.roles),
    }
