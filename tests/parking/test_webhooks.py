"""Operators' signed webhooks: what is refused, what is idempotent, what arrives out of order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from tests.kit.parking import PROVIDER, Town, parking_town, post_event, signed_headers

URL = f"/api/v1/parking/providers/{PROVIDER}/events"


def _event(event_id: str, kind: str = "started", **session: Any) -> dict[str, Any]:
    facts = {"id": "pm-1", "plate": "ab 123 cd", "zone": "Z1", "bay": "B1",
             "started_at": "2026-11-23T10:00:00+01:00", **session}  # fmt: skip
    return {"event_id": event_id, "type": f"session.{kind}", "tenant": "annecy",
            "occurred_at": "2026-11-23T10:00:00+01:00", "session": facts}  # fmt: skip


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    return parking_town(conn, settings, bays=1)


@pytest.fixture
def client(settings: Settings, town: Town) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _sessions(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    conn.commit()
    return conn.execute(
        "SELECT external_id, plate, started_at IS NOT NULL, ends_at IS NOT NULL,"
        " stopped_at IS NOT NULL, amount FROM parking_sessions ORDER BY id"
    ).fetchall()


def _refusals(conn: psycopg.Connection) -> list[str]:
    conn.commit()
    rows = conn.execute(
        "SELECT details->>'reason' FROM audit_log WHERE action = 'parking.webhook'"
        " AND outcome = 'denied' ORDER BY id"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_signed_event_creates_the_session_with_a_normalised_plate(
    client: TestClient, conn: psycopg.Connection
) -> None:
    response = post_event(client, _event("e1"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "created"
    assert _sessions(conn) == [("pm-1", "AB-123-CD", True, False, False, None)]


@pytest.mark.parametrize(
    ("signing", "reason"),
    [
        ({"secret": "not the operator's secret"}, "signature does not match"),
        ({"at": -400}, "stale request"),  # seconds from now, when the test runs
        ({"at": +400}, "stale request"),
    ],
    ids=["bad signature", "stale timestamp", "timestamp from the future"],
)
def test_refused_events_change_nothing_and_are_audited(
    client: TestClient, conn: psycopg.Connection, signing: dict[str, Any], reason: str
) -> None:
    if "at" in signing:
        signing = {"at": int(time.time()) + signing["at"]}
    response = post_event(client, _event("e1"), **signing)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert _sessions(conn) == []
    assert len(_refusals(conn)) == 1 and reason in _refusals(conn)[0]


def test_unsigned_and_unknown_operator_are_refused(client: TestClient) -> None:
    body = json.dumps(_event("e1")).encode()
    unsigned = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
    other = client.post("/api/v1/parking/providers/flowbird/events", content=body,
                        headers=signed_headers(body))  # fmt: skip
    assert other.status_code == 401


def test_a_replayed_request_is_refused(client: TestClient, conn: psycopg.Connection) -> None:
    body = json.dumps(_event("e1")).encode()
    headers = signed_headers(body)
    assert client.post(URL, content=body, headers=headers).status_code == 200
    replay = client.post(URL, content=body, headers=headers)
    assert replay.status_code == 409 and "replay" in replay.json()["detail"]
    assert len(_sessions(conn)) == 1


def test_the_same_event_id_resent_changes_nothing(
    client: TestClient, conn: psycopg.Connection
) -> None:
    assert post_event(client, _event("e1")).json()["status"] == "created"
    before = _sessions(conn)
    changed = _event("e1", ends_at="2026-11-23T12:00:00+01:00")  # same id, other content
    again = post_event(client, changed, at=int(time.time()) + 1)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert _sessions(conn) == before


def test_stop_before_start_gives_a_stopped_session(
    client: TestClient, conn: psycopg.Connection
) -> None:
    stop = _event("e2", "stopped", stopped_at="2026-11-23T11:00:00+01:00", amount="2.50")
    stop["occurred_at"] = "2026-11-23T11:00:00+01:00"
    assert post_event(client, stop).json()["status"] == "created"
    late_start = _event("e1", ends_at="2026-11-23T12:00:00+01:00")
    assert post_event(client, late_start).json()["status"] == "updated"  # fills ends_at only
    rows = _sessions(conn)
    assert len(rows) == 1
    _, _, _, has_end, stopped, amount = rows[0]
    assert stopped and has_end and str(amount) == "2.50"


def test_an_extension_after_the_stop_does_not_reopen_or_reprice(
    client: TestClient, conn: psycopg.Connection
) -> None:
    post_event(client, _event("e1", ends_at="2026-11-23T10:30:00+01:00"))
    stop = _event("e3", "stopped", stopped_at="2026-11-23T10:40:00+01:00", amount="1.00",
                  ends_at="2026-11-23T10:30:00+01:00")  # fmt: skip
    stop["occurred_at"] = "2026-11-23T10:40:00+01:00"
    post_event(client, stop)
    extension = _event("e2", "extended", ends_at="2026-11-23T11:00:00+01:00", amount="1.50")
    extension["occurred_at"] = "2026-11-23T10:20:00+01:00"
    assert post_event(client, extension).json()["status"] == "unchanged"
    assert [r[4:] for r in _sessions(conn)] == [(True, pytest.approx(1))]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"zone": "Z9"}, "unknown zone"),
        ({"bay": "B7"}, "no bay"),
        ({"plate": "#"}, "plate"),
    ],
)
def test_events_naming_unknown_places_or_bad_plates_are_422(
    client: TestClient, conn: psycopg.Connection, change: dict[str, str], detail: str
) -> None:
    response = post_event(client, _event("e1", **change))
    assert response.status_code == 422 and detail in str(response.json()["detail"])
    assert _sessions(conn) == []
    assert post_event(client, _event("e1")).status_code == 200  # the id was not burnt
