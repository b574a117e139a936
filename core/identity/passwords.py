"""Password hashing with Argon2id (argon2-cffi, its RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256

_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so both cases take the same time
_DUMMY_HASH = _hasher.hash("civicsense-no-such-user")


class WeakPassword(ValueError):
    """The password does not meet the policy."""


def check_policy(password: str, *, email: str = "") -> None:
    """At least 12 characters, not only one repeated character, not the e-mail address."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")
    if len(set(password)) < 4:
        raise WeakPassword("the password must use at least 4 different characters")
    if email and password.strip().lower() == email.strip().lower():
        raise WeakPassword("the password must not be the e-mail address")


def hash_password(password: str) -> str:
    """The Argon2id hash to store."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no stored hash, spends the same time and fails."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)
