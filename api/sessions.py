"""Sign-In with Ethereum (EIP-4361) sessions: one-time nonces, short-lived bearer tokens."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from eth_keys.exceptions import BadSignature
from siwe import SiweMessage, VerificationError, generate_nonce

from ledger.errors import Unauthorized

NONCE_TTL_SECONDS = 300
TOKEN_TTL_SECONDS = 900


@dataclass(frozen=True)
class Session:
    address: str
    expires_at: float


class SessionStore:
    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        self._nonces: dict[str, float] = {}
        self._tokens: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new_nonce(self) -> str:
        nonce = generate_nonce()
        with self._lock:
            self._expire()
            self._nonces[nonce] = time.time() + NONCE_TTL_SECONDS
        return nonce

    def sign_in(self, message: str, signature: str, domain: str) -> tuple[str, Session]:
        try:
            parsed = SiweMessage.from_message(message=message)
        except Exception as exc:  # noqa: BLE001 - siwe raises several parse error types
            reason = str(exc) or type(exc).__name__
            raise Unauthorized(f"not an EIP-4361 sign-in message: {reason}") from None
        if parsed.chain_id != self.chain_id:
            raise Unauthorized(
                f"the message is for chain {parsed.chain_id}, this node is on {self.chain_id}"
            )
        with self._lock:
            self._expire()
            if parsed.nonce not in self._nonces:
                raise Unauthorized("unknown or already used nonce: get a new one from /auth/nonce")
            try:
                parsed.verify(signature, domain=domain, nonce=parsed.nonce)
            except VerificationError as exc:
                reason = type(exc).__name__
                raise Unauthorized(f"sign-in refused: {reason}") from None
            except BadSignature:  # r/s out of range or no recoverable key: siwe lets it through
                raise Unauthorized("sign-in refused: InvalidSignature") from None
            del self._nonces[parsed.nonce]
            token = secrets.token_urlsafe(32)
            session = Session(str(parsed.address), time.time() + TOKEN_TTL_SECONDS)
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
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        self._tokens = {k: s for k, s in self._tokens.items() if s.expires_at > now}
