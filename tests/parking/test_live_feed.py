"""The control-map feed: GeoJSON with ETag polling, and Server-Sent Events that follow a
sensor event within seconds (served for real by uvicorn)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.audit import cli_actor
from core.events import EventBus
from core.hours import RegulatedHours
from core.listening import StopSignal
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.pipeline import Pipeline
from parking import changes, feed, occupancy_sync, places, sessions
from parking.enforcement_router import STATUSES
from parking.feed import ZonePart
from parking.live import LiveFeed, _listen
from parking.models import BayCreate, BayUpdate, ZoneCreate, ZoneUpdate
from parking.session_models import SessionFacts
from parking.status import CLOCK_STEP
from tests.kit.identity import add_api_key, bearer
from tests.kit.parking import ALWAYS, PROVIDER, SENSOR_MODEL, Town, bay_events, park, parking_town
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


def test_feed_is_geojson_with_etag_filters_and_plates_for_agents_only(
    settings: Settings, town: Town, keys: dict[str, dict[str, str]], pipeline: Pipeline
) -> None:
    park(pipeline, town, "B1", 1)
    park(pipeline, town, "B2", 0)
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


def test_events_follow_a_sensor_within_seconds(
    settings: Settings, town: Town, keys: dict[str, dict[str, str]], pipeline: Pipeline
) -> None:
    park(pipeline, town, "B1", 0)
    with (
        served(settings) as base,
        httpx.Client(base_url=base, headers=keys["agent"], timeout=10) as client,
        client.stream("GET", "/api/v1/parking/bays/events") as response,
    ):
        assert response.status_code == 200
        events = bay_events(response)
        first = next(events)
        assert {f["id"]: f["properties"]["status"] for f in first["features"]}["B1"] == "free"
        parked_at = time.monotonic()
        park(pipeline, town, "B1", 1)
        changed = next(events)
        delay = time.monotonic() - parked_at
        assert [(f["id"], f["properties"]["status"]) for f in changed["features"]] == [
            ("B1", "grace")
        ]
        assert delay < 5, f"the map learnt of the car after {delay:.1f} s"


# --- zone by zone: what a change recomputes, and the clock's own changes ------------------


class Counted:
    """The live feed's compute, through the test's connection, remembering what it was
    asked: None for every zone, else the zone ids."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.asked: list[frozenset[int] | None] = []

    def __call__(self, now: datetime, zone_ids: Collection[int] | None) -> dict[int, ZonePart]:
        self.asked.append(None if zone_ids is None else frozenset(zone_ids))
        return feed.zone_parts(self.conn, now, zone_ids)


