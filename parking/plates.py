"""Licence plates: one matching key however a plate was typed, and a tidy display form.

Drivers type plates into payment apps, agents into a phone, and cameras read them: the same
car arrives as "ab-123-cd", "AB 123 CD" or "ab123cd". Matching therefore uses a key made of the
plate's letters and digits only, uppercased. The display form is the official one for current
French plates (SIV, "AB-123-CD"); any other plate (older French FNI such as "1234 AB 75", foreign
plates) is shown as typed, only tidied, because its separators carry meaning we do not know.

A foreign plate that happens to have the SIV shape (an Italian "AB 123 CD", say) is displayed
the SIV way; its key, which is what matters, is unchanged.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import NamedTuple

__all__ = ["KEY_MAX_LENGTH", "KEY_MIN_LENGTH", "Plate", "normalise_plate", "plate_key"]

KEY_MIN_LENGTH = 2
KEY_MAX_LENGTH = 12

_ALLOWED = frozenset(string.ascii_letters + string.digits + " -.")
_SIV_KEY = re.compile(r"[A-Z]{2}[0-9]{3}[A-Z]{2}")


class Plate(NamedTuple):
    """A licence plate: `display` for people, `key` (A–Z and 0–9 only) for matching."""

    display: str
    key: str


def normalise_plate(text: str) -> Plate:
    """Parse a plate as typed; raise ValueError with a readable reason when it is not one.

    Surrounding whitespace is dropped; inside the plate only ASCII letters, digits, spaces,
    '-' and '.' are accepted (a diacritic or a control character is a typing error, not a
    plate).
    """
    stripped = text.strip()  # a pasted plate often brings a trailing newline
    if not stripped:
        raise ValueError("plate is empty")
    for char in stripped:
        if unicodedata.category(char) == "Cc":
            raise ValueError(f"plate contains a control character ({char!r})")
        if char not in _ALLOWED:
            raise ValueError(
                f"plate contains {char!r}; only letters A-Z, digits, spaces, '-' and '.' "
                "are allowed"
            )
    key = "".join(char for char in stripped if char.isalnum()).upper()
    if not key:
        raise ValueError("plate has no letter or digit")
    if not KEY_MIN_LENGTH <= len(key) <= KEY_MAX_LENGTH:
        raise ValueError(
            f"plate must have {KEY_MIN_LENGTH} to {KEY_MAX_LENGTH} letters and digits, "
            f"got {len(key)}"
        )
    if _SIV_KEY.fullmatch(key):
        display = f"{key[:2]}-{key[2:5]}-{key[5:]}"
    else:
        display = " ".join(stripped.split()).upper()
    return Plate(display=display, key=key)


def plate_key(text: str) -> str:
    """The matching key of a plate as typed (see `normalise_plate`)."""
    return normalise_plate(text).key
