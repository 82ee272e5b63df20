"""Webhook signatures: HMAC-SHA256 over `timestamp.body`, sent as
`Cofab-Signature: t=<unix seconds>,v1=<hex>` (the scheme Stripe uses).

A receiver checks the signature with its webhook's secret over the exact bytes it
received, and refuses a timestamp older (or newer) than its tolerance, so a captured
request cannot be replayed later. `verify` is the reference receivers can copy.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Cofab-Signature"
DELIVERY_HEADER = "Cofab-Delivery"
EVENT_HEADER = "Cofab-Event"
GS1_SIGNATURE_HEADER = "GS1-Signature"  # the same value, on EPCIS query subscription reports
DEFAULT_TOLERANCE = 300  # seconds a signed request stays acceptable


class SignatureError(ValueError):
    """The request is not signed with the secret, or its timestamp is outside tolerance."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Cofab-Signature` header value for `body` at `timestamp` (default now)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a `Cofab-Signature` header against the raw `body`; return its timestamp.
    Raises SignatureError when no v1 signature matches or the timestamp is further than
    `tolerance` seconds from `now`."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        k, _, v = item.strip().partition("=")
        parts.setdefault(k, []).append(v)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("no timestamp in the signature header") from None
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        raise SignatureError("the signature does not match the body")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        raise SignatureError(f"the timestamp is {int(current - t)} s away: outside tolerance")
    return t