def _zone_ids(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT code, id FROM parking_zones").fetchall())


def _add_zone(conn: psycopg.Connection, settings: Settings, town: Town, code: str,
              bays: int) -> dict[str, str]:  # fmt: skip
    """A second zone of the town, regulated around the clock, with sensor-equipped bays."""
    places.create_zone(conn, cli_actor(), town.tenant_id,
                       ZoneCreate(code=code, name=code, hours=ALWAYS))  # type: ignore[arg-type]  # fmt: skip
    sensors = {}
    for number in range(1, bays + 1):
        dev_eui = f"70b3d5ee{town.tenant_id:02x}{number:06x}"
        devices.register(conn, settings, tenant_id=town.tenant_id, device=DeviceCreate(
            dev_eui=dev_eui, model=SENSOR_MODEL, name=f"Capteur {code}-{number}"))  # fmt: skip
        bay = f"{code}-{number}"
        places.create_bay(conn, cli_actor(), town.tenant_id, BayCreate(
            code=bay, zone=code, lat=45.9, lon=6.13 + number * 1e-5, sensor=dev_eui))  # fmt: skip
        sensors[bay] = dev_eui
    return sensors


@contextlib.contextmanager
def _listening(settings: Settings, live: LiveFeed) -> Iterator[None]:
    """The live feed's listener thread, on this test's database."""
    stop = StopSignal()
    thread = threading.Thread(target=_listen, args=(settings.database_url, live, stop))
    thread.start()
    listening = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'"
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as probe:
            while not probe.execute(listening).fetchone()[0]:  # type: ignore[index]
                time.sleep(0.02)
        yield
    finally:
        stop.set()
        thread.join(5)


def _recomputed(live: LiveFeed, tenant_id: int, compute: Counted) -> feed.Snapshot:
    """The snapshot once the feed has recomputed something (a notification arrived)."""
    before = len(compute.asked)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snapshot = live.get(tenant_id, compute)
        if len(compute.asked) > before:
            return snapshot
        time.sleep(0.02)
    raise AssertionError("no notification reached the live feed")


def _pay(conn: psycopg.Connection, town: Town, facts: dict[str, Any],
         occurred_at: datetime | None = None) -> None:  # fmt: skip
    """Apply an operator's facts of a session (a plate made from its id)."""
    with conn.transaction():
        sessions.merge(conn, tenant_id=town.tenant_id, source="provider", provider=PROVIDER,
                       facts=SessionFacts(plate=f"AB-{len(facts['id']):03d}-{facts['id'][-2:]}",
                                          **facts),
                       occurred_at=occurred_at or facts["started_at"])  # fmt: skip


def test_a_change_in_one_zone_recomputes_that_zone_only(
    conn: psycopg.Connection, settings: Settings, town: Town, pipeline: Pipeline
) -> None:
    z2_sensors = _add_zone(conn, settings, town, "Z2", bays=2)
    park(pipeline, town, "B1", 1)
    pipeline.submit(uplink(z2_sensors["Z2-1"], SENSOR_MODEL, {"occupied": 1}, datetime.now(UTC)))
    assert pipeline.wait_idle(30)
    zones = _zone_ids(conn)
    session = {"id": "s-z2", "zone": "Z2", "bay": "Z2-1", "started_at": datetime.now(UTC)}
    live, compute = LiveFeed(), Counted(conn)
    with _listening(settings, live):
        first = live.get(town.tenant_id, compute)
        assert compute.asked == [None]
        assert live.get(town.tenant_id, compute) is first  # nothing changed: shared
        park(pipeline, town, "B2", 1)
        parked = _recomputed(live, town.tenant_id, compute)
        _pay(conn, town, session)
        paid = _recomputed(live, town.tenant_id, compute)
        _pay(conn, town, {**session, "stopped_at": datetime.now(UTC)}, datetime.now(UTC))
        stopped = _recomputed(live, town.tenant_id, compute)
    assert compute.asked[1:] == [{zones["Z1"]}, {zones["Z2"]}, {zones["Z2"]}]
    assert parked.features["B2"]["properties"]["status"] == "grace"
    assert parked.parts[zones["Z2"]] is first.parts[zones["Z2"]]  # kept, not recomputed
    assert paid.features["Z2-1"]["properties"]["status"] == "paid"
    assert stopped.features["Z2-1"]["properties"]["status"] == "grace"
    assert stopped.parts[zones["Z1"]] is parked.parts[zones["Z1"]]
    assert set(stopped.features) == {"B1", "B2", "B3", "Z2-1", "Z2-2"}


def test_a_notification_without_zones_recomputes_every_zone(
    conn: psycopg.Connection, settings: Settings, town: Town
) -> None:
    _add_zone(conn, settings, town, "Z2", bays=1)
    live, compute = LiveFeed(), Counted(conn)
    with _listening(settings, live):
        first = live.get(town.tenant_id, compute)
        conn.execute("UPDATE devices SET status = 'active'")  # a change nobody announced
        conn.execute("SELECT pg_notify(%s, %s)", (changes.CHANNEL, str(town.tenant_id)))
        again = _recomputed(live, town.tenant_id, compute)
    assert compute.asked == [None, None]
    assert {p["properties"]["status"] for p in first.features.values()} == {"unknown"}
    assert {p["properties"]["status"] for p in again.features.values()} == {"free"}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_grace_ends_in_the_feed_at_its_instant_without_any_event(
    conn: psycopg.Connection, settings: Settings, town: Town, pipeline: Pipeline
) -> None:
    _add_zone(conn, settings, town, "Z2", bays=1)
    arrived = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=4)
    pipeline.submit(uplink(town.sensors["B1"], SENSOR_MODEL, {"occupied": 1}, arrived))
    assert pipeline.wait_idle(30)
    grace_ends = arrived + timedelta(minutes=10)  # the zone's 10 grace minutes
    clock = Clock(arrived + timedelta(minutes=5))
    live, compute = LiveFeed(clock=clock, max_age=timedelta(hours=1)), Counted(conn)

    def b1() -> dict[str, Any]:
        return live.get(town.tenant_id, compute).features["B1"]["properties"]  # type: ignore[no-any-return]

    assert b1()["status"] == "grace"
    assert live.seconds_to_due(town.tenant_id) == pytest.approx(300.001)
    clock.now = grace_ends - timedelta(milliseconds=1)
    assert b1()["status"] == "grace"
    assert compute.asked == [None]  # not due yet: nothing recomputed
    clock.now = grace_ends + CLOCK_STEP
    after = b1()
    assert after["status"] == "unpaid" and datetime.fromisoformat(after["since"]) == grace_ends
    assert compute.asked == [None, frozenset({_zone_ids(conn)["Z1"]})]


