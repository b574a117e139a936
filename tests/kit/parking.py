"""A town with a parking zone, sensor-equipped bays and a payment operator, for tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient

from core import crypto, tenants
from core.audit import cli_actor
from core.identity import repository as identity
from core.settings import Settings
from core.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from devices import service as devices
from devices.models import DeviceCreate
from ingest.pipeline import Pipeline
from parking import places
from parking.models import BayCreate, ZoneCreate

from .uplinks import uplink

SENSOR_MODEL = "bosch-tps110"
PROVIDER = "paymobile"
SECRET = "whsec-test-0123456789abcdef"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# regulated around the clock: statuses that do not depend on the hour the tests run at
ALWAYS = {"weekly": {day: [{"start": "00:00", "end": "00:00"}] for day in WEEK}}


@dataclass(frozen=True)
class Town:
    """What `parking_town` made."""

    slug: str
    tenant_id: int
    zone: str
    sensors: dict[str, str]  # bay code → sensor DevEUI


def parking_town(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    slug: str = "annecy",
    bays: int = 4,
    zone: dict[str, Any] | None = None,
    eui_prefix: str = "70b3d5",
) -> Town:
    """A tenant with zone Z1 (typical hours, example tariff, 10 grace minutes unless
    `zone` says otherwise), `bays` bays B1… each with a sensor, and operator PROVIDER."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug=slug, name=slug.title()))
    actor = cli_actor()
    places.create_zone(conn, actor, tenant_id,
                       ZoneCreate(code="Z1", name="Centre", **(zone or {})))  # fmt: skip
    sensors = {}
    for number in range(1, bays + 1):
        dev_eui = f"{eui_prefix}{tenant_id:02x}{number:08x}"
        devices.register(conn, settings, tenant_id=tenant_id, device=DeviceCreate(
            dev_eui=dev_eui, model=SENSOR_MODEL, name=f"Capteur B{number}"))  # fmt: skip
        code = f"B{number}"
        bay = BayCreate(code=code, zone="Z1", lat=45.899 + number * 1e-5, lon=6.129, sensor=dev_eui)
        places.create_bay(conn, actor, tenant_id, bay)
        sensors[code] = dev_eui
    secret = crypto.encrypt(settings, SECRET)
    identity.insert_provider(
        conn, tenant_id=tenant_id, provider=PROVIDER, secret_encrypted=secret, created_by=None
    )
    conn.commit()
    return Town(slug, tenant_id, "Z1", sensors)


def signed_headers(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """The headers an operator sends with `body`."""
    timestamp = int(time.time()) if at is None else at
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def post_event(client: TestClient, event: dict[str, Any], **signing: Any) -> httpx.Response:
    """POST an operator event, signed."""
    body = json.dumps(event).encode()
    return client.post(f"/api/v1/parking/providers/{PROVIDER}/events", content=body,
                       headers=signed_headers(body, **signing))  # fmt: skip


def park(pipeline: Pipeline, town: Town, bay: str, occupied: int) -> None:
    """The bay's sensor says `occupied` now, through the ingest pipeline, and it is processed."""
    pipeline.submit(uplink(town.sensors[bay], SENSOR_MODEL, {"occupied": occupied},
                           datetime.now(UTC)))  # fmt: skip
    assert pipeline.wait_idle(30)


def bay_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The `bays` events of the control map's SSE stream, decoded."""
    data = ""
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            yield json.loads(data)
            data = ""
