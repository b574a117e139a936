"""The technician's onboarding API: register, import a CSV, list, look at health, edit,
decommission — through the tenant's own rows only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from tests.devices.conftest import Login

APP_KEY = "00112233445566778899AABBCCDDEEFF"
PARKING = "70b3d50000000001"
ROOM = "24e124136c225107"


def _register(client: TestClient, auth: dict[str, str], **fields: object):
    device = {"dev_eui": PARKING, "model": "bosch-tps110", "name": "Place A17", **fields}
    return client.post("/api/v1/devices", headers=auth, json=device)


def test_register_then_again_changes_nothing_and_never_shows_the_app_key(
    client: TestClient, tech: dict[str, str]
) -> None:
    first = _register(client, tech, app_key=APP_KEY, site="Rue Royale", bay="A17")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "registered" and body["has_app_key"] is True
    assert APP_KEY.lower() not in first.text.lower() and "app_key" not in body
    again = _register(client, tech, dev_eui="70-B3-D5-00-00-00-00-01", site="Rue Royale")
    assert again.status_code == 200 and again.json()["id"] == body["id"]


def test_a_dev_eui_of_another_town_is_a_conflict_and_stays_invisible(
    client: TestClient, tech: dict[str, str], login: Login
) -> None:
    assert _register(client, tech).status_code == 201
    lyon = login("tech@lyon.fr")
    assert _register(client, lyon).status_code == 409
    assert client.get(f"/api/v1/devices/{PARKING}", headers=lyon).status_code == 404
    assert client.get("/api/v1/devices", headers=lyon).json() == []


def test_csv_import_reports_each_bad_line_and_is_idempotent(
    client: TestClient, tech: dict[str, str]
) -> None:
    csv = (
        "dev_eui;model;name;app_key;site\n"
        f"{PARKING};bosch-tps110;Place A17;{APP_KEY};Rue Royale\n"
        f"{ROOM};milesight-am103;CM1;;École Vaugelas\n"
        "70b3d5zz00000003;bosch-tps110;EUI invalide;;\n"
        "70b3d50000000004;acme-x;Modèle inconnu;;\n"
    ).encode()
    headers = {**tech, "Content-Type": "text/csv"}
    first = client.post("/api/v1/devices/import", headers=headers, content=csv)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["counts"] == {"created": 2, "error": 2}
    assert [(e["line"], e["dev_eui"]) for e in report["errors"]] == [
        (4, "70b3d5zz00000003"), (5, "70b3d50000000004"),
    ]  # fmt: skip
    assert "model" in report["errors"][1]["detail"]
    again = client.post("/api/v1/devices/import", headers=headers, content=csv).json()
    assert again["counts"] == {"unchanged": 2, "error": 2}
    too_long = b"dev_eui,model,name\n" + b"70b3d50000000009,bosch-tps110,x\n" * 5001
    assert (
        client.post("/api/v1/devices/import", headers=headers, content=too_long).status_code == 413
    )
    bad_header = client.post("/api/v1/devices/import", headers=headers, content=b"eui,name\n")
    assert bad_header.status_code == 422 and "dev_eui" in bad_header.json()["detail"]


def test_list_filters_and_decommissioned_devices(
    client: TestClient, tech: dict[str, str], login: Login
) -> None:
    _register(client, tech, site="Rue Royale")
    _register(client, tech, dev_eui=ROOM, model="milesight-am103", name="CM1", site="École")
    listed = client.get("/api/v1/devices", headers=tech, params={"site": "École"}).json()
    assert [d["dev_eui"] for d in listed] == [ROOM]
    by_model = client.get("/api/v1/devices", headers=tech, params={"model": "bosch-tps110"})
    assert [d["dev_eui"] for d in by_model.json()] == [PARKING]
    assert client.delete(f"/api/v1/devices/{PARKING}", headers=tech).status_code == 204
    assert client.get(f"/api/v1/devices/{PARKING}", headers=tech).status_code == 404
    assert [d["dev_eui"] for d in client.get("/api/v1/devices", headers=tech).json()] == [ROOM]
    gone = client.get("/api/v1/devices", headers=tech, params={"status": "decommissioned"})
    assert [d["dev_eui"] for d in gone.json()] == [PARKING]
    assert _register(client, tech).status_code == 201, "the DevEUI is free again"
    viewer = login("viewer@annecy.fr")
    assert client.get("/api/v1/devices", headers=viewer).status_code == 200
    assert client.delete(f"/api/v1/devices/{ROOM}", headers=viewer).status_code == 403


def test_health_shows_last_seen_battery_signal_and_gateways(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection, towns: dict[str, int]
) -> None:
    device = _register(client, tech, dev_eui=ROOM, model="milesight-am103", name="CM1").json()
    assert client.get(f"/api/v1/devices/{ROOM}", headers=tech).json()["health"] == {
        "last_seen": None, "battery": None, "rssi": None, "snr": None, "gateways": [],
    }  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes, rssi, snr, gateway in ((30, -110, -2.5, "gw-mairie"), (10, -100, 7.5, "gw-ecole")):
        conn.execute(
            "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id, rssi, snr,"
            " gateway_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (now - timedelta(minutes=minutes), towns["annecy"], device["id"], ROOM,
             uuid.uuid4(), rssi, snr, gateway),
        )  # fmt: skip
    conn.execute(
        "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
        " VALUES (%s, %s, %s, 'battery', 87)",
        (now - timedelta(minutes=10), towns["annecy"], device["id"]),
    )
    health = client.get(f"/api/v1/devices/{ROOM}", headers=tech).json()["health"]
    assert datetime.fromisoformat(health["last_seen"]) == now - timedelta(minutes=10)
    assert health["battery"] == 87 and health["rssi"] == -105 and health["snr"] == 2.5
    assert sorted(health["gateways"]) == ["gw-ecole", "gw-mairie"]


def test_edit_checks_like_registration_and_audits_without_the_key(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    _register(client, tech, site="Rue Royale")
    moved = client.patch(f"/api/v1/devices/{PARKING}", headers=tech, json={"bay": "B02"})
    assert moved.status_code == 200 and moved.json()["bay"] == "B02"
    assert moved.json()["site"] == "Rue Royale"
    bad = client.patch(f"/api/v1/devices/{PARKING}", headers=tech, json={"model": "acme-x"})
    assert bad.status_code == 422 and "model" in bad.json()["detail"]
    keyed = client.patch(f"/api/v1/devices/{PARKING}", headers=tech, json={"app_key": APP_KEY})
    assert keyed.status_code == 200 and keyed.json()["has_app_key"] is True
    rows = conn.execute(
        "SELECT action, details::text FROM audit_log WHERE action LIKE 'device.%' ORDER BY id"
    ).fetchall()
    assert [action for action, _ in rows] == [
        "device.created", "device.update", "device.update",
    ]  # fmt: skip
    assert '"app_key"' in rows[-1][1] and APP_KEY.lower() not in str(rows).lower()


def test_qr_code_of_a_label_prefills_a_registration(
    client: TestClient, tech: dict[str, str]
) -> None:
    label = (
        "LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:PFOOBAR:CAF2C"
    )
    read = client.post("/api/v1/devices/qr", headers=tech, json={"code": f"  {label}\n"})
    assert read.status_code == 200, read.text
    assert read.json() == {
        "dev_eui": "aabbccddeeff0011", "join_eui": "1122334455667788",
        "profile_id": "aabb1122", "vendor_id": "aabb", "serial_number": "YYWWNNNNNN",
        "has_owner_token": True, "format": "tr005",
    }  # fmt: skip
    misread = client.post("/api/v1/devices/qr", headers=tech, json={"code": label[:-1] + "D"})
    assert misread.status_code == 422 and "checksum" in misread.json()["detail"]
    other = client.post("/api/v1/devices/qr", headers=tech, json={"code": "https://example.org"})
    assert other.status_code == 422 and "TR005" in other.json()["detail"]
    registered = _register(client, tech, dev_eui=read.json()["dev_eui"],
                           join_eui=read.json()["join_eui"], app_key=APP_KEY)  # fmt: skip
    assert registered.status_code == 201


def test_silent_devices_can_be_listed_by_how_long_they_have_been_quiet(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    _register(client, tech)
    _register(client, tech, dev_eui=ROOM, model="milesight-am103", name="CM1")
    now = datetime.now(UTC)
    conn.execute(
        "UPDATE devices SET status = 'silent', last_seen_at = %s WHERE dev_eui = %s",
        (now - timedelta(days=3), PARKING),
    )
    conn.execute(
        "UPDATE devices SET status = 'silent', last_seen_at = %s WHERE dev_eui = %s",
        (now - timedelta(hours=2), ROOM),
    )
    params = {"silent_since": (now - timedelta(days=1)).isoformat()}
    quiet = client.get("/api/v1/devices", headers=tech, params=params).json()
    assert [(d["dev_eui"], d["status"]) for d in quiet] == [(PARKING, "silent")]
    assert quiet[0]["last_seen_at"] is not None
