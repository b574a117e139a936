"""Device tags: a technician's labels (`floor=2`, `lot=2026-A`, `pilot`), key → value, the
shape of ChirpStack's device tags (map<string, string>); a bare label has the value "".

Provisioning sets `civicsense_tenant`, `site` and `bay` on the ChirpStack device itself, so
those keys are reserved (in any letter case).
"""

from __future__ import annotations

import re

KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_VALUE = 200
MAX_TAGS = 32
RESERVED = frozenset({"civicsense_tenant", "site", "bay"})


def check(tags: dict[str, str]) -> dict[str, str]:
    """The tags, if valid; else ValueError naming the first problem."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags per device, {len(tags)} given")
    for key, value in tags.items():
        check_key(key)
        if key.lower() in RESERVED:
            reserved = ", ".join(sorted(RESERVED))
            raise ValueError(
                f"tag {key!r} is reserved: civicsense sets {reserved} in ChirpStack itself"
                " (place a device with its site and bay fields)"
            )
        if len(value) > MAX_VALUE:
            raise ValueError(f"tag {key!r}: the value is longer than {MAX_VALUE} characters")
        if not value.isprintable():
            raise ValueError(f"tag {key!r}: the value must be printable (no control characters)")
    return tags


def check_key(key: str) -> str:
    """The key, if valid; else ValueError."""
    if not KEY.fullmatch(key):
        raise ValueError(f"tag key {key!r}: 1 to 64 letters, digits, '_', '.' or '-'")
    return key


def parse_cell(text: str) -> dict[str, str]:
    """Tags of a CSV cell: `key=value` or bare `label` entries separated by `;`."""
    tags: dict[str, str] = {}
    for entry in text.split(";"):
        if not entry.strip():
            continue
        key, _, value = (part.strip() for part in entry.partition("="))
        if key in tags:
            raise ValueError(f"tag {key!r} is given twice")
        tags[key] = value
    return check(tags)


def parse_filter(text: str) -> tuple[str, str | None]:
    """A list filter, `key` (the device has the tag) or `key=value`: (key, value or None)."""
    key, separator, value = text.partition("=")
    if separator:
        check({key: value})
    return check_key(key), value if separator else None


def for_chirpstack(tags: dict[str, str], reserved: dict[str, str | None]) -> dict[str, str]:
    """The tags ChirpStack gets: the device's, then the reserved ones that have a value."""
    return {**tags, **{key: value for key, value in reserved.items() if value}}
