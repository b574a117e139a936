"""Plate pseudonyms: HMAC-SHA256 of the tenant and the plate's key, keyed by a key derived
(HKDF) from CIVICSENSE_SECRET_KEY.

The same plate gives the same pseudonym within a town (distinct vehicles, repeat visits
and the reports still count right) and different ones in two towns (no linking across
towns). Without the secret key a pseudonym cannot be turned back into a plate, not even
by trying every plate. A new secret key starts new pseudonyms: a vehicle seen before
and after the change counts twice. Pseudonyms start with `PREFIX`, which a typed plate
can never contain (parking.plates refuses ':').
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.crypto import SecretKeyMissing
from core.settings import Settings

PREFIX = "pseudo:"
_INFO = b"civicsense plate pseudonyms v1"


def _key(settings: Settings) -> bytes:
    if settings.secret_key is None:
        raise SecretKeyMissing("set CIVICSENSE_SECRET_KEY: plate pseudonyms are keyed with it")
    secret = settings.secret_key.get_secret_value().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


def pseudonymiser(settings: Settings, tenant_id: int) -> Callable[[str], str]:
    """The function giving a plate key's pseudonym in this tenant."""
    key = _key(settings)

    def pseudonym(plate_key: str) -> str:
        message = f"{tenant_id}:{plate_key}".encode()
        return PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]

    return pseudonym


def is_pseudonym(text: str | None) -> bool:
    """Whether a stored plate is already a pseudonym."""
    return text is not None and text.startswith(PREFIX)
