"""The parking and incidents pages: in a real browser as the facility manager (figures from
the seeded stays, payments and incidents, worked out by hand here), confined to the town
whatever a callback names, and their CSV downloads equal to their figures."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from tests.kit.dashboard import (
    PARIS,
    SeededParking,
    SeededTown,
    callback,
    login,
    numbers,
    output_of,
    seed_parking,
)
from tests.kit.identity import PASSWORD
from tests.kit.server import served

from .test_pages import CHROMIUM, GRAPHS, _figure_data, _open

GRAPHS.update(
    parking=["parking-heatmap", "parking-trend", "parking-revenue"],
    incidents=["incidents-backlog", "incidents-compliance", "incidents-resolution"],
)
LANG = ("lang", "data", "fr")
NO_PERIOD = [("parking-dates", "start_date", None), ("parking-dates", "end_date", None)]
DEFAULT_DAYS = 14


@pytest.fixture
def annecy_parking(conn: psycopg.Connection, annecy: SeededTown) -> SeededParking:
    return seed_parking(conn, annecy, ("Z1", "Z2", "Z3"), "eclairage")


@pytest.fixture
def lyon_parking(conn: psycopg.Connection, lyon: SeededTown) -> SeededParking:
    return seed_parking(conn, lyon, ("LY1", "LY2", "LY3"), "voirie")


def expected_day(day: Any) -> dict[str, float]:
    """Zone Z1's figures of the seeded day, by hand: 2 bays, stays of 2 h and 1 h, the first
    paid for 1 h, 10 grace minutes on each."""
    seconds = (
        datetime.combine(day + timedelta(days=1), time(0), PARIS)
        - datetime.combine(day, time(0), PARIS)
    ).total_seconds()
    return {
        "occupancy_rate": round(3 * 3600 / (2 * seconds), 4),
        "turnover": 2 / 2,
        "mean_dwell_minutes": (120 + 60) / 2,
        "compliance_rate": round((60 + 10) / 180, 4),
    }


def _rows(download: dict[str, Any]) -> list[dict[str, str]]:
    assert download["filename"].endswith(".csv") and download["type"] == "text/csv"
    return list(csv.DictReader(io.StringIO(download["content"])))


def _figure_and_csv(
    client: TestClient, csrf: str, chart_id: str, inputs: list[tuple[str, str, Any]]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    figure = output_of(
        callback(client, f"{chart_id}-graph.figure", [*inputs, LANG], csrf=csrf),
        f"{chart_id}-graph.figure",
    )
    download = output_of(
        callback(
            client,
            f"{chart_id}-download.data",
            [(f"{chart_id}-csv", "n_clicks", 1)],
            state=inputs,
            csrf=csrf,
        ),
        f"{chart_id}-download.data",
    )
    return figure, _rows(download)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_facility_manager_opens_parking_and_incidents(
    settings: Settings,
    annecy: SeededTown,
    annecy_parking: SeededParking,
    lyon_parking: SeededParking,
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    day = annecy_parking.day
    with served(settings) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="fr-FR"
            ).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            failed: list[str] = []
            page.on(
                "response",
                lambda r: (
                    failed.append(f"{r.status} {r.url}")
                    if "/dashboard/" in r.url and r.status >= 400
                    else None
                ),
            )
            page.route(re.compile(r"^(?!http://127\.0\.0\.1)"), lambda route: route.abort())
            page.goto(f"{base}/dashboard/login")
            page.get_by_label("Adresse e-mail").fill(annecy.manager)
            page.get_by_label("Mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Se connecter").click()
            expect(page).to_have_url(f"{base}/dashboard/?lang=fr")
            failed.clear()

            _open(page, f"{base}/dashboard/parking", "parking", tmp_path)
            expect(page.locator("#town")).to_have_text("Annecy · Stationnement")
            trend = _figure_data(page, "parking-trend")
            by_day = {
                trace["name"]: dict(zip(trace["x"], trace["y"], strict=True)) for trace in trend
            }
            expected = expected_day(day)
            assert by_day["Taux d'occupation (%)"][day.isoformat()] == pytest.approx(
                expected["occupancy_rate"] * 100
            )
            assert by_day["Rotation (arrivées par place)"][day.isoformat()] == 1
            assert by_day["Durée moyenne (min)"][day.isoformat()] == 90
            assert by_day["Taux de paiement (%)"][day.isoformat()] == pytest.approx(
                expected["compliance_rate"] * 100
            )
            first = day - timedelta(days=DEFAULT_DAYS - 1)
            same_weekday = sum(
                (first + timedelta(days=n)).weekday() == day.weekday() for n in range(DEFAULT_DAYS)
            )
            cells = page.evaluate(
                "document.querySelector('#parking-heatmap-graph .js-plotly-plot').data[0].z"
            )
            assert cells[day.weekday()][10] == pytest.approx(50 / same_weekday)
            revenue = {
                trace["name"]: dict(zip(trace["x"], trace["y"], strict=True))
                for trace in _figure_data(page, "parking-revenue")
            }
            assert revenue["paymobile"] == {day.isoformat(): pytest.approx(2.2)}
            assert revenue["PS-12"] == {(day - timedelta(days=1)).isoformat(): 1.5}
            stale = page.locator("#parking-stale-table")
            expect(stale).to_contain_text("Z2")
            expect(stale).to_contain_text("plus de dix jours")
            expect(stale).to_contain_text("plus d'un jour")
            assert "LY1" not in page.content()

            _open(page, f"{base}/dashboard/incidents", "incidents", tmp_path)
            backlog = _figure_data(page, "incidents-backlog")
            assert {
                (trace["name"], x): y
                for trace in backlog
                for x, y in zip(trace["x"], trace["y"], strict=True)
                if y
            } == {("bloquant", "P0"): 1, ("majeur", "P1"): 1}
            resolution = {t["name"]: t["y"] for t in _figure_data(page, "incidents-resolution")}
            assert sum(resolution["Heures écoulées"]) == 1
            table = page.locator("#incidents-table")
            expect(table).to_contain_text("Lampadaire éteint")
            expect(table).to_contain_text("Chaudière en panne")
            link = f"/api/v1/incidents/{annecy_parking.resolved_incident}"
            expect(table.locator(f'a[href="{link}"]')).to_have_count(1)
            assert "voirie" not in page.content()

            page.goto(f"{base}/dashboard/incidents?lang=en")
            expect(page.locator("#town")).to_have_text("Annecy · Incidents")
            expect(page.locator("#incidents-table")).to_contain_text("resolved")
            page.get_by_role("link", name="Parking").click()
            expect(page.locator("#town")).to_have_text("Annecy · Parking")
            assert errors == [], errors
            assert failed == [], failed
        finally:
            browser.close()


def test_a_manager_never_sees_another_towns_zones_or_incidents(
    settings: Settings, annecy_parking: SeededParking, lyon_parking: SeededParking
) -> None:
    with TestClient(create_app(settings)) as client:
        csrf = login(client, "manager@annecy.fr")
        own, _ = _figure_and_csv(
            client, csrf, "parking-trend", [("parking-zone", "value", "Z1"), *NO_PERIOD]
        )
        assert own["data"]
        for crafted in ("LY1", ["LY1"], {"code": "LY1"}):
            for chart_id in ("parking-trend", "parking-heatmap"):
                figure, rows = _figure_and_csv(
                    client, csrf, chart_id, [("parking-zone", "value", crafted), *NO_PERIOD]
                )
                assert figure["data"] == [] and rows == [], (chart_id, crafted)
        _, rows = _figure_and_csv(client, csrf, "parking-revenue", NO_PERIOD)
        assert {row["provider"] for row in rows} == {"paymobile", "PS-12"}
        assert sum(float(row["revenue_eur"]) for row in rows) == pytest.approx(3.7)

        def listed(**filters: Any) -> list[dict[str, Any]]:
            inputs = [
                (f"incidents-{key}", "value", filters.get(key))
                for key in ("state", "priority", "class", "category")
            ]
            response = callback(client, "incidents-table.data", [*inputs, LANG], csrf=csrf)
            return output_of(response, "incidents-table.data")

        assert {row["title"] for row in listed()} == {
            "Chaudière en panne",
            "Capteur arraché",
            "Lampadaire éteint",
        }
        assert [row["id"] for row in listed(state="resolved")] == [annecy_parking.resolved_incident]
        assert listed(category="eclairage")[0]["category"] == "eclairage"
        assert listed(category="voirie") == []
        assert listed(state=["resolved", "new"]) == []


def test_parking_trend_csv_is_its_figure(settings: Settings, annecy_parking: SeededParking) -> None:
    day = annecy_parking.day
    inputs = [
        ("parking-zone", "value", "Z1"),
        ("parking-dates", "start_date", (day - timedelta(days=2)).isoformat()),
        ("parking-dates", "end_date", day.isoformat()),
    ]
    with TestClient(create_app(settings)) as client:
        csrf = login(client, "manager@annecy.fr")
        figure, rows = _figure_and_csv(client, csrf, "parking-trend", inputs)
    assert [row["day"] for row in rows] == [
        (day - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    scales = {
        "occupancy_rate": 100,
        "turnover": 1,
        "mean_dwell_minutes": 1,
        "compliance_rate": 100,
        "unpaid_estimate_eur": 1,
    }
    for trace, (column, scale) in zip(figure["data"], scales.items(), strict=True):
        assert trace["x"] == [row["day"] for row in rows]
        drawn = numbers(trace["y"])
        assert drawn == [
            None if row[column] == "" else pytest.approx(float(row[column]) * scale) for row in rows
        ], column
    last = rows[-1]
    for column, value in expected_day(day).items():
        assert float(last[column]) == pytest.approx(value), column
    assert float(last["unpaid_estimate_eur"]) > 0


def test_incident_backlog_and_compliance_csvs_are_their_figures(
    settings: Settings, annecy_parking: SeededParking
) -> None:
    with TestClient(create_app(settings)) as client:
        csrf = login(client, "manager@annecy.fr")
        backlog, rows = _figure_and_csv(client, csrf, "incidents-backlog", [])
        compliance, monthly = _figure_and_csv(client, csrf, "incidents-compliance", [])
    drawn = {
        (trace["name"], x): y
        for trace in backlog["data"]
        for x, y in zip(trace["x"], numbers(trace["y"]), strict=True)
    }
    assert {(r["incident_class"], r["priority"]): int(r["incidents"]) for r in rows} == drawn
    assert sum(drawn.values()) == 2
    assert len(monthly) == 12 * 2
    for trace, clock in zip(compliance["data"], ("gti", "gtr"), strict=True):
        mine = [row for row in monthly if row["clock"] == clock]
        assert trace["x"] == [row["month"] for row in mine]
        assert numbers(trace["y"]) == [
            None if row["rate"] == "" else pytest.approx(float(row["rate"]) * 100) for row in mine
        ]
        decided = sum(int(r["met"]) + int(r["missed"]) + int(r["pending"]) for r in mine)
        assert decided == 3, clock  # the three incidents opened within the year
