"""The control map in a real browser (Debian's Chromium driven by Playwright, phone-sized):
an agent logs in, sees 2,000 bays coloured by status with the legend, checks a plate,
and sees a bay change colour within seconds of a sensor event."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from core.settings import Settings
from ingest.pipeline import Pipeline
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer
from tests.kit.parking import ALWAYS, Town, park, parking_town
from tests.kit.server import served

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "test-artifacts" / "control-map.png"
BAYS = 2000
AGENT = "agent@annecy.fr"
PLATE = "AB-123-CD"
COLOURS = {"free": "#d9d9d9", "paid": "#009e73", "unpaid": "#c8102e", "unknown": "#555555"}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: run scripts/system-deps.sh"
)


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    """Three bays with sensors (B1..B3), 1,997 without (P1..), no grace, always regulated."""
    made = parking_town(conn, settings, bays=3, zone={"hours": ALWAYS, "grace_minutes": 0})
    conn.execute(
        """
        INSERT INTO parking_bays (tenant_id, zone_id, code, lat, lon)
        SELECT %(tenant)s, z.id, 'P' || g,
               45.8985 - (g / 50) * 0.00008, 6.1275 + (g %% 50) * 0.00012
        FROM parking_zones z, generate_series(1, %(count)s) g
        WHERE z.tenant_id = %(tenant)s AND z.code = 'Z1'
        """,
        {"tenant": made.tenant_id, "count": BAYS - 3},
    )
    conn.execute(  # apart from each other, to be seen on the screenshot
        "UPDATE parking_bays SET lon = 6.1285 + substr(code, 2)::int * 0.0008, lat = 45.8988"
        " WHERE tenant_id = %s AND code LIKE 'B%%'",
        (made.tenant_id,),
    )
    return made


@needs_chromium
def test_agent_sees_the_map_checks_a_plate_and_follows_a_sensor(
    conn: psycopg.Connection,
    settings: Settings,
    town: Town,
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    add_user(conn, tenant_id=town.tenant_id, email=AGENT, roles=["enforcement_agent"])
    seller = bearer(add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:sessions"]))
    park(pipeline, town, "B1", 0)
    park(pipeline, town, "B2", 1)
    park(pipeline, town, "B3", 1)
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with (
        served(settings) as base,
        sync_api.sync_playwright() as playwright,
    ):
        started = httpx.post(f"{base}/api/v1/parking/sessions", headers=seller, json={
            "plate": PLATE, "zone": "Z1", "bay": "B2", "duration_minutes": 60})  # fmt: skip
        assert started.status_code == 201, started.text
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2,
                is_mobile=True, has_touch=True, locale="fr-FR",
            ).new_page()  # fmt: skip
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            refused: list[str] = []  # the app's answers >= 400, to say why a step failed
            page.on("response", lambda r: refused.append(f"{r.status} {r.request.method} {r.url}")
                    if r.status >= 400 and r.url.startswith(base) else None)  # fmt: skip
            # no network in tests: every tile fails, and the map must not care
            page.route(re.compile(r"^(?!http://127\.0\.0\.1)"), lambda route: route.abort())

            page.goto(f"{base}/parking/map")
            page.get_by_label("Adresse e-mail").fill(AGENT)
            page.get_by_label("Mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Se connecter").click()
            landed = page.locator("#map, #login-error:not([hidden])")  # one page or the other
            expect(landed).to_be_visible(timeout=30_000)
            assert landed.get_attribute("id") == "map", (landed.inner_text(), refused)

            dots = page.locator("#bays circle")
            try:  # generous: the first 2,000-bay feed on a loaded 2-core CI machine
                expect(dots).to_have_count(BAYS, timeout=30_000)
            except AssertionError as missing:
                feed_state = page.locator("#feed-state").inner_text()
                raise AssertionError(f"{missing}\nfeed: {feed_state}; refused: {refused}") from None
            dot = {code: page.locator(f'#bays circle[data-bay="{code}"]') for code in
                   ("B1", "B2", "B3", "P1")}  # fmt: skip
            expect(dot["B1"]).to_have_attribute("data-status", "free")
            expect(dot["B2"]).to_have_attribute("data-status", "paid")
            expect(dot["B3"]).to_have_attribute("data-status", "unpaid")
            expect(dot["P1"]).to_have_attribute("data-status", "unknown")
            for code, status in (("B1", "free"), ("B2", "paid"), ("B3", "unpaid")):
                expect(dot[code]).to_have_attribute("fill", COLOURS[status])
            assert page.evaluate("Object.keys(window.civicsenseBays).length") == BAYS
            legend = page.locator("#legend li")
            expect(legend).to_have_count(8)
            expect(page.locator("#legend")).to_contain_text("Impayé (1)")
            expect(page.locator("#legend")).to_contain_text("Inconnu (1997)")
            expect(page.locator("#zone option[value=Z1]")).to_have_count(1)
            expect(page.locator("#unpaid li")).to_have_count(1)
            expect(page.locator("#unpaid li").first).to_have_attribute("data-bay", "B3")
            expect(page.locator("#feed-state")).to_have_text("En direct")

            page.locator("#plate").fill(PLATE.lower())
            page.get_by_role("button", name="Vérifier").click()
            result = page.locator("#plate-result")
            expect(result).to_have_attribute("data-paid", "true")
            expect(result).to_contain_text(f"{PLATE} : Payé jusqu'à")
            expect(result).to_contain_text("zone Z1")
            page.locator("#plate").fill("ZZ-999-ZZ")
            page.get_by_role("button", name="Vérifier").click()
            expect(result).to_have_attribute("data-paid", "false")
            expect(result).to_contain_text("Non payé")

            parked_at = time.monotonic()
            park(pipeline, town, "B1", 1)
            expect(dot["B1"]).to_have_attribute("data-status", "unpaid", timeout=5_000)
            delay = time.monotonic() - parked_at
            expect(dot["B1"]).to_have_attribute("fill", COLOURS["unpaid"])
            expect(page.locator("#unpaid li")).to_have_count(2)
            assert delay < 5, f"the map showed the car after {delay:.1f} s"

            before = float(dot["B3"].get_attribute("cx") or 0)
            box = page.locator("#map").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 100, box["y"] + 100)
            page.mouse.down()
            page.mouse.move(box["x"] + 160, box["y"] + 120, steps=5)
            page.mouse.up()
            assert abs(float(dot["B3"].get_attribute("cx") or 0) - before - 60) < 1
            page.locator("#zoom-in").click()
            page.locator("#zoom-fit").click()
            shot = tmp_path / "control-map.png"
            page.screenshot(path=str(shot), full_page=True)
            ARTIFACT.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, ARTIFACT)
            assert errors == [], errors
            assert refused == [], refused
        finally:
            browser.close()


def test_the_page_speaks_english_and_asks_strangers_to_log_in(settings: Settings) -> None:
    with served(settings) as base:
        page = httpx.get(f"{base}/parking/map", params={"lang": "en"})
        assert page.status_code == 200
        assert '<html lang="en">' in page.text and "Agent login" in page.text
        french = httpx.get(f"{base}/parking/map", cookies={"civicsense_session": "forged"})
        assert "Connexion agent" in french.text
        assert httpx.get(f"{base}/parking/static/map.js").status_code == 200
        assert httpx.get(f"{base}/parking/static/..%2Fmap_page.py").status_code == 404
