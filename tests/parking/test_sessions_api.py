"""The built-in session API, pay-station batches, plate checks and enforcement actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core import hours
from core.app import create_app
from core.settings import Settings
from parking import tariffs
from tests.kit.identity import add_api_key, bearer
from tests.kit.parking import ALWAYS, Town, parking_town


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    return parking_town(conn, settings, bays=2, zone={"hours": ALWAYS})


@pytest.fixture
def client(settings: Settings, town: Town) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def seller(conn: psycopg.Connection, town: Town) -> dict[str, str]:
    """The town's own payment service: an API key allowed to sell sessions."""
    key = add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:sessions"])
    conn.commit()
    return bearer(key)


@pytest.fixture
def agent(conn: psycopg.Connection, town: Town) -> dict[str, str]:
    key = add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:enforce"])
    conn.commit()
    return bearer(key)


def _start(client: TestClient, seller: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/parking/sessions", headers=seller,
                           json={"plate": "gh-456-jk", "zone": "Z1", **body})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_start_with_a_duration_then_extend(client: TestClient, seller: dict[str, str]) -> None:
    session = _start(client, seller, duration_minutes=30, bay="B1")
    started = datetime.fromisoformat(session["started_at"])
    assert session["plate"] == "GH-456-JK" and session["bay"] == "B1"
    assert datetime.fromisoformat(session["ends_at"]) - started == timedelta(minutes=30)
    extended = client.post(f"/api/v1/parking/sessions/{session['id']}/extend", headers=seller,
                           json={"minutes": 15}).json()  # fmt: skip
    assert datetime.fromisoformat(extended["ends_at"]) - started == timedelta(minutes=45)


def test_stop_charges_the_zone_tariff_for_the_time_parked(
    client: TestClient, seller: dict[str, str], conn: psycopg.Connection
) -> None:
    session = _start(client, seller)
    # the driver parked 47 minutes ago: move the start back, as if it had been started then
    conn.execute("UPDATE parking_sessions SET started_at = started_at - interval '47 minutes'")
    conn.commit()
    stopped = client.post(f"/api/v1/parking/sessions/{session['id']}/stop", headers=seller)
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    parked = datetime.fromisoformat(body["stopped_at"]) - datetime.fromisoformat(body["started_at"])
    expected = tariffs.amount_due(tariffs.Tariff.example(), parked.total_seconds() / 60)
    assert Decimal(body["amount"]) == expected == Decimal("2.00")  # 4 quarters at 0.50
    again = client.post(f"/api/v1/parking/sessions/{session['id']}/stop", headers=seller)
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"zone": "Z9"}, 422),
        ({"bay": "B9"}, 422),
        ({"duration_minutes": 181}, 422),  # the zone's maximum is 3 hours
        ({"plate": ""}, 422),
    ],
)
def test_start_refusals(
    client: TestClient, seller: dict[str, str], body: dict[str, Any], status: int
) -> None:
    response = client.post("/api/v1/parking/sessions", headers=seller,
                           json={"plate": "GH-456-JK", "zone": "Z1", **body})  # fmt: skip
    assert response.status_code == status, response.text


def _batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"station": "horodateur-12", "batch_id": "2026-11-23-001", "sessions": items}


def test_a_pay_station_batch_is_accepted_once(
    client: TestClient, seller: dict[str, str], conn: psycopg.Connection
) -> None:
    items = [
        {"id": "t1", "plate": "AA-111-AA", "zone": "Z1", "started_at": "2026-11-23T08:10:00Z",
         "ends_at": "2026-11-23T09:10:00Z", "amount": "2.00"},
        {"id": "t2", "plate": "BB-222-BB", "zone": "NOPE", "started_at": "2026-11-23T08:20:00Z"},
        {"id": "t3", "plate": "CC 333 CC", "zone": "Z1", "bay": "B2",
         "started_at": "2026-11-23T08:30:00Z", "ends_at": "2026-11-23T08:45:00Z",
         "amount": "0.50"},
    ]  # fmt: skip
    first = client.post("/api/v1/parking/sessions/batches", headers=seller, json=_batch(items))
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["accepted"], report["rejected"], report["replayed"]) == (2, 1, False)
    assert report["items"][1]["status"] == "rejected" and "NOPE" in report["items"][1]["reason"]
    count = conn.execute("SELECT count(*), sum(amount) FROM parking_sessions").fetchone()
    again = client.post("/api/v1/parking/sessions/batches", headers=seller, json=_batch(items))
    assert again.json() == {**report, "replayed": True}
    assert conn.execute("SELECT count(*), sum(amount) FROM parking_sessions").fetchone() == count
    assert count == (2, Decimal("2.50"))


def test_plate_check_is_paid_until_and_audited(
    client: TestClient, seller: dict[str, str], agent: dict[str, str], conn: psycopg.Connection
) -> None:
    session = _start(client, seller, duration_minutes=60)
    check = client.get("/api/v1/parking/enforcement/plates/GH456JK", headers=agent)
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["paid"] is True and body["zone"] == "Z1"
    assert datetime.fromisoformat(body["until"]) == datetime.fromisoformat(session["ends_at"])
    unpaid = client.get("/api/v1/parking/enforcement/plates/ZZ-999-ZZ?zone=Z1", headers=agent)
    assert unpaid.json()["paid"] is False and unpaid.json()["sessions"] == []
    conn.commit()
    audited = conn.execute(
        "SELECT target FROM audit_log WHERE action = 'parking.plate_check' ORDER BY id"
    ).fetchall()
    assert audited == [("GH-456-JK",), ("ZZ-999-ZZ",)]
    refused = client.get("/api/v1/parking/enforcement/plates/GH456JK", headers=seller)
    assert refused.status_code == 403


def test_an_fps_is_recorded_with_the_bay_status_seen(
    client: TestClient, agent: dict[str, str]
) -> None:
    fps = {"kind": "fps", "bay": "B1", "plate": "ab-123-cd", "amount": "35.00"}
    created = client.post("/api/v1/parking/enforcement/actions", headers=agent, json=fps)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["plate"], body["zone"], body["bay_status"]) == ("AB-123-CD", "Z1", "unknown")
    listed = client.get("/api/v1/parking/enforcement/actions", headers=agent).json()
    assert [a["id"] for a in listed] == [body["id"]]
    no_amount = client.post("/api/v1/parking/enforcement/actions", headers=agent,
                            json={"kind": "fps", "bay": "B1"})  # fmt: skip
    assert no_amount.status_code == 422


def test_paid_end_of_a_duration_skips_unregulated_time() -> None:
    """The built-in API counts paid minutes in regulated time (lunch pause not charged)."""
    typical = hours.RegulatedHours.typical()
    start = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # 11:30 in Paris
    assert hours.add_regulated(typical, start, 3600) == datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
