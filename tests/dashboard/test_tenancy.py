"""The dashboards show one town, to its users only: Lyon's buildings stay out of Annecy's
manager's reach whatever a callback payload names, and nobody without a session gets in."""

from __future__ import annotations

import json

import psycopg
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from tests.kit.dashboard import SeededTown, callback, login, output_of
from tests.kit.identity import add_user, enable_totp

from .conftest import LYON_SITES

PAGE = ("page.children", "nav.children", "town.children")
PERIOD = [("air-dates", "start_date", None), ("air-dates", "end_date", None)]
LANG = ("lang", "data", "fr")


def _series(client: TestClient, csrf: str, room: object) -> dict:
    response = callback(
        client, "air-series-graph.figure", [("air-room", "value", room), *PERIOD, LANG], csrf=csrf
    )
    return output_of(response, "air-series-graph.figure")


def test_a_manager_never_sees_another_towns_buildings(
    settings: Settings, annecy: SeededTown, lyon: SeededTown
) -> None:
    lyon_room = lyon.devices["Salle 1"]
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)
        for path in ("/dashboard/", "/dashboard/air", "/dashboard/fleet"):
            shown = callback(
                client, PAGE, [("url", "pathname", path), ("url", "search", "")], csrf=csrf
            ).text
            assert "Annecy" in shown
            assert not any(site in shown for site in LYON_SITES), path
            assert "Lyon" not in shown, path

        assert len(_series(client, csrf, annecy.devices["Salle 1"])["data"]) == 3
        for crafted in (lyon_room, str(lyon_room), [lyon_room], {"id": lyon_room}):
            assert _series(client, csrf, crafted)["data"] == [], crafted

        icone = callback(
            client,
            "air-icone-graph.figure",
            [("air-room", "value", lyon_room), *PERIOD, LANG],
            csrf=csrf,
        )
        assert output_of(icone, "air-icone-graph.figure")["data"] == []
        heatmap = callback(
            client,
            "air-heatmap-graph.figure",
            [("air-site", "value", LYON_SITES[0]), *PERIOD, LANG],
            csrf=csrf,
        )
        assert output_of(heatmap, "air-heatmap-graph.figure")["data"] == []
        rooms = callback(
            client,
            ("air-room.options", "air-room.value"),
            [("air-site", "value", LYON_SITES[0])],
            csrf=csrf,
        )
        assert output_of(rooms, "air-room.options") == []
        download = callback(
            client,
            "air-series-download.data",
            [("air-series-csv", "n_clicks", 1)],
            state=[("air-room", "value", lyon_room), *PERIOD],
            csrf=csrf,
        )
        assert output_of(download, "air-series-download.data")["content"] == (
            "hour,co2_ppm,temperature_c,humidity_pct\n"
        )
        fleet = callback(client, "fleet-status-graph.figure", [LANG], csrf=csrf)
        assert sum(
            sum(trace["y"]) for trace in output_of(fleet, "fleet-status-graph.figure")["data"]
        ) == len(annecy.devices)


def test_strangers_are_sent_to_the_login_page_and_callbacks_need_a_session(
    conn: psycopg.Connection, settings: Settings, annecy: SeededTown
) -> None:
    operator = add_user(conn, tenant_id=None, email="ops@civicsense.fr", roles=["platform_admin"])
    authenticator = enable_totp(conn, settings, operator["id"])
    with TestClient(create_app(settings)) as client:
        page = client.get("/dashboard")
        assert page.url.path == "/dashboard/login"
        assert page.url.params["next"] == "/dashboard/"
        assert '<html lang="fr">' in page.text and "Connexion aux tableaux de bord" in page.text
        english = client.get("/dashboard/air?lang=en")
        assert english.url.params["next"] == "/dashboard/air"
        assert "Dashboards login" in english.text
        for path in ("/dashboard/_dash-layout", "/dashboard/_dash-dependencies"):
            assert client.get(path).status_code == 401, path
        anonymous = callback(client, PAGE, [("url", "pathname", "/dashboard/")], csrf=None)
        assert anonymous.status_code == 401 and "Annecy" not in anonymous.text

        csrf = login(client, annecy.manager)
        forged = callback(client, PAGE, [("url", "pathname", "/dashboard/")], csrf=None)
        assert forged.status_code == 403, "a callback without the CSRF header"
        assert client.get("/dashboard/_dash-layout").status_code == 200
        back = client.get(
            "/dashboard/login",
            params={"next": "/dashboard/air", "lang": "en"},
            follow_redirects=False,
        )
        assert (back.status_code, back.headers["location"]) == (303, "/dashboard/air?lang=en")
        elsewhere = client.get(
            "/dashboard/login", params={"next": "//evil.example/"}, follow_redirects=False
        )
        assert elsewhere.headers["location"] == "/dashboard/?lang=fr"
        assert (
            callback(
                client, PAGE, [("url", "pathname", "/dashboard/"), ("url", "search", "")], csrf=csrf
            ).status_code
            == 200
        )

        client.cookies.clear()
        login(client, "ops@civicsense.fr", authenticator.now())
        assert client.get("/dashboard/_dash-layout").status_code == 403
        refused = client.get("/dashboard/")
        assert refused.url.path == "/dashboard/login"
        assert "n'a pas accès aux tableaux de bord" in refused.text
        assert json.loads(client.get("/dashboard/_dash-dependencies").text)["detail"]
