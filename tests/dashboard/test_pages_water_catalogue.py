"""The Water and Catalogue pages: opened in Chromium by Annecy's facility manager on seeded
leak sensors, leak alerts and orders; Lyon's sensors and orders stay out of reach whatever a
callback payload names; each page's CSV holds its figure's numbers."""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from tests.kit.catalog import SIRETS
from tests.kit.dashboard import (
    PARIS,
    SeededTown,
    WaterSeed,
    callback,
    login,
    numbers,
    output_of,
    seed_orders,
    seed_water,
)
from tests.kit.identity import PASSWORD
from tests.kit.server import served

from .test_pages import ARTIFACTS, CHROMIUM, _figure_data, needs_chromium

LANG = ("lang", "data", "fr")
PERIOD = [
    ("catalogue-period", "value", "month"),
    ("catalogue-dates", "start_date", None),
    ("catalogue-dates", "end_date", None),
]
#: A 1×1 transparent PNG, standing in for OpenStreetMap's tiles (no network in tests).
BLANK_TILE = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f"
    "15c4890000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


@pytest.fixture
def annecy_water(conn: psycopg.Connection, annecy: SeededTown) -> WaterSeed:
    return seed_water(conn, annecy)


@pytest.fixture
def lyon_water(conn: psycopg.Connection, lyon: SeededTown) -> WaterSeed:
    return seed_water(conn, lyon)


@pytest.fixture
def annecy_orders(conn: psycopg.Connection, annecy: SeededTown) -> list[int]:
    return seed_orders(conn, annecy, SIRETS["annecy"])


@pytest.fixture
def lyon_orders(conn: psycopg.Connection, lyon: SeededTown) -> list[int]:
    return seed_orders(conn, lyon, SIRETS["lyon"])


def _expected_events(seed: WaterSeed) -> dict[str, tuple[int, int, int]]:
    """Leak alerts per local day of the seeded readings, by hand: (opened, cleared, repeats).
    A 1 opens an alert unless the sensor's is open (then it repeats, counted on the day the
    alert opened), a 0 clears it."""
    opened: Counter[str] = Counter()
    cleared: Counter[str] = Counter()
    repeats: Counter[str] = Counter()
    leaking: dict[str, str] = {}  # sensor -> the day its open alert opened
    for sensor, at, value in seed.leaks:
        day = at.astimezone(PARIS).date().isoformat()
        if value and sensor in leaking:
            repeats[leaking[sensor]] += 1
        elif value:
            opened[day] += 1
            leaking[sensor] = day
        elif sensor in leaking:
            cleared[day] += 1
            del leaking[sensor]
    return {d: (opened[d], cleared[d], repeats[d]) for d in sorted(set(opened) | set(cleared))}


def _with_kit_alert(
    events: dict[str, tuple[int, int, int]], conn: psycopg.Connection, town: SeededTown
) -> dict:
    """`events` plus the kit's open alert of "Fuite chaufferie" (opened at seeding)."""
    row = conn.execute(
        "SELECT opened_at FROM alerts WHERE device_id = %s", (town.devices["Fuite chaufferie"],)
    ).fetchone()
    assert row is not None
    day = row[0].astimezone(PARIS).date().isoformat()
    opened, cleared, repeats = events.get(day, (0, 0, 0))
    return dict(sorted({**events, day: (opened + 1, cleared, repeats)}.items()))


def _order_totals(conn: psycopg.Connection, tenant_id: int) -> dict[str, Decimal]:
    """The town's order totals excl. tax per order month, straight from the table."""
    rows = conn.execute(
        "SELECT to_char(ordered_on, 'YYYY-MM'), sum(total_excl) FROM catalog_orders"
        " WHERE tenant_id = %s GROUP BY 1 ORDER BY 1",
        (tenant_id,),
    ).fetchall()
    return dict(rows)


def _open(page: Any, url: str, name: str, graphs: list[str], tmp_path: Path) -> float:
    """Go to a page, wait for its charts to be drawn, keep a screenshot; the seconds it took."""
    started = time.monotonic()
    page.goto(url)
    for chart_id in graphs:
        page.wait_for_function(
            """id => { const g = document.querySelector(`#${id}-graph .js-plotly-plot`);
                       return g && g.data !== undefined && g.querySelector('.main-svg'); }""",
            arg=chart_id,
            timeout=15_000,
        )
    took = time.monotonic() - started
    page.wait_for_load_state("networkidle")
    shot = tmp_path / f"dashboard-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / shot.name)
    return took


