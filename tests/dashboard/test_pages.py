"""The dashboards in a real browser (Debian's Chromium driven by Playwright, laptop-sized): a
facility manager logs in and opens every page on a seeded town; every callback answers, the
console stays clean, and the figures show what the town's data says. A screenshot of each
page is kept in test-artifacts/."""

from __future__ import annotations

import re
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.kit.dashboard import PARIS, SeededTown, expected_icone, school_day
from tests.kit.identity import PASSWORD
from tests.kit.server import served

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GRAPHS = {
    "overview": ["overview-incidents"],
    "air": ["air-series", "air-icone", "air-heatmap"],
    "fleet": ["fleet-status", "fleet-battery"],
}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: run scripts/system-deps.sh"
)


def _figure_data(page: Any, chart_id: str) -> list[dict[str, Any]]:
    """The traces plotly drew in a chart (typed arrays read back as lists)."""
    return page.evaluate(
        """id => document.querySelector(`#${id}-graph .js-plotly-plot`).data.map(t => ({
            name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])}))""",
        chart_id,
    )


def _open(page: Any, url: str, name: str, tmp_path: Path) -> float:
    """Go to a page; the seconds until each of its charts is drawn. Then a screenshot."""
    started = time.monotonic()
    page.goto(url)
    for chart_id in GRAPHS[name]:
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
def test_facility_manager_opens_every_page(
    settings: Settings, annecy: SeededTown, lyon: SeededTown, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
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

            page.goto(f"{base}/dashboard/")
            expect(page).to_have_url(re.compile(r"/dashboard/login\?next=%2Fdashboard%2F"))
            page.get_by_label("Adresse e-mail").fill(annecy.manager)
            page.get_by_label("Mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Se connecter").click()
            expect(page).to_have_url(f"{base}/dashboard/?lang=fr")
            failed.clear()  # the login page's own 401s are expected before the session

            timings = {"overview": _open(page, f"{base}/dashboard/", "overview", tmp_path)}
            expect(page.locator("#town")).to_have_text("Annecy · Vue d'ensemble")
            expect(page.locator("#count-active")).to_have_text("4")
            expect(page.locator("#count-silent")).to_have_text("1")
            expect(page.locator("#count-pending")).to_have_text("1")
            expect(page.locator("#stuffy-sites li")).to_have_text(["Groupe scolaire Jules Ferry"])
            expect(page.locator("#overview-air-table")).to_contain_text("1450")
            expect(page.locator("#overview-leak-table")).to_contain_text("Fuite chaufferie")
            expect(page.locator("#overview-incident-table")).to_contain_text("Chaudière en panne")
            incidents = _figure_data(page, "overview-incidents")
            assert sum(sum(trace["y"]) for trace in incidents) == 2
            assert "Lyon" not in page.content()

            timings["air"] = _open(page, f"{base}/dashboard/air", "air", tmp_path)
            series = _figure_data(page, "air-series")
            assert [trace["name"] for trace in series] == [
                "CO₂ (ppm)",
                "Température (°C)",
                "Humidité (%HR)",
            ]
            assert max(series[0]["y"]) == pytest.approx(1800)
            day = school_day(datetime.now(PARIS).date())
            icone = _figure_data(page, "air-icone")[0]
            assert dict(zip(icone["x"], icone["y"], strict=True))[day.isoformat()] == (
                expected_icone(day)
            )
            heatmap = page.evaluate(
                "document.querySelector('#air-heatmap-graph .js-plotly-plot').data[0].y"
            )
            assert list(heatmap) == ["Salle 1", "Salle 2"]
            with page.expect_download() as download:
                page.locator("#air-icone-csv").click()
            saved = Path(download.value.path()).read_text()
            assert saved.startswith("day,icone,f1,f2,coverage\n")
            assert f"{day.isoformat()},{expected_icone(day)}," in saved

            timings["fleet"] = _open(page, f"{base}/dashboard/fleet", "fleet", tmp_path)
            expect(page.locator("#fleet-silent-table")).to_contain_text("Capteur muet")
            expect(page.locator("#fleet-low-table")).to_contain_text("Capteur muet")
            expect(page.locator("#fleet-table")).to_contain_text("Capteur en attente")
            statuses = _figure_data(page, "fleet-status")
            assert sum(sum(trace["y"]) for trace in statuses) == len(annecy.devices)

            page.goto(f"{base}/dashboard/fleet?lang=en")
            expect(page.locator("#town")).to_have_text("Annecy · Fleet health")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            page.get_by_role("link", name="Air quality").click()
            expect(page.locator("#town")).to_have_text("Annecy · Air quality")

            print("page load (s):", {name: round(took, 2) for name, took in timings.items()})
            assert errors == [], errors
            assert failed == [], failed
        finally:
            browser.close()
