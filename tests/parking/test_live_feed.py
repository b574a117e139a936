"""The control-map feed: GeoJSON with ETag polling, and Server-Sent Events that follow a
sensor event within seconds (served for real by uvicorn)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.events import EventBus
from core.settings import Settings
from ingest.pipeline import Pipeline
from tests.kit.identity import add_api_key, bearer
from tests.kit.parking import ALWAYS, SENSOR_MODEL, Town, parking_town
from tests.kit.server import served
from tests.kit.uplinks import uplink

FEED = "/api/v1/parking/bays/status"


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    return parking_town(conn, settings, bays=3, zone={"hours": ALWAYS})


@pytest.fixture
def keys(conn: psycopg.Connection, town: Town) -> dict[str, dict[str, str]]:
    agent = add_api_key(conn, tenant_id=town.tenant_id,
                        permissions=["parking:read", "parking:enforce"])  # fmt: skip
    viewer = add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:read"])
    conn.commit()
    return {"agent": bearer(agent), "viewer": bearer(viewer)}


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    running = Pipeline.from_settings(settings, EventBus())
    running.start()
    yield running
    running.stop()


def _park(pipeline: Pipeline, town: Town, bay: str, occupied: int) -> None:
    now = datetime.now(UTC)
    pipeline.submit(uplink(town.sensors[bay], SENSOR_MODEL, {"occupied": occupied}, now))
    assert pipeline.wait_idle(30)


def test_feed_is_geojson_with_etag_filters_and_plates_for_agents_only(
    settings: Settings, town: Town, keys: dict[str, dict[str, str]], pipeline: Pipeline
) -> None:
    _park(pipeline, town, "B1", 1)
    _park(pipeline, town, "B2", 0)
    with TestClient(create_app(settings)) as client:
        response = client.get(FEED, headers=keys["agent"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/geo+json"
        collection = response.json()
        statuses = {f["id"]: f["properties"]["status"] for f in collection["features"]}
        assert statuses == {"B1": "grace", "B2": "free", "B3": "unknown"}
        b1 = next(f for f in collection["features"] if f["id"] == "B1")
        assert b1["geometry"]["type"] == "Point" and "plate" in b1["properties"]
        assert collection["zones"]["Z1"]["regulated"] is True
        etag = response.headers["ETag"]
        again = client.get(FEED, headers={**keys["agent"], "If-None-Match": etag})
        assert again.status_code == 304
        only_free = client.get(FEED, params={"status": "free"}, headers=keys["agent"]).json()
        assert [f["id"] for f in only_free["features"]] == ["B2"]
        bad = client.get(FEED, params={"status": "parked"}, headers=keys["agent"])
        assert bad.status_code == 422
        viewer = client.get(FEED, headers=keys["viewer"]).json()
        assert all("plate" not in f["properties"] for f in viewer["features"])
        assert client.get(FEED).status_code == 401


def _events(response: httpx.Response) -> Iterator[dict[str, object]]:
    """The `bays` events of an SSE stream, decoded."""
    data = ""
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            yield json.loads(data)
            data = ""


def test_events_follow_a_sensor_within_seconds(
    settings: Settings, town: Town, keys: dict[str, dict[str, str]], pipeline: Pipeline
) -> None:
    _park(pipeline, town, "B1", 0)
    with (
        served(settings) as base,
        httpx.Client(base_url=base, headers=keys["agent"], timeout=10) as client,
        client.stream("GET", "/api/v1/parking/bays/events") as response,
    ):
        assert response.status_code == 200
        events = _events(response)
        first = next(events)
        assert {f["id"]: f["properties"]["status"] for f in first["features"]}["B1"] == "free"
        parked_at = time.monotonic()
        _park(pipeline, town, "B1", 1)
        changed = next(events)
        delay = time.monotonic() - parked_at
        assert [(f["id"], f["properties"]["status"]) for f in changed["features"]] == [
            ("B1", "grace")
        ]
        assert delay < 5, f"the map learnt of the car after {delay:.1f} s"
