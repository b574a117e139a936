"""Downlinks: queued through a real MQTT broker on ChirpStack's `command/down` topic, then
moved forward by ChirpStack's txack and ack events through ingest."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.embedded import EmbeddedBroker, free_port
from core.events import EventBus
from core.mqtt import new_client
from core.settings import Settings
from ingest.batch import from_topic
from ingest.pipeline import Pipeline
from tests.kit.identity import PASSWORD, add_user, bearer
from tests.kit.waiting import wait_until

APPLICATION = "7b1a5e2c-0000-4000-8000-00000000a11e"
VALVE = "70b3d50000000042"


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    town_id = tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    add_user(conn, tenant_id=town_id, email="tech@annecy.fr", roles=["technician"])
    return town_id


@pytest.fixture
def commands(broker: EmbeddedBroker) -> Iterator[list[tuple[str, dict]]]:
    """What ChirpStack would receive on its command topics."""
    got: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    client, address = new_client(broker.url, f"test-chirpstack-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, *_: c.subscribe("application/+/device/+/command/down", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload)))
    client.connect(address.host, address.port)
    client.loop_start()
    assert subscribed.wait(10)
    yield got
    client.disconnect()
    client.loop_stop()


def _settings(settings: Settings, broker: EmbeddedBroker, **overrides: object) -> Settings:
    values = {"mqtt_url": broker.url, "chirpstack_applications": {"annecy": APPLICATION}}
    return settings.model_copy(update={**values, **overrides})


@pytest.fixture
def client(settings: Settings, broker: EmbeddedBroker, town: int) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(settings, broker))) as test_client:
        yield test_client


@pytest.fixture
def tech(client: TestClient) -> dict[str, str]:
    form = {"username": "tech@annecy.fr", "password": PASSWORD}
    headers = bearer(client.post("/api/v1/auth/token", data=form).json()["access_token"])
    device = {"dev_eui": VALVE, "model": "dragino-lwl02", "name": "Vanne école"}
    assert client.post("/api/v1/devices", headers=headers, json=device).status_code == 201
    return headers


def _feedback(settings: Settings, event: str, body: dict) -> None:
    pipeline = Pipeline.from_settings(settings, EventBus())
    pipeline.start()
    try:
        topic = f"application/{APPLICATION}/device/{VALVE}/event/{event}"
        pipeline.submit(from_topic(topic, json.dumps(body).encode()))
        assert pipeline.wait_idle(30)
    finally:
        pipeline.stop()


def test_downlink_reaches_chirpstack_and_follows_its_events(
    client: TestClient, tech: dict[str, str], commands: list, settings: Settings
) -> None:
    sent = client.post(
        f"/api/v1/devices/{VALVE}/downlinks", headers=tech,
        json={"f_port": 10, "data_hex": "A10001", "confirmed": True},
    )  # fmt: skip
    assert sent.status_code == 202, sent.text
    downlink = sent.json()
    assert downlink["status"] == "queued" and downlink["data_hex"] == "a10001"
    topic, command = wait_until(lambda: commands[-1] if commands else None, timeout=10)
    assert topic == f"application/{APPLICATION}/device/{VALVE}/command/down"
    assert command == {
        "id": downlink["id"], "devEui": VALVE, "confirmed": True, "fPort": 10, "data": "oQAB",
    }  # fmt: skip
    url = f"/api/v1/devices/{VALVE}/downlinks"
    now = datetime.now(UTC).isoformat()
    _feedback(settings, "txack", {"queueItemId": downlink["id"], "time": now, "fCntDown": 7})
    assert client.get(url, headers=tech).json()[0]["status"] == "sent"
    ack = {"queueItemId": downlink["id"], "acknowledged": True, "time": now}
    _feedback(settings, "ack", ack)
    assert client.get(url, headers=tech).json()[0]["status"] == "acknowledged"
    _feedback(settings, "txack", {"queueItemId": downlink["id"], "time": now})  # late
    assert client.get(url, headers=tech).json()[0]["status"] == "acknowledged", "never back"
    _feedback(settings, "ack", {"queueItemId": str(uuid.uuid4()), "acknowledged": False})


def test_base64_data_and_unconfirmed_nack(
    client: TestClient, tech: dict[str, str], commands: list, settings: Settings
) -> None:
    sent = client.post(
        f"/api/v1/devices/{VALVE}/downlinks", headers=tech,
        json={"f_port": 2, "data_base64": "AQI="},
    ).json()  # fmt: skip
    assert sent["data_hex"] == "0102" and sent["confirmed"] is False
    _feedback(settings, "ack", {"queueItemId": sent["id"], "acknowledged": False})
    listed = client.get(f"/api/v1/devices/{VALVE}/downlinks", headers=tech).json()
    assert listed[0]["status"] == "nacked"


@pytest.mark.parametrize(
    "body",
    [
        {"f_port": 0, "data_hex": "01"},
        {"f_port": 224, "data_hex": "01"},
        {"f_port": 10},
        {"f_port": 10, "data_hex": "01", "data_base64": "AQ=="},
        {"f_port": 10, "data_hex": "0"},
        {"f_port": 10, "data_hex": "zz"},
        {"f_port": 10, "data_base64": "not base64!"},
        {"f_port": 10, "data_hex": "00" * 243},
    ],
)
def test_bad_downlinks_are_422(client: TestClient, tech: dict[str, str], body: dict) -> None:
    response = client.post(f"/api/v1/devices/{VALVE}/downlinks", headers=tech, json=body)
    assert response.status_code == 422, response.text


def test_unreachable_broker_is_503_and_the_downlink_is_recorded_as_failed(
    settings: Settings, broker: EmbeddedBroker, town: int
) -> None:
    dead = _settings(settings, broker, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    with TestClient(create_app(dead)) as client:
        form = {"username": "tech@annecy.fr", "password": PASSWORD}
        headers = bearer(client.post("/api/v1/auth/token", data=form).json()["access_token"])
        device = {"dev_eui": VALVE, "model": "dragino-lwl02", "name": "Vanne"}
        client.post("/api/v1/devices", headers=headers, json=device)
        url = f"/api/v1/devices/{VALVE}/downlinks"
        response = client.post(url, headers=headers, json={"f_port": 10, "data_hex": "01"})
        assert response.status_code == 503 and "not queued" in response.json()["detail"]
        assert [d["status"] for d in client.get(url, headers=headers).json()] == ["failed"]


def test_tenant_without_a_chirpstack_application_gets_409(
    settings: Settings, broker: EmbeddedBroker, town: int
) -> None:
    unconfigured = _settings(settings, broker, chirpstack_applications={})
    with TestClient(create_app(unconfigured)) as client:
        form = {"username": "tech@annecy.fr", "password": PASSWORD}
        headers = bearer(client.post("/api/v1/auth/token", data=form).json()["access_token"])
        device = {"dev_eui": VALVE, "model": "dragino-lwl02", "name": "Vanne"}
        client.post("/api/v1/devices", headers=headers, json=device)
        url = f"/api/v1/devices/{VALVE}/downlinks"
        response = client.post(url, headers=headers, json={"f_port": 10, "data_hex": "01"})
        assert response.status_code == 409
