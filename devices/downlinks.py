"""Downlinks: queued through ChirpStack's MQTT integration (`command/down`, the JSON
mapping of `DownlinkCommand`), with an id of ours that ChirpStack keeps as the queue
item id; its `txack` (sent) and `ack` (acknowledged or not) events, which ingest hands to
`apply_feedback`, move the downlink's status forward, never back."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PAYLOAD = 242  # the largest LoRaWAN application payload (EU868, fastest data rates)


class DownlinkCreate(BaseModel):
    """A downlink to send: the data as hex or as base64."""

    model_config = ConfigDict(extra="forbid")

    f_port: int = Field(ge=1, le=223, description="application port (1-223)")
    data_hex: str | None = Field(None, max_length=2 * MAX_PAYLOAD, pattern=r"^([0-9a-fA-F]{2})*$")
    data_base64: str | None = Field(None, max_length=4 * MAX_PAYLOAD)
    confirmed: bool = False

    @model_validator(mode="after")
    def _one_encoding(self) -> DownlinkCreate:
        if (self.data_hex is None) == (self.data_base64 is None):
            raise ValueError("give the data either as data_hex or as data_base64")
        if len(self.payload()) > MAX_PAYLOAD:
            raise ValueError(f"at most {MAX_PAYLOAD} bytes")
        return self

    def payload(self) -> bytes:
        """The bytes to send."""
        if self.data_hex is not None:
            return bytes.fromhex(self.data_hex)
        try:
            return base64.b64decode(self.data_base64 or "", validate=True)
        except binascii.Error:
            raise ValueError("data_base64 is not valid base64") from None


class DownlinkRead(BaseModel):
    """A downlink and its status."""

    id: uuid.UUID
    dev_eui: str
    f_port: int
    data_hex: str
    confirmed: bool
    status: str = Field(description="queued, sent, acknowledged, nacked or failed")
    error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, dev_eui, f_port, encode(data, 'hex') AS data_hex, confirmed, status, error,"
    " created_by, created_at, updated_at"
)


def insert(
    conn: psycopg.Connection, *, tenant_id: int, device: dict[str, Any],
    request: DownlinkCreate, created_by: str,
) -> dict[str, Any]:  # fmt: skip
    """Record a queued downlink with a fresh id."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO downlinks (id, tenant_id, device_id, dev_eui, f_port, data, confirmed,"
            " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _COLUMNS,
            (uuid.uuid4(), tenant_id, device["id"], device["dev_eui"], request.f_port,
             request.payload(), request.confirmed, created_by),
        ).fetchone()  # fmt: skip
    assert row is not None
    return row


def failed(conn: psycopg.Connection, downlink_id: uuid.UUID, error: str) -> dict[str, Any]:
    """Mark a downlink that could not be handed to ChirpStack."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE downlinks SET status = 'failed', error = %s, updated_at = now()"
            " WHERE id = %s RETURNING " + _COLUMNS,
            (error, downlink_id),
        ).fetchone()
    assert row is not None
    return row


def for_device(conn: psycopg.Connection, device_id: int, limit: int) -> list[dict[str, Any]]:
    """A device's downlinks, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT " + _COLUMNS + " FROM downlinks WHERE device_id = %s"
            " ORDER BY created_at DESC LIMIT %s",
            (device_id, limit),
        ).fetchall()


def command(downlink: dict[str, Any]) -> bytes:
    """The `command/down` message for ChirpStack (protobuf JSON mapping)."""
    return json.dumps({
        "id": str(downlink["id"]),
        "devEui": downlink["dev_eui"],
        "confirmed": downlink["confirmed"],
        "fPort": downlink["f_port"],
        "data": base64.b64encode(bytes.fromhex(downlink["data_hex"])).decode(),
    }).encode()  # fmt: skip


def command_topic(application_id: str, dev_eui: str) -> str:
    """Where ChirpStack takes downlinks for a device."""
    return f"application/{application_id}/device/{dev_eui}/command/down"


_FEEDBACK = """
UPDATE downlinks d SET status = f.status, updated_at = now()
FROM unnest(%s::uuid[], %s::text[]) AS f(id, status)
WHERE d.id = f.id
  AND (CASE d.status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 ELSE 2 END)
    < (CASE f.status WHEN 'sent' THEN 1 ELSE 2 END)
"""


def apply_feedback(cur: psycopg.Cursor, feedback: list[tuple[uuid.UUID, str]]) -> None:
    """Move downlinks forward from (queue item id, 'sent' | 'acknowledged' | 'nacked');
    ids that are not ours are left alone."""
    if feedback:
        cur.execute(_FEEDBACK, ([i for i, _ in feedback], [s for _, s in feedback]))
