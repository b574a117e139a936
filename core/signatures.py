"""Webhook signatures: HMAC-SHA256 over the timestamp and the raw body.

One scheme for every signed webhook: payment operators' calls to the parking API, the
simulator standing in for them, and the notifications civicsense sends. A sender sends
`X-Civicsense-Timestamp: <unix seconds>` and
`X-Civicsense-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + body)>`.
Signing the timestamp with the body is what lets the receiver refuse an old request
replayed by whoever captured it: older than `TOLERANCE_S` (either way) is refused, and
within it the same signature is accepted once (the receiver keeps their hashes).
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Civicsense-Timestamp"
SIGNATURE_HEADER = "X-Civicsense-Signature"
TOLERANCE_S = 300
_PREFIX = "sha256="


class SignatureError(ValueError):
    """The request is not signed, badly signed or stale."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value a provider sends."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> bytes:
    """Check a request; returns the signature's digest (for replay detection)."""
    if not timestamp or not signature:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    if abs(now - sent_at) > TOLERANCE_S:
        raise SignatureError(f"stale request: timestamp more than {TOLERANCE_S} s from now")
    expected = sign(secret, sent_at, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("signature does not match")
    return hashlib.sha256(expected.encode()).digest()
