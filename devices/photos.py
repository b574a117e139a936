"""Installation photos: one per device, stored in `device_photos` (tenant-protected), only
ever as the clean JPEG that `core.images.clean` makes. A new upload replaces the old one; a
decommissioned device keeps its photo (evidence of the installation), though the API
serves it no more once the DevEUI is retired."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.images import CleanImage
from core.uploads import StoredPhoto

_UPSERT = """
INSERT INTO device_photos (device_id, tenant_id, bytes, content_type, width, height, size,
                           uploaded_by)
VALUES (%(device_id)s, %(tenant_id)s, %(bytes)s, %(content_type)s, %(width)s, %(height)s,
        %(size)s, %(uploaded_by)s)
ON CONFLICT (device_id) DO UPDATE
SET bytes = excluded.bytes, content_type = excluded.content_type, width = excluded.width,
    height = excluded.height, size = excluded.size, uploaded_by = excluded.uploaded_by,
    uploaded_at = now()
RETURNING content_type, width, height, size, uploaded_by, uploaded_at
"""


class PhotoRead(StoredPhoto):
    """A device's stored photo, without its bytes."""

    dev_eui: str


def store(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    device: dict[str, Any],
    image: CleanImage,
    uploaded_by: str,
) -> dict[str, Any]:
    """Store (or replace) the device's photo; its description."""
    params = {
        "device_id": device["id"], "tenant_id": tenant_id, "bytes": image.data,
        "content_type": image.content_type, "width": image.width, "height": image.height,
        "size": len(image.data), "uploaded_by": uploaded_by,
    }  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_UPSERT, params).fetchone()
    assert row is not None
    return {"dev_eui": device["dev_eui"], **row}


def image_of(conn: psycopg.Connection, device_id: int) -> tuple[bytes, str] | None:
    """(bytes, content type) of the device's photo, if it has one."""
    row = conn.execute(
        "SELECT bytes, content_type FROM device_photos WHERE device_id = %s", (device_id,)
    ).fetchone()
    return (bytes(row[0]), str(row[1])) if row else None


def delete(conn: psycopg.Connection, device_id: int) -> bool:
    """Remove the device's photo; whether there was one."""
    return conn.execute("DELETE FROM device_photos WHERE device_id = %s", (device_id,)).rowcount > 0
