"""Decoded readings reach subscribers after commit, once, and a failing subscriber harms nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg

from core.events import EventBus
from core.settings import Settings
from devices import service
from devices.models import DeviceCreate
from ingest.batch import from_topic
from ingest.events import ReadingsStored, UplinksStored
from ingest.pipeline import Pipeline

EM300 = "up_milesight-em300-sld_fcnt-omitted"
TOPIC = "application/x/device/24e124136c225107/event/up"


def test_subscribers_get_committed_readings_once_even_if_one_of_them_fails(
    conn: psycopg.Connection, settings: Settings, database_url: str, shared_dir: Path
) -> None:
    tenant_id = conn.execute(
        "INSERT INTO tenants (slug, name) VALUES ('town', 'Town') RETURNING id"
    )
    service.register(
        conn,
        settings,
        tenant_id=tenant_id.fetchone()[0],  # type: ignore[index]
        device=DeviceCreate(dev_eui="24e124136c225107", model="milesight-em300-sld", name="x"),
    )
    bus = EventBus()
    seen_in_database: list[int] = []
    received: list[ReadingsStored] = []
    uplinks: list[UplinksStored] = []

    def broken(_event: ReadingsStored) -> None:
        raise RuntimeError("a subscriber bug")

    def reader(event: ReadingsStored) -> None:
        received.append(event)
        with psycopg.connect(database_url) as other:  # another connection sees the commit
            row = other.execute("SELECT count(*) FROM readings").fetchone()
            seen_in_database.append(row[0])  # type: ignore[index]

    bus.subscribe(ReadingsStored, broken)
    bus.subscribe(ReadingsStored, reader)
    bus.subscribe(UplinksStored, uplinks.append)
    pipeline = Pipeline(database_url, bus, batch_max_age=0.05)
    pipeline.start()
    try:
        json_event = (shared_dir / "chirpstack-events" / f"{EM300}.json").read_bytes()
        pb_event = (shared_dir / "chirpstack-events" / f"{EM300}.pb").read_bytes()
        pipeline.submit(from_topic(TOPIC, json_event))
        assert pipeline.wait_idle(30)
        pipeline.submit(from_topic(TOPIC, pb_event))  # the same uplink again, as protobuf
        assert pipeline.wait_idle(30)
    finally:
        pipeline.stop()
    assert len(received) == 1, "the duplicate must not be published again"
    readings = {r.quantity: r.value for r in received[0].readings}
    assert readings == {"battery": 92.0, "temperature": 30.8, "humidity": 50.5, "leak": 0.0}
    assert seen_in_database == [4], "subscribers run after the commit"
    assert [u.uplinks[0].dev_eui for u in uplinks] == ["24e124136c225107"]
    assert uplinks[0].uplinks[0].gateway_id == "0016c001f153a14c"