@needs_chromium
def test_facility_manager_opens_water_and_catalogue(
    conn: psycopg.Connection,
    settings: Settings,
    annecy: SeededTown,
    lyon: SeededTown,
    annecy_water: WaterSeed,
    lyon_water: WaterSeed,
    annecy_orders: list[int],
    lyon_orders: list[int],
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    events = _with_kit_alert(_expected_events(annecy_water), conn, annecy)
    totals = _order_totals(conn, annecy.tenant_id)
    with served(settings) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="fr-FR", accept_downloads=True
            )
            page = context.new_page()
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
            page.route(
                re.compile(r"tile\.openstreetmap\.org"),
                lambda route: route.fulfill(body=BLANK_TILE, content_type="image/png"),
            )

            page.goto(f"{base}/dashboard/water")
            page.get_by_label("Adresse e-mail").fill(annecy.manager)
            page.get_by_label("Mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Se connecter").click()
            expect(page).to_have_url(re.compile(r"/dashboard/water"))
            failed.clear()  # the login page's own 401s are expected before the session

            water = ["water-map", "water-events"]
            timings = {"water": _open(page, f"{base}/dashboard/water", "water", water, tmp_path)}
            expect(page.locator("#town")).to_have_text("Annecy · Eau")
            sensors = page.locator("#water-sensor-table")
            for name in annecy_water.positions:
                expect(sensors).to_contain_text(name)
            expect(sensors).to_contain_text("fuite")  # the changing rooms leak now
            expect(sensors).to_contain_text("sec")  # the canteen is dry
            expect(sensors).to_contain_text("77")
            expect(page.locator("#water-history-table")).to_contain_text("Fuite vestiaires")
            expect(page.locator("#water-incident-table")).to_contain_text("/api/v1/incidents/")
            placed = page.evaluate(
                """() => document.querySelector('#water-map-graph .js-plotly-plot').data
                       .flatMap(t => Array.from(t.lat).map((lat, i) => [lat, t.lon[i]]))"""
            )
            assert sorted(map(tuple, placed)) == sorted(annecy_water.positions.values())
            drawn = _figure_data(page, "water-events")
            assert [trace["x"] for trace in drawn] == [list(events)] * 3
            assert [trace["y"] for trace in drawn] == [
                [counts[n] for counts in events.values()] for n in range(3)
            ]

            catalogue = ["catalogue-volume", "catalogue-lines"]
            timings["catalogue"] = _open(
                page, f"{base}/dashboard/catalogue", "catalogue", catalogue, tmp_path
            )
            expect(page.locator("#town")).to_have_text("Annecy · Catalogue")
            orders_table = page.locator("#catalogue-orders-table")
            expect(orders_table).to_contain_text("BC-annecy-1")
            expect(orders_table).to_contain_text("BC-annecy-2")
            volume = _figure_data(page, "catalogue-volume")[0]
            assert dict(zip(volume["x"], volume["y"], strict=True)) == pytest.approx(
                {month: float(total) for month, total in totals.items()}
            )
            lines = _figure_data(page, "catalogue-lines")[0]
            assert sorted(lines["x"]) == pytest.approx([0.99, 1899.90])
            assert "BC-lyon" not in page.content() and "Lyon" not in page.content()

            page.goto(f"{base}/dashboard/water?lang=en")
            expect(page.locator("#town")).to_have_text("Annecy · Water")
            page.get_by_role("link", name="Catalogue").click()
            expect(page.locator("#town")).to_have_text("Annecy · Catalogue")
            expect(page.locator("#catalogue-orders-table")).to_contain_text("Purchase order")

            print("page load (s):", {name: round(took, 2) for name, took in timings.items()})
            assert errors == [], errors
            assert failed == [], failed
        finally:
            browser.close()


