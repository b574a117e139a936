"""TOTP second factor (RFC 6238, pyotp), its enrolment QR code (segno) and recovery codes."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import pyotp
import segno

ISSUER = "civicsense"
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    """A random base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code, ready to inline in a page."""
    return segno.make(uri, error="m").svg_inline(scale=4)


def accepted_step(
    secret: str, code: str, *, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step `code` is valid for (±1 step of clock drift), if it was not used yet."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit()) or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(time.time() if now is None else now, UTC))
    for step in (current, current - 1, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Single-use codes shown once at enrolment, `xxxxx-xxxxx`."""

    def one() -> str:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        return f"{raw[:5]}-{raw[5:]}"

    return [one() for _ in range(RECOVERY_CODES)]


def normalise_recovery_code(code: str) -> str:
    """Case, spaces and dashes do not matter when typing a recovery code."""
    raw = "".join(ch for ch in code.lower() if ch.isalnum())
    return f"{raw[:5]}-{raw[5:]}"
