"""Sign-In with Ethereum (EIP-4361) sessions: one-time nonces, short-lived bearer tokens.

A message is accepted only if it names this node's public origin (configuration, never
the request's Host header) as its `domain`, a URI under that origin, this chain, and a
nonce this node issued and has not seen used; and only active members get a token.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from eth_keys.exceptions import BadSignature

from api import eip4361
from ledger.core.errors import TooLarge, Unauthorized
from ledger.core.settings import PublicOrigin

NONCE_TTL_SECONDS = 300
TOKEN_TTL_SECONDS = 900
MAX_NONCES = 10_000  # outstanding nonces; the oldest go first, so anonymous calls stay bounded


@dataclass(frozen=True)
class Session:
    address: str
    expires_at: float


class SessionStore:
    def __init__(self, chain_id: int, origin: PublicOrigin, admit: Callable[[str], object]) -> None:
        """`admit(address)` raises unless the address may hold a session (an active member)."""
        self.chain_id = chain_id
        self.origin = origin
        self._admit = admit
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self._tokens: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new_nonce(self) -> str:
        nonce: str = eip4361.siwe().generate_nonce()  # siwe ships no type hints
        with self._lock:
            self._expire()
            while len(self._nonces) >= MAX_NONCES:
                self._nonces.popitem(last=False)
            self._nonces[nonce] = time.time() + NONCE_TTL_SECONDS
        return nonce

    def sign_in(self, message: str, signature: str) -> tuple[str, Session]:
        try:
            parsed = eip4361.parse(message)
        except eip4361.MessageTooLarge as exc:
            raise TooLarge(str(exc)) from None
        except eip4361.MessageError as exc:
            raise Unauthorized(f"not an EIP-4361 sign-in message: {exc}") from None
        if not self.origin.names_domain(parsed.domain) or (
            parsed.scheme is not None and parsed.scheme.lower() != self.origin.scheme
        ):
            raise Unauthorized(
                f"sign-in refused: the message is for {parsed.domain!r}, this node is "
                f"{self.origin} (DomainMismatch)"
            )
        if not self.origin.covers_uri(parsed.uri):
            raise Unauthorized(
                f"sign-in refused: the message's URI {parsed.uri!r} is not under this node's "
                f"origin {self.origin}"
            )
        if parsed.chain_id != self.chain_id:
            raise Unauthorized(
                f"the message is for chain {parsed.chain_id}, this node is on {self.chain_id}"
            )
        if not signature.removeprefix("0x").strip("0"):
            raise Unauthorized("sign-in refused: an empty signature is no signature")
        with self._lock:
            self._expire()
            if parsed.nonce not in self._nonces:
                raise Unauthorized("unknown or already used nonce: get a new one from /auth/nonce")
            try:
                parsed.verify(signature, nonce=parsed.nonce)
            except eip4361.siwe().VerificationError as exc:
                reason = type(exc).__name__
                raise Unauthorized(f"sign-in refused: {reason}") from None
            except BadSignature:  # r/s out of range or no recoverable key: siwe lets it through
                raise Unauthorized("sign-in refused: InvalidSignature") from None
            del self._nonces[parsed.nonce]
        self._admit(str(parsed.address))
        token = secrets.token_urlsafe(32)
        session = Session(str(parsed.address), time.time() + TOKEN_TTL_SECONDS)
        with self._lock:
            self._tokens[token] = session
        return token, session

    def resolve(self, token: str) -> Session:
        with self._lock:
            session = self._tokens.get(token)
            if session is None or session.expires_at < time.time():
                self._tokens.pop(token, None)
                raise Unauthorized("the bearer token is unknown or expired: sign in again")
            return session

    def _expire(self) -> None:
        now = time.time()
        while self._nonces and next(iter(self._nonces.values())) <= now:
            self._nonces.popitem(last=False)
        self._tokens = {k: s for k, s in self._tokens.items() if s.expires_at > now}