def test_a_manager_never_sees_another_towns_sensors_or_orders(
    settings: Settings,
    annecy: SeededTown,
    lyon: SeededTown,
    annecy_water: WaterSeed,
    lyon_water: WaterSeed,
    annecy_orders: list[int],
    lyon_orders: list[int],
) -> None:
    lyon_sensor = lyon.devices["Fuite vestiaires"]
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)
        for path in ("/dashboard/water", "/dashboard/catalogue"):
            shown = callback(
                client,
                ("page.children", "nav.children", "town.children"),
                [("url", "pathname", path), ("url", "search", "")],
                csrf=csrf,
            ).text
            assert "Annecy" in shown and "Lyon" not in shown and "lyon" not in shown, path

        def events(device: object) -> list[Any]:
            response = callback(
                client, "water-events-graph.figure", [("water-device", "value", device), LANG],
                csrf=csrf,
            )  # fmt: skip
            return output_of(response, "water-events-graph.figure")["data"]

        assert events(annecy.devices["Fuite vestiaires"]) != []
        for crafted in (lyon_sensor, str(lyon_sensor), [lyon_sensor], {"id": lyon_sensor}):
            assert events(crafted) == [], crafted
        download = callback(
            client,
            "water-events-download.data",
            [("water-events-csv", "n_clicks", 1)],
            state=[("water-device", "value", lyon_sensor)],
            csrf=csrf,
        )
        assert output_of(download, "water-events-download.data")["content"] == (
            "day,opened,cleared,repeats\n"
        )
        placed = output_of(
            callback(client, "water-map-graph.figure", [LANG], csrf=csrf), "water-map-graph.figure"
        )
        assert sorted(lat for trace in placed["data"] for lat in numbers(trace["lat"])) == sorted(
            lat for lat, _lon in annecy_water.positions.values()
        )

        def lines(order: object) -> list[Any]:
            response = callback(
                client, "catalogue-lines-graph.figure", [("catalogue-order", "value", order), LANG],
                csrf=csrf,
            )  # fmt: skip
            return output_of(response, "catalogue-lines-graph.figure")["data"]

        assert lines(annecy_orders[0]) != []
        for crafted in (lyon_orders[0], str(lyon_orders[1]), [lyon_orders[0]]):
            assert lines(crafted) == [], crafted


def _chart(
    client: TestClient, csrf: str, chart_id: str, inputs: list
) -> tuple[dict, list[dict[str, str]]]:
    """A chart's figure and its CSV download's rows, for the same inputs."""
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
    assert download["filename"] == f"{chart_id}.csv" and download["type"] == "text/csv"
    return figure, list(csv.DictReader(io.StringIO(download["content"])))


def test_water_csvs_are_their_figures(
    conn: psycopg.Connection, settings: Settings, annecy: SeededTown, annecy_water: WaterSeed
) -> None:
    expected = _with_kit_alert(_expected_events(annecy_water), conn, annecy)
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)
        figure, rows = _chart(client, csrf, "water-events", [("water-device", "value", None)])
        for trace, column in zip(figure["data"], ("opened", "cleared", "repeats"), strict=True):
            assert trace["x"] == [row["day"] for row in rows]
            assert numbers(trace["y"]) == [int(row[column]) for row in rows], column
        assert {
            row["day"]: (int(row["opened"]), int(row["cleared"]), int(row["repeats"]))
            for row in rows
        } == expected

        figure, rows = _chart(client, csrf, "water-map", [])
    drawn = sorted(
        (lat, lon)
        for trace in figure["data"]
        for lat, lon in zip(numbers(trace["lat"]), numbers(trace["lon"]), strict=True)
    )
    assert drawn == sorted((float(row["lat"]), float(row["lon"])) for row in rows)
    assert drawn == sorted(annecy_water.positions.values())
    states = {row["device"]: row["state"] for row in rows}
    assert states == {
        "Fuite chaufferie": "unknown",
        "Fuite vestiaires": "leak",
        "Fuite cantine": "dry",
    }


def test_catalogue_volume_csv_is_its_figure_and_the_orders_totals(
    conn: psycopg.Connection,
    settings: Settings,
    annecy: SeededTown,
    annecy_orders: list[int],
    lyon_orders: list[int],
) -> None:
    totals = _order_totals(conn, annecy.tenant_id)
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)
        figure, rows = _chart(client, csrf, "catalogue-volume", PERIOD)
        excl, vat = figure["data"]
        assert excl["x"] == [row["period"] for row in rows]
        assert numbers(excl["y"]) == [float(row["total_excl"]) for row in rows]
        assert numbers(vat["y"]) == [float(row["total_vat"]) for row in rows]
        assert {row["period"]: Decimal(row["total_excl"]) for row in rows} == totals
        assert sum(int(row["orders"]) for row in rows) == len(annecy_orders)
        for row in rows:
            assert Decimal(row["total_incl"]) == Decimal(row["total_excl"]) + Decimal(
                row["total_vat"]
            )

        year, _ = _chart(
            client, csrf, "catalogue-volume", [("catalogue-period", "value", "year"), *PERIOD[1:]]
        )
        assert sum(numbers(year["data"][0]["y"])) == pytest.approx(float(sum(totals.values())))
