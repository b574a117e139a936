"""Each bay's status at given instants, from real rows: sensor readings through the ingest
pipeline (ChirpStack events, occupancy rebuilt by the parking subscriber) and payment
sessions through the operators' signed webhook. Zone Z1: Mon–Sat 09–12 and 14–19
Europe/Paris, 10 grace minutes, 3 hours at most. Times below are local."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from ingest.pipeline import Pipeline
from parking import feed
from tests.kit.parking import SENSOR_MODEL, Town, parking_town, post_event
from tests.kit.uplinks import uplink

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 11, 23)
ARMISTICE = date(2026, 11, 11)  # a Wednesday, public holiday


def at(clock: str, day: date = MONDAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), PARIS)


@dataclass(frozen=True)
class Scenario:
    name: str
    readings: list[tuple[str, int, str]]  # (bay, occupied, local time), in arrival order
    sessions: list[dict[str, Any]] = field(default_factory=list)  # webhook events
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (time, bay, status)
    silent: tuple[str, ...] = ()  # bays whose sensor went silent
    day: date = MONDAY
    unpaid_count: tuple[str, int] | None = None  # (time, zone's unpaid count)


_ids = iter(range(1, 10_000))


def event(kind: str, session: str, *, occurred: str, bay: str | None = None,
          started: str, ends: str | None = None, stopped: str | None = None,
          day: date = MONDAY) -> dict[str, Any]:  # fmt: skip
    """A webhook event of `session` (plate derived from its id)."""
    facts: dict[str, Any] = {
        "id": session, "plate": f"AB-{100 + int(session[1:]):03d}-CD", "zone": "Z1",
        "started_at": at(started, day).isoformat(),
    }  # fmt: skip
    if bay:
        facts["bay"] = bay
    if ends:
        facts["ends_at"] = at(ends, day).isoformat()
    if stopped:
        facts["stopped_at"] = at(stopped, day).isoformat()
    return {"event_id": f"e{next(_ids)}", "type": f"session.{kind}", "tenant": "annecy",
            "occurred_at": at(occurred, day).isoformat(), "session": facts}  # fmt: skip


SCENARIOS = [
    Scenario(
        "session started before arrival",
        readings=[("B1", 1, "10:03")],
        sessions=[event("started", "s1", occurred="10:00", bay="B1", started="10:00",
                        ends="11:00")],
        checks=[("10:05", "B1", "paid"), ("10:59", "B1", "paid"), ("11:01", "B1", "overstay")],
    ),
    Scenario(
        "grace, then unpaid when it expires",
        readings=[("B1", 1, "10:00"), ("B2", 0, "09:30")],
        checks=[("10:09", "B1", "grace"), ("10:11", "B1", "unpaid"), ("10:11", "B2", "free"),
                ("10:11", "B3", "unknown")],  # B3's sensor was never heard
    ),
    Scenario(
        "an extension keeps the bay paid",
        readings=[("B1", 1, "10:00")],
        sessions=[
            event("started", "s2", occurred="10:02", bay="B1", started="10:02", ends="10:30"),
            event("extended", "s2", occurred="10:25", bay="B1", started="10:02", ends="11:30"),
        ],
        checks=[("10:20", "B1", "paid"), ("10:45", "B1", "paid"), ("11:31", "B1", "overstay")],
    ),
    Scenario(
        "overstay beyond the zone's maximum although paid",
        readings=[("B1", 1, "09:00")],
        sessions=[event("started", "s3", occurred="09:01", bay="B1", started="09:01")],
        checks=[("11:59", "B1", "paid"), ("12:30", "B1", "unregulated"),
                ("14:05", "B1", "overstay")],
    ),
    Scenario(
        "zone-level session matched to the car that arrived just before it",
        readings=[("B1", 1, "10:00"), ("B2", 1, "10:01"), ("B3", 1, "10:20")],
        sessions=[event("started", "s4", occurred="10:21", started="10:21", ends="11:21")],
        checks=[("10:30", "B3", "paid"), ("10:30", "B1", "unpaid"), ("10:30", "B2", "unpaid")],
        unpaid_count=("10:30", 2),
    ),
    Scenario(
        "more cars than zone-level sessions, ambiguous: check plates",
        readings=[("B1", 1, "10:00"), ("B2", 1, "10:01")],
        sessions=[event("started", "s5", occurred="10:02", started="10:02", ends="11:00")],
        checks=[("10:30", "B1", "unverified"), ("10:30", "B2", "unverified")],
        unpaid_count=("10:30", 1),
    ),
    Scenario(
        "two cars in a bay between two uplinks (the departure arrives late)",
        readings=[("B1", 1, "10:00"), ("B1", 1, "10:22"), ("B1", 0, "10:20")],
        sessions=[event("stopped", "s6", occurred="10:21", bay="B1", started="10:01",
                        stopped="10:21")],
        checks=[("10:15", "B1", "paid"), ("10:25", "B1", "grace"), ("10:33", "B1", "unpaid")],
    ),
    Scenario(
        "stop before start: out-of-order events still give the stopped session",
        readings=[("B1", 1, "10:00")],
        sessions=[
            event("stopped", "s7", occurred="10:40", bay="B1", started="10:05",
                  stopped="10:40"),
            event("started", "s7", occurred="10:05", bay="B1", started="10:05"),
        ],
        checks=[("10:30", "B1", "paid"), ("10:45", "B1", "unpaid")],
    ),
    Scenario(
        "a silent sensor makes its bay unknown",
        readings=[("B1", 1, "10:00"), ("B2", 1, "10:00")],
        silent=("B1",),
        checks=[("10:30", "B1", "unknown"), ("10:30", "B2", "unpaid")],
    ),
    Scenario(
        "end of regulated hours",
        readings=[("B1", 1, "18:30")],
        checks=[("18:39", "B1", "grace"), ("18:45", "B1", "unpaid"),
                ("19:05", "B1", "unregulated")],
    ),
    Scenario(
        "a public holiday is free",
        readings=[("B1", 1, "10:00")],
        day=ARMISTICE,
        checks=[("10:30", "B1", "unregulated")],
    ),
]  # fmt: skip


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    return parking_town(conn, settings)


@pytest.fixture
def client(settings: Settings, town: Town) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_bay_status(
    scenario: Scenario,
    town: Town,
    conn: psycopg.Connection,
    client: TestClient,
    pipeline: Pipeline,
) -> None:
    for bay, occupied, clock in scenario.readings:
        reading = {"occupied": occupied}
        pipeline.submit(uplink(town.sensors[bay], SENSOR_MODEL, reading, at(clock, scenario.day)))
        assert pipeline.wait_idle(30)  # one batch each: late readings really come late
    for webhook in scenario.sessions:
        response = post_event(client, webhook)
        assert response.status_code == 200, response.text
    for bay in scenario.silent:
        conn.execute("UPDATE devices SET status = 'silent' WHERE dev_eui = %s",
                     (town.sensors[bay],))  # fmt: skip
    conn.commit()
    seen = []
    for clock, bay, _ in scenario.checks:
        snapshot = feed.snapshot(conn, at(clock, scenario.day))
        seen.append((clock, bay, snapshot.features[bay]["properties"]["status"]))
    assert seen == scenario.checks
    if scenario.unpaid_count:
        clock, count = scenario.unpaid_count
        assert feed.snapshot(conn, at(clock, scenario.day)).zones["Z1"].unpaid_count == count
