"""Device lifecycle from traffic: active at the first uplink, silent after 3 × the expected
interval, active again when it speaks; through the real ingest pipeline."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core import tenants
from core.settings import Settings
from devices import service
from devices.activity import mark_silent
from devices.codecs import encode
from devices.models import DeviceCreate
from ingest.batch import from_topic
from ingest.pipeline import Pipeline

ROOM = "24e124136c225107"


@pytest.fixture
def room(conn: psycopg.Connection, settings: Settings) -> int:
    town = tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    _, device = service.register(
        conn, settings, tenant_id=town,
        device=DeviceCreate(dev_eui=ROOM, model="milesight-am103", name="CM1"),
    )  # fmt: skip
    return int(device["id"])


def _uplink(pipeline: Pipeline, at: datetime, f_cnt: int) -> None:
    """A ChirpStack v4 JSON uplink of the room sensor, sent at `at`."""
    fport, payload = encode("milesight-am103", {"temperature": 21.5, "co2": 800})
    event = {
        "deduplicationId": str(uuid.uuid4()),
        "time": at.isoformat().replace("+00:00", "Z"),
        "deviceInfo": {"devEui": ROOM, "applicationId": "app"},
        "fCnt": f_cnt,
        "fPort": fport,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f1500001", "rssi": -100, "snr": 7.5}],
    }
    topic = f"application/app/device/{ROOM}/event/up"
    pipeline.submit(from_topic(topic, json.dumps(event).encode()))
    assert pipeline.wait_idle(30)


def _state(conn: psycopg.Connection) -> tuple[str, datetime | None]:
    row = conn.execute("SELECT status, last_seen_at FROM devices WHERE dev_eui = %s", (ROOM,))
    result = row.fetchone()
    assert result is not None
    return result[0], result[1]


def test_first_uplink_makes_a_device_active_and_silence_is_noticed(
    conn: psycopg.Connection, pipeline: Pipeline, room: int
) -> None:
    assert _state(conn) == ("registered", None)
    now = datetime.now(UTC).replace(microsecond=0)
    _uplink(pipeline, now - timedelta(minutes=25), 1)
    _uplink(pipeline, now - timedelta(minutes=40), 2)  # late, older: last seen stays
    assert _state(conn) == ("active", now - timedelta(minutes=25))
    assert mark_silent(conn) == [], "25 min < 3 × 10 min"
    _uplink(pipeline, now - timedelta(minutes=31), 3)
    conn.execute("UPDATE devices SET last_seen_at = %s", (now - timedelta(minutes=31),))
    assert [dev_eui for _, dev_eui in mark_silent(conn)] == [ROOM]
    assert _state(conn)[0] == "silent"
    _uplink(pipeline, now, 4)
    assert _state(conn) == ("active", now)


def test_own_interval_overrides_the_model_default(conn: psycopg.Connection, room: int) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    conn.execute(
        "UPDATE devices SET status = 'active', last_seen_at = %s, expected_interval_s = 7200",
        (long_ago,),
    )
    assert mark_silent(conn) == [], "5 h < 3 × 2 h"
    conn.execute("UPDATE devices SET expected_interval_s = 3600")
    assert len(mark_silent(conn)) == 1
