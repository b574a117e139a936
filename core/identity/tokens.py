"""Access tokens (JWT, PyJWT) and opaque secrets (refresh tokens, sessions, API keys).

Opaque secrets carry 256 random bits, so a plain SHA-256 of them is what is stored
and looked up; a keyed hash (HMAC) is used for the short recovery codes. The JWT
signing key and the HMAC key are derived (HKDF) from CIVICSENSE_SECRET_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..crypto import SecretKeyMissing
from ..settings import Settings

ALGORITHM = "HS256"
API_KEY_PREFIX = "csk_"
# an access token limited to enrolling a second factor
SCOPE_FULL = "full"
SCOPE_TOTP_ENROLMENT = "totp-enrolment"


class InvalidToken(Exception):
    """Expired, tampered with or not an access token."""


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key for `purpose`, derived from the platform's secret key."""
    if settings.secret_key is None:
        raise SecretKeyMissing("set CIVICSENSE_SECRET_KEY (civicsense secret-key prints one)")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(settings.secret_key.get_secret_value().encode())


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: int
    password_stamp: int
    scope: str


def password_stamp(changed_at: datetime) -> int:
    """When the password last changed, in microseconds: a token carries the stamp it was
    issued under, and stops working when the password changes (even within a second)."""
    return int(changed_at.timestamp() * 1_000_000)


def issue_access(
    settings: Settings, *, user_id: int, password_changed_at: datetime, scope: str = SCOPE_FULL
) -> str:
    """A signed access token valid `access_token_minutes`."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "pwd": password_stamp(password_changed_at),
        "iat": now,
        "exp": now + settings.access_token_minutes * 60,
        "typ": "access",
        "scope": scope,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, derived_key(settings, "jwt"), algorithm=ALGORITHM)


def verify_access(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid access token, or InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            derived_key(settings, "jwt"),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "iat", "exp", "typ", "pwd"]},
        )
        if claims["typ"] != "access":
            raise InvalidToken("not an access token")
        return AccessClaims(int(claims["sub"]), int(claims["pwd"]), claims.get("scope", ""))
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from None


def new_secret() -> str:
    """An opaque 256-bit secret, URL-safe."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """What is stored for an opaque secret."""
    return hashlib.sha256(secret.encode()).digest()


def keyed_hash(settings: Settings, value: str) -> str:
    """A hex HMAC of a short secret (recovery codes), useless without the secret key."""
    return hmac.new(derived_key(settings, "recovery"), value.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> tuple[str, str]:
    """(the key shown once, its public prefix used for look-up)."""
    prefix = secrets.token_hex(4)
    return f"{API_KEY_PREFIX}{prefix}_{new_secret()}", prefix


def api_key_prefix(key: str) -> str | None:
    """The look-up prefix of something shaped like an API key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(API_KEY_PREFIX) :].partition("_")
    return prefix if sep and len(prefix) == 8 and rest else None
