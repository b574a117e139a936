"""The monthly incident report against a month of incidents with known histories: counts,
GTI/GTR compliance (a breached open clock is missed), resolution times counted and wall,
the backlog at the month's end, the town's local month, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts import incident_report
from alerts.incident_report import Month
from alerts.workflow import Transition
from core.app import create_app
from core.settings import Settings
from tests.kit.incidents import incident_town, login, opened

ACK, START, WAIT, RESUME, RESOLVE, CLOSE = (
    Transition.ACKNOWLEDGE, Transition.START, Transition.WAIT, Transition.RESUME,
    Transition.RESOLVE, Transition.CLOSE,
)  # fmt: skip
AS_OF = datetime(2026, 4, 15, tzinfo=UTC)
MARCH_END = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 1 April 00:00 in Paris (CEST)


def _at(text: str, hours: float = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(hours=hours)


@pytest.fixture
def march(conn: psycopg.Connection) -> int:
    """annecy (Europe/Paris, 24/7 service levels) and its incidents around March 2026."""
    town = incident_town(conn)

    def steps(opened_at: datetime, *moves: tuple[Transition, float]) -> dict[str, Any]:
        return {"steps": tuple((t, opened_at + timedelta(hours=h)) for t, h in moves)}

    a, b, e = _at("2026-03-02T10:00"), _at("2026-03-03T10:00"), _at("2026-03-30T10:00")
    g, h = _at("2026-02-28T23:30"), _at("2026-02-10T09:00")
    # A: P0, acknowledged at 30 min, resolved at 3 h: both met; 3 h
    opened(conn, town, a, incident_class="bloquant", **steps(a, (ACK, 0.5), (RESOLVE, 3)))
    # B: P1, started at 5 h (GTI missed), waits 6 h → 8 h, resolved at 13 h: 11 h counted (met)
    opened(conn, town, b, **steps(b, (START, 5), (WAIT, 6), (RESUME, 8), (RESOLVE, 13)))
    # C: P2 never touched: both clocks breached by mid-April, open at the month's end
    opened(conn, town, _at("2026-03-10T09:00"), incident_class="mineur")
    # D: opened in February, still open: backlog only
    opened(conn, town, _at("2026-02-20T09:00"), incident_class="mineur")
    # E: P1 started at 1 h, resolved after the month at 70 h: GTR missed, open at month end
    opened(conn, town, e, **steps(e, (START, 1), (RESOLVE, 70)))
    # G: 1 March 00:30 in Paris (still February in UTC): P2 resolved in 2 h
    opened(conn, town, g, incident_class="mineur", **steps(g, (START, 1), (RESOLVE, 2)))
    # F: 1 April 00:30 in Paris (still March in UTC): not March's
    opened(conn, town, _at("2026-03-31T22:30"), incident_class="bloquant")
    # H: opened and closed in February: nowhere
    opened(conn, town, h, **steps(h, (START, 1), (RESOLVE, 2), (CLOSE, 3)))
    return town


EXPECTED: dict[str, Any] = {
    "month": "2026-03", "timezone": "Europe/Paris", "calendar": "24/7",
    "opened": {"total": 5, "by_class": {"bloquant": {"P0": 1, "P1": 0, "P2": 0},
                                        "majeur": {"P0": 0, "P1": 2, "P2": 0},
                                        "mineur": {"P0": 0, "P1": 0, "P2": 2}}},
    "compliance": {"gti": {"met": 3, "missed": 2, "pending": 0, "rate": 0.6},
                   "gtr": {"met": 3, "missed": 2, "pending": 0, "rate": 0.6}},
    "resolution": {
        "counted_hours": {"count": 4, "p50": 3.0, "p90": 70.0, "max": 70.0, "buckets": {
            "<1h": 0, "1-4h": 2, "4-12h": 1, "12-24h": 0, "24-72h": 1, ">=72h": 0}},
        "wall_hours": {"count": 4, "p50": 3.0, "p90": 70.0, "max": 70.0, "buckets": {
            "<1h": 0, "1-4h": 2, "4-12h": 0, "12-24h": 1, "24-72h": 1, ">=72h": 0}},
    },
    "backlog": {"total": 3, "by_priority": {"P0": 0, "P1": 1, "P2": 2}},
}  # fmt: skip


def test_march_in_figures(conn: psycopg.Connection, march: int) -> None:
    report = incident_report.monthly(conn, march, Month(2026, 3), at=AS_OF)
    assert (report["from"], report["to"]) == (_at("2026-02-28T23:00"), MARCH_END)
    assert report["as_of"] == AS_OF and report["backlog"]["at"] == MARCH_END
    for key, value in EXPECTED.items():
        if key == "backlog":
            assert {k: report[key][k] for k in value} == value
        else:
            assert report[key] == value, key


def test_the_current_month_counts_its_backlog_now_and_pending_clocks_apart(
    conn: psycopg.Connection, march: int
) -> None:
    mid_march = _at("2026-03-10T10:00")  # C opened an hour ago: both clocks running
    report = incident_report.monthly(conn, march, Month(2026, 3), at=mid_march)
    assert report["opened"]["total"] == 4  # G, A, B and C so far
    assert report["compliance"]["gtr"] == {"met": 3, "missed": 0, "pending": 1, "rate": 1.0}
    assert report["backlog"] == {"at": mid_march, "total": 2, "by_priority": {
        "P0": 0, "P1": 0, "P2": 2}}  # C and D  # fmt: skip
    with pytest.raises(ValueError, match="has not started"):
        incident_report.monthly(conn, march, Month(2026, 4), at=mid_march)


@pytest.fixture
def client(settings: Settings, march: int) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_report_route_answers_json_and_csv(client: TestClient) -> None:
    viewer = login(client, "viewer@annecy.fr")
    url = "/api/v1/incidents/report"
    report = client.get(url, headers=viewer, params={"month": "2026-03"})
    assert report.status_code == 200, report.text
    assert {k: report.json()[k] for k in ("opened", "compliance", "resolution")} == {
        k: EXPECTED[k] for k in ("opened", "compliance", "resolution")}  # fmt: skip
    assert report.json()["backlog"]["at"] == "2026-03-31T22:00:00Z"

    exported = client.get(url, headers=viewer, params={"month": "2026-03", "format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["section", "key", "value"]
    table = {(section, key): value for section, key, value in rows[1:]}
    assert table[("period", "month")] == "2026-03"
    assert table[("opened", "majeur P1")] == "2" and table[("opened", "total")] == "5"
    assert table[("gti", "rate")] == "0,6" and table[("gtr", "missed")] == "2"
    assert table[("resolution_counted_hours", "p50")] == "3,0"
    assert table[("resolution_wall_hours", "12-24h")] == "1"
    assert table[("backlog", "P2")] == "2" and table[("backlog", "total")] == "3"
    assert len(table) == len(rows) - 1, "one row per section and key"

    for month in ("2026-13", "2026-3", "2099-01"):
        assert client.get(url, headers=viewer, params={"month": month}).status_code == 422
    assert client.get(url, params={"month": "2026-03"}).status_code == 401
