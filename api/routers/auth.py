from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.deps import NodeDep, SessionDep, get_sessions
from api.models import LoginIn, LoginOut, NonceOut
from api.sessions import SessionStore

router = APIRouter(prefix="/auth", tags=["auth"])
Sessions = Annotated[SessionStore, Depends(get_sessions)]


def _domain(request: Request) -> str:
    return request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"


@router.get("/nonce", response_model=NonceOut, summary="A one-time nonce for an EIP-4361 message")
def nonce(request: Request, sessions: Sessions, node: NodeDep) -> NonceOut:
    return NonceOut(
        nonce=sessions.new_nonce(), domain=_domain(request), chain_id=node.chain.chain_id
    )


@router.post("/login", response_model=LoginOut, summary="Exchange a signed EIP-4361 message")
def login(body: LoginIn, request: Request, sessions: Sessions) -> LoginOut:
    token, session = sessions.sign_in(body.message, body.signature, _domain(request))
    return LoginOut(token=token, address=session.address, expires_at=int(session.expires_at))


@router.get("/me", summary="Who the bearer token belongs to")
def me(session: SessionDep) -> dict[str, object]:
    return {"address": session.address, "expires_at": int(session.expires_at)}
