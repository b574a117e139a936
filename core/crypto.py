"""Secrets at rest (AppKeys): Fernet (AES-128-CBC + HMAC) from the `cryptography` library."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from .settings import Settings


class SecretKeyMissing(RuntimeError):
    """No CIVICSENSE_SECRET_KEY: secrets cannot be stored."""


def _fernet(settings: Settings) -> Fernet:
    if settings.secret_key is None:
        raise SecretKeyMissing("set CIVICSENSE_SECRET_KEY (civicsense secret-key prints one)")
    return Fernet(settings.secret_key.get_secret_value().encode())


def encrypt(settings: Settings, plaintext: str) -> bytes:
    """Encrypt a secret for storage."""
    return _fernet(settings).encrypt(plaintext.encode())


def decrypt(settings: Settings, token: bytes) -> str:
    """Decrypt a stored secret (only to forward it, e.g. to ChirpStack)."""
    try:
        return _fernet(settings).decrypt(token).decode()
    except InvalidToken:
        raise ValueError("stored secret cannot be decrypted with this key") from None


def new_key() -> str:
    """A fresh key for CIVICSENSE_SECRET_KEY."""
    return Fernet.generate_key().decode()
