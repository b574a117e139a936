"""Reports: the daily reconciliation (JSON, CSV, PDF), zones without payments, occupancy
per hour, and the e-mail to the town's recipients through a real SMTP server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.app import API_PREFIX, create_app
from core.audit import cli_actor
from core.settings import Settings
from parking import places, report_mail, reports
from parking.models import ZoneCreate
from tests.kit.identity import add_api_key, bearer
from tests.kit.parking import ALWAYS, Town, parking_town, post_event
from tests.kit.smtp import smtp_server

DAY = date(2026, 11, 16)  # a past Monday; Europe/Paris is UTC+1 then
REPORTS = f"{API_PREFIX}/parking/reports"


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    made = parking_town(conn, settings, bays=2, zone={"hours": ALWAYS})
    places.create_zone(conn, cli_actor(), made.tenant_id,
                       ZoneCreate(code="Z2", name="Gare", hours=ALWAYS))  # fmt: skip
    return made


@pytest.fixture
def client(settings: Settings, town: Town) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin(conn: psycopg.Connection, town: Town) -> dict[str, str]:
    return bearer(add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:manage"]))


@pytest.fixture
def seller(conn: psycopg.Connection, town: Town) -> dict[str, str]:
    return bearer(add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:sessions"]))


def _stopped(event_id: str, session_id: str, zone: str, start: str, stop: str, amount: str,
             service: str, bay: str | None = None) -> dict[str, Any]:  # fmt: skip
    facts = {"id": session_id, "plate": "AB-123-CD", "zone": zone, "bay": bay,
             "started_at": start, "stopped_at": stop, "amount": amount,
             "service_amount": service}  # fmt: skip
    return {"event_id": event_id, "type": "session.stopped", "tenant": "annecy",
            "occurred_at": stop, "session": facts}  # fmt: skip


def _day_sessions(client: TestClient, seller: dict[str, str]) -> None:
    """Sessions around DAY: six end on it (local time), three do not."""
    events = [  # operator paymobile, stopped
        _stopped("e1", "pm-1", "Z1", "2026-11-16T09:00:00+01:00", "2026-11-16T10:00:00+01:00",
                 "2.50", "0.35", bay="B1"),
        _stopped("e2", "pm-2", "Z2", "2026-11-15T22:30:00+01:00", "2026-11-16T00:30:00+01:00",
                 "3.00", "0.35"),  # started the day before: counts on its stop day
        _stopped("e3", "pm-3", "Z1", "2026-11-16T23:00:00+01:00", "2026-11-17T01:00:00+01:00",
                 "4.00", "0.35"),  # stopped the next day: not in
    ]  # fmt: skip
    for event in events:
        assert post_event(client, event).status_code == 200
    batches = {
        "horodateur-12": [
            {"id": "t1", "plate": "AA-111-AA", "zone": "Z1", "started_at": "2026-11-16T07:10:00Z",
             "ends_at": "2026-11-16T08:10:00Z", "amount": "2.00"},
            {"id": "t2", "plate": "BB-222-BB", "zone": "Z2", "started_at": "2026-11-16T10:00:00Z",
             "ends_at": "2026-11-16T10:15:00Z", "amount": "0.50"},
            {"id": "t3", "plate": "CC-333-CC", "zone": "Z1", "started_at": "2026-11-15T21:00:00Z",
             "ends_at": "2026-11-15T22:59:00Z", "amount": "1.00"},  # 23:59 local, the 15th
            {"id": "t4", "plate": "DD-444-DD", "zone": "Z1", "started_at": "2026-11-16T22:30:00Z",
             "ends_at": "2026-11-16T23:30:00Z", "amount": "2.00"},  # 00:30 local, the 17th
        ],
        "horodateur-7": [
            {"id": "u1", "plate": "EE-555-EE", "zone": "Z2", "started_at": "2026-11-16T13:00:00Z",
             "ends_at": "2026-11-16T15:00:00Z", "amount": "4.00"},
            {"id": "u2", "plate": "FF-666-FF", "zone": "Z2", "started_at": "2026-11-16T14:00:00Z",
             "ends_at": "2026-11-16T14:30:00Z"},  # no amount given
        ],
    }  # fmt: skip
    for station, items in batches.items():
        body = {"station": station, "batch_id": "b1", "sessions": items}
        response = client.post(f"{API_PREFIX}/parking/sessions/batches", headers=seller, json=body)
        assert response.json()["accepted"] == len(items), response.text


EXPECTED = {"sessions": 6, "minutes": 60 + 120 + 60 + 15 + 120 + 30, "amount": "12.00",
            "service_amount": "0.70", "total": "12.70", "unpriced": 1}  # fmt: skip


def test_reconciliation_totals_are_the_sums_of_the_days_sessions(
    client: TestClient, admin: dict[str, str], seller: dict[str, str]
) -> None:
    _day_sessions(client, seller)
    response = client.get(f"{REPORTS}/reconciliation?day={DAY}", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    total = body["total"]
    assert {k: total[k] for k in EXPECTED} == EXPECTED
    assert sorted(s["external_id"] for s in body["sessions"]) == [
        "pm-1", "pm-2", "t1", "t2", "u1", "u2"]  # fmt: skip
    groups = {(g["source"], g["provider"], g["zone"]): g for g in body["lines"]}
    assert set(groups) == {("provider", "paymobile", "Z1"), ("provider", "paymobile", "Z2"),
                           ("pay_station", "horodateur-12", "Z1"),
                           ("pay_station", "horodateur-12", "Z2"),
                           ("pay_station", "horodateur-7", "Z2")}  # fmt: skip
    assert groups[("pay_station", "horodateur-7", "Z2")]["amount"] == "4.00"
    for column in ("amount", "service_amount", "total"):
        assert sum(Decimal(g[column]) for g in body["lines"]) == Decimal(total[column])
    assert sum(g["sessions"] for g in body["lines"]) == total["sessions"]
    assert "AB-123-CD" not in response.text  # plates stay out of reports


def _csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheets
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def _euros(text: str) -> Decimal:
    return Decimal(text.replace(",", ".")) if text else Decimal(0)


def test_csv_and_pdf_downloads(
    client: TestClient, admin: dict[str, str], seller: dict[str, str]
) -> None:
    _day_sessions(client, seller)
    response = client.get(f"{REPORTS}/reconciliation?day={DAY}&format=csv", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "rapprochement-2026-11-16.csv" in response.headers["content-disposition"]
    rows = _csv_rows(response.content)
    detail = [r for r in rows if r["ligne"] == "session"]
    [total] = [r for r in rows if r["ligne"] == "total"]
    assert len(detail) == int(total["sessions"]) == EXPECTED["sessions"]
    for column in ("montant public (EUR)", "services (EUR)", "total (EUR)"):
        assert sum(_euros(r[column]) for r in detail) == _euros(total[column])
    assert total["total (EUR)"] == "12,70"
    assert sum(int(r["minutes"]) for r in detail) == int(total["minutes"]) == EXPECTED["minutes"]
    pm1 = next(r for r in detail if r["référence"] == "pm-1")
    assert pm1["début"] == "16/11/2026 09:00:00" and pm1["place"] == "B1"

    pdf = client.get(f"{REPORTS}/reconciliation?day={DAY}&format=pdf", headers=admin)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert len(pdf.content) > 1000


def test_reports_need_the_manage_permission(
    client: TestClient, conn: psycopg.Connection, town: Town
) -> None:
    viewer = bearer(add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:read"]))
    for path in ("reconciliation", "stale-zones", "occupancy", "recipients"):
        assert client.get(f"{REPORTS}/{path}", headers=viewer).status_code == 403
        assert client.get(f"{REPORTS}/{path}").status_code == 401


def test_stale_zones_are_flagged(
    client: TestClient, admin: dict[str, str], seller: dict[str, str], conn: psycopg.Connection,
    town: Town,
) -> None:  # fmt: skip
    places.create_zone(conn, cli_actor(), town.tenant_id, ZoneCreate(code="Z3", name="Port"))
    places.create_zone(conn, cli_actor(), town.tenant_id, ZoneCreate(code="Z4", name="Neuve"))
    conn.execute("UPDATE parking_zones SET created_at = now() - interval '20 days'"
                 " WHERE code IN ('Z1', 'Z2', 'Z3')")  # fmt: skip
    now = datetime.now(UTC)
    items = [
        {"id": "recent", "plate": "AA-111-AA", "zone": "Z1",
         "started_at": (now - timedelta(hours=2)).isoformat()},
        {"id": "old", "plate": "BB-222-BB", "zone": "Z2",
         "started_at": (now - timedelta(days=3)).isoformat(),
         "ends_at": (now - timedelta(days=3, minutes=-30)).isoformat()},
    ]  # fmt: skip
    body = {"station": "horodateur-1", "batch_id": "b1", "sessions": items}
    assert client.post(f"{API_PREFIX}/parking/sessions/batches", headers=seller,
                       json=body).json()["accepted"] == 2  # fmt: skip
    response = client.get(f"{REPORTS}/stale-zones", headers=admin)
    assert response.status_code == 200, response.text
    flagged = {z["zone"]: z for z in response.json()}
    assert set(flagged) == {"Z2", "Z3"}  # Z1 paid 2 h ago, Z4 opened today
    assert flagged["Z2"]["flag"] == "warning" and flagged["Z2"]["last_payment"] is not None
    assert flagged["Z3"]["flag"] == "red" and flagged["Z3"]["last_payment"] is None
    assert [z["zone"] for z in response.json()] == ["Z3", "Z2"]  # most silent first


def test_occupancy_compliance_and_unpaid_estimate_per_hour(
    client: TestClient, admin: dict[str, str], seller: dict[str, str], conn: psycopg.Connection,
    town: Town,
) -> None:  # fmt: skip
    _day_sessions(client, seller)  # pm-1 pays bay B1 09:00-10:00 local
    bays: dict[str, int] = dict(conn.execute("SELECT code, id FROM parking_bays").fetchall())
    stays = [
        ("B1", "2026-11-16T08:00:00Z", "2026-11-16T09:00:00Z"),  # paid by pm-1
        ("B2", "2026-11-16T08:30:00Z", "2026-11-16T09:30:00Z"),  # never paid
    ]
    for bay, arrived, left in stays:
        conn.execute(
            "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at, left_at)"
            " VALUES (%s, %s, %s, %s)",
            (bays[bay], town.tenant_id, arrived, left),
        )
    response = client.get(f"{REPORTS}/occupancy?day={DAY}&zone=Z1", headers=admin)
    assert response.status_code == 200, response.text
    [zone] = response.json()
    assert zone["zone"] == "Z1" and zone["bays"] == 2 and len(zone["hours"]) == 24
    nine, ten = zone["hours"][9], zone["hours"][10]
    assert nine["hour"] == "09:00" and ten["hour"] == "10:00"
    # 09h: B1 the whole hour, B2 half of it; B2's first 10 minutes are its grace period
    assert nine["occupancy_rate"] == 0.75 and nine["arrivals"] == 2
    assert nine["regulated_occupied_minutes"] == 90 and nine["unpaid_minutes"] == 20
    assert nine["compliance_rate"] == round(70 / 90, 4)
    # B2's 50 unpaid minutes at the example tariff: 4 quarters at 0.50, counted at 09h40
    assert nine["unpaid_estimate"] == "2.00" and ten["unpaid_estimate"] == "0.00"
    assert ten["occupancy_rate"] == 0.25 and ten["unpaid_minutes"] == 30
    assert ten["departures"] == 2 and ten["mean_dwell_minutes"] == 60
    assert zone["day"]["unpaid_estimate"] == "2.00" and zone["day"]["arrivals"] == 2
    assert client.get(f"{REPORTS}/occupancy?day={DAY}&zone=Z9", headers=admin).status_code == 404


def test_the_daily_email_reaches_the_recipients_once(
    client: TestClient, admin: dict[str, str], seller: dict[str, str], settings: Settings
) -> None:
    _day_sessions(client, seller)
    wanted = [{"email": "regie@annecy.fr", "role": "regie"},
              {"email": "Police@Annecy.fr", "role": "police"}]  # fmt: skip
    put = client.put(f"{REPORTS}/recipients", headers=admin, json=wanted)
    assert put.status_code == 200, put.text
    assert client.get(f"{REPORTS}/recipients", headers=admin).json() == [
        {"email": "police@annecy.fr", "role": "police"},
        {"email": "regie@annecy.fr", "role": "regie"},
    ]
    assert report_mail.run_job(settings) == 0  # no SMTP server configured
    next_morning = datetime(2026, 11, 17, 7, 0, tzinfo=UTC)  # 08:00 in Annecy
    with smtp_server() as server:
        job_settings = settings.model_copy(update={
            "smtp_url": SecretStr(server.url), "smtp_from": "stationnement@civicsense.test",
            "report_hour": 9,
        })  # fmt: skip
        assert report_mail.run_job(job_settings, now=next_morning) == 0  # before 09:00 local
        job_settings.report_hour = 6
        assert report_mail.run_job(job_settings, now=next_morning) == 1
        assert report_mail.run_job(job_settings, now=next_morning + timedelta(hours=1)) == 0
        [received] = server.messages
    assert sorted(received.rcpt_tos) == ["police@annecy.fr", "regie@annecy.fr"]
    message = received.message
    assert message["Subject"] == "Rapprochement stationnement du 16/11/2026 – Annecy"
    body = message.get_body(("plain",))
    assert body is not None and "Total : 12,70 €" in body.get_content()
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {"rapprochement-2026-11-16.csv", "rapprochement-2026-11-16.pdf"}
    csv_part = attachments["rapprochement-2026-11-16.csv"]
    assert csv_part.get_content_type() == "text/csv"
    payload = csv_part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    rows = _csv_rows(payload)
    [total] = [r for r in rows if r["ligne"] == "total"]
    assert total["total (EUR)"] == "12,70" and total["sessions"] == "6"
    assert attachments["rapprochement-2026-11-16.pdf"].get_content().startswith(b"%PDF")


def test_reconciliation_follows_the_local_day() -> None:
    paris = reports.ZoneInfo("Europe/Paris")
    start, end = reports.day_bounds(date(2026, 3, 29), paris)  # clocks go forward
    assert (end - start) == timedelta(hours=23)
    assert start == datetime(2026, 3, 28, 23, tzinfo=UTC)
