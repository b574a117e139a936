"""Enforcement actions' photos: at most one per action, stored in
`enforcement_action_photos` only as the clean JPEG that `core.images.clean` makes. A photo
is evidence (the car behind an FPS): it is added once and never replaced or deleted by the
application, which may only read and insert in that table."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.images import CleanImage
from core.uploads import StoredPhoto

_INSERT = """
INSERT INTO enforcement_action_photos (action_id, tenant_id, bytes, sha256, content_type,
                                       width, height, size, uploaded_by)
VALUES (%(action_id)s, %(tenant_id)s, %(bytes)s, sha256(%(bytes)s), %(content_type)s,
        %(width)s, %(height)s, %(size)s, %(uploaded_by)s)
ON CONFLICT (action_id) DO NOTHING
RETURNING action_id, content_type, width, height, size, encode(sha256, 'hex') AS sha256,
          uploaded_by, uploaded_at
"""


class ActionPhotoRead(StoredPhoto):
    """An action's stored photo, without its bytes."""

    action_id: int
    sha256: str


def add(
    conn: psycopg.Connection, *, tenant_id: int, action_id: int, image: CleanImage,
    uploaded_by: str,
) -> dict[str, Any] | None:  # fmt: skip
    """Store the action's photo; its description, or None when it already has one."""
    params = {
        "action_id": action_id, "tenant_id": tenant_id, "bytes": image.data,
        "content_type": image.content_type, "width": image.width, "height": image.height,
        "size": len(image.data), "uploaded_by": uploaded_by,
    }  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_INSERT, params).fetchone()


def image_of(conn: psycopg.Connection, action_id: int) -> tuple[bytes, str] | None:
    """(bytes, content type) of the action's photo, if it has one."""
    row = conn.execute(
        "SELECT bytes, content_type FROM enforcement_action_photos WHERE action_id = %s",
        (action_id,),
    ).fetchone()
    return (bytes(row[0]), str(row[1])) if row else None