def test_an_unannounced_change_shows_within_the_safety_age(
    conn: psycopg.Connection, settings: Settings, town: Town
) -> None:
    clock = Clock(datetime.now(UTC))
    live, compute = LiveFeed(clock=clock), Counted(conn)
    assert live.get(town.tenant_id, compute).features["B1"]["properties"]["status"] == "unknown"
    conn.execute("UPDATE devices SET status = 'active'")  # e.g. devices' own job, no NOTIFY
    clock.now += live.max_age
    assert live.get(town.tenant_id, compute).features["B1"]["properties"]["status"] == "free"


def test_the_feed_kept_zone_by_zone_equals_a_full_recompute(
    conn: psycopg.Connection, settings: Settings, town: Town, pipeline: Pipeline
) -> None:
    """Random sensor events, payments, stops, zone and bay edits and clock jumps; after each,
    the feed kept from the changes' notifications (zones recomputed when announced or due,
    no safety net) is what computing every zone from scratch gives."""
    sensors = {**town.sensors, **_add_zone(conn, settings, town, "Z2", bays=3)}
    places.update_zone(conn, cli_actor(), town.tenant_id, "Z2",
                       ZoneUpdate(hours=RegulatedHours.typical()))  # fmt: skip
    rng = random.Random(11)
    clock = Clock(datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Paris")))
    live, compute = LiveFeed(clock=clock, max_age=timedelta(days=30)), Counted(conn)
    zone_of = {bay: "Z2" if bay.startswith("Z2") else "Z1" for bay in sensors}
    paid: list[dict[str, Any]] = []  # the facts of each session
    actions = ("sensor", "sensor", "pay", "pay", "stop", "clock", "clock", "grace", "move",
               "active")  # fmt: skip

    def act(step: int) -> str:
        action = rng.choice(actions)
        bay = rng.choice(sorted(sensors))
        minutes = timedelta(minutes=rng.uniform(0, 20))
        ahead = timedelta(minutes=2)  # sensor and operator clocks drift: some facts come early
        if action == "sensor":
            at = clock.now + rng.choice([-minutes / 10, -minutes / 10, ahead])
            pipeline.submit(uplink(sensors[bay], SENSOR_MODEL, {"occupied": rng.randint(0, 1)},
                                   at))  # fmt: skip
            assert pipeline.wait_idle(30)
        elif action == "pay":
            paid.append({"id": f"s{step}", "zone": zone_of[bay], "bay": rng.choice([bay, None]),
                         "started_at": clock.now - rng.choice([minutes / 4, -ahead])})  # fmt: skip
            if rng.random() < 0.7:
                paid[-1]["ends_at"] = max(clock.now, paid[-1]["started_at"]) + minutes
            _pay(conn, town, paid[-1])
        elif action == "stop" and paid:
            facts = rng.choice(paid)
            stop = max(clock.now, facts["started_at"])
            try:
                _pay(conn, town, {**facts, "stopped_at": stop}, stop)
            except sessions.Refused:  # its bay has moved to the other zone since
                return "skipped"
        elif action == "clock":
            clock.now += rng.choice([minutes, minutes / 10])
        elif action == "grace":
            places.update_zone(conn, cli_actor(), town.tenant_id, zone_of[bay],
                               ZoneUpdate(grace_minutes=rng.choice([0, 5, 10])))  # fmt: skip
        elif action == "move":
            zone_of[bay] = "Z1" if zone_of[bay] == "Z2" else "Z2"
            places.update_bay(conn, cli_actor(), town.tenant_id, bay, BayUpdate(zone=zone_of[bay]))
        elif action == "active":
            active = not conn.execute("SELECT active FROM parking_zones WHERE code = 'Z2'"
                                      ).fetchone()[0]  # type: ignore[index]  # fmt: skip
            places.update_zone(conn, cli_actor(), town.tenant_id, "Z2", ZoneUpdate(active=active))
        else:
            return "skipped"
        return action

    seen: set[str] = set()
    done: Counter[str] = Counter()
    with psycopg.connect(settings.database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {changes.CHANNEL}")
        live.get(town.tenant_id, compute)
        for step in range(150):
            action = act(step)
            done[action] += 1
            conn.execute("SELECT pg_notify(%s, %s)", (changes.CHANNEL, f"done {step}"))
            for note in listener.notifies(timeout=10):  # in commit order: ours comes last
                if note.payload == f"done {step}":
                    break
                change = changes.parse(note.payload)
                assert change is not None and change[1] is not None, note.payload
                live.bump(*change)
            kept = live.get(town.tenant_id, compute)
            full = feed.snapshot(conn, clock.now)
            assert (kept.features, kept.plates, kept.zones) == (
                full.features, full.plates, full.zones), f"after step {step}: {action}"  # fmt: skip
            seen |= {f["properties"]["status"] for f in full.features.values()}
    assert seen >= set(STATUSES) - {"unverified"}, seen  # the walk went through them
    assert all(done[action] >= 3 for action in actions), done
    assert any(asked is not None and len(asked) == 1 for asked in compute.asked)


def test_events_show_the_end_of_grace_when_it_comes(
    conn: psycopg.Connection, settings: Settings, town: Town, keys: dict[str, dict[str, str]],
    pipeline: Pipeline,
) -> None:  # fmt: skip
    places.update_zone(conn, cli_actor(), town.tenant_id, "Z1", ZoneUpdate(grace_minutes=1))
    arrived = datetime.now(UTC) - timedelta(seconds=56)
    pipeline.submit(uplink(town.sensors["B1"], SENSOR_MODEL, {"occupied": 1}, arrived))
    assert pipeline.wait_idle(30)
    with (
        served(settings) as base,
        httpx.Client(base_url=base, headers=keys["agent"], timeout=20) as client,
        client.stream("GET", "/api/v1/parking/bays/events") as response,
    ):
        events = bay_events(response)
        first = next(events)
        assert {f["id"]: f["properties"]["status"] for f in first["features"]}["B1"] == "grace"
        flipped = next(events)  # nothing was written meanwhile: the clock alone
        late = datetime.now(UTC) - (arrived + timedelta(minutes=1))
    assert [(f["id"], f["properties"]["status"]) for f in flipped["features"]] == [("B1", "unpaid")]
    assert late < timedelta(seconds=1), f"the end of grace reached the map {late} late"


def test_the_catch_up_job_announces_only_the_stays_it_repairs(
    conn: psycopg.Connection, settings: Settings, town: Town, pipeline: Pipeline
) -> None:
    """The job rebuilds, each minute, every bay whose sensor has only said `free`; the feed
    must not recompute their zones each time, only when a lost update is repaired."""
    park(pipeline, town, "B1", 0)  # free, and stays so: rebuilt by every catch-up
    unsubscribed = Pipeline(settings.database_url, EventBus())  # a subscriber call lost
    unsubscribed.start()
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {changes.CHANNEL}")
            assert occupancy_sync.catch_up(conn) == set()
            assert list(listener.notifies(timeout=0.5)) == []
            unsubscribed.submit(uplink(town.sensors["B2"], SENSOR_MODEL, {"occupied": 1},
                                       datetime.now(UTC)))  # fmt: skip
            assert unsubscribed.wait_idle(30)
            assert occupancy_sync.catch_up(conn) == {town.tenant_id}
            notes = [note.payload for note in listener.notifies(timeout=0.5)]
    finally:
        unsubscribed.stop()
    assert notes == [f"{town.tenant_id}:{_zone_ids(conn)['Z1']}"]


def test_only_sensors_that_said_something_new_are_stale(
    conn: psycopg.Connection, settings: Settings, town: Town, pipeline: Pipeline
) -> None:
    """A quiet bay's repeated `free` and a parked car's heartbeats change no stay: the
    catch-up job must leave those bays alone (it locks what it rebuilds)."""
    now = datetime.now(UTC)
    for minutes, value in ((30, 1), (20, 1), (10, 1)):  # B1: a car and its heartbeats
        pipeline.submit(uplink(town.sensors["B1"], SENSOR_MODEL, {"occupied": value},
                               now - timedelta(minutes=minutes)))  # fmt: skip
    for minutes in (30, 20):  # B2: free, and free again
        pipeline.submit(uplink(town.sensors["B2"], SENSOR_MODEL, {"occupied": 0},
                               now - timedelta(minutes=minutes)))  # fmt: skip
    assert pipeline.wait_idle(30)
    assert occupancy_sync.stale_sensors(conn) == {}
    unsubscribed = Pipeline(settings.database_url, EventBus())  # subscriber calls lost
    unsubscribed.start()
    try:
        for name, value in (("B1", 0), ("B2", 1)):  # the car left, another one came
            unsubscribed.submit(uplink(town.sensors[name], SENSOR_MODEL, {"occupied": value},
                                       now - timedelta(minutes=5)))  # fmt: skip
        assert unsubscribed.wait_idle(30)
    finally:
        unsubscribed.stop()
    stale = occupancy_sync.stale_sensors(conn)
    sensors = dict(conn.execute("SELECT dev_eui, id FROM devices").fetchall())
    assert set(stale) == {sensors[town.sensors["B1"]], sensors[town.sensors["B2"]]}
