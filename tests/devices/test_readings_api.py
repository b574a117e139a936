"""`GET /api/v1/devices/{dev_eui}/readings`: what a technician's client sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.settings import Settings
from devices import service
from devices.models import DeviceCreate
from tests.kit.identity import add_api_key, bearer

DEV_EUI = "24e124136c225107"
OTHER_EUI = "24e124707c481005"
T0 = datetime(2024, 6, 11, 10, 0, tzinfo=UTC)
URL = f"/api/v1/devices/{DEV_EUI}/readings"

# (minutes after T0, quantity, value) of the device under test
ROWS = [
    (0, "temperature", 21.5),
    (0, "humidity", 40.0),
    (10, "temperature", 22.0),
    (10, "humidity", 41.5),
    (20, "temperature", 22.5),
    (30, "battery", 98.0),
]


@pytest.fixture
def device_ids(conn: psycopg.Connection, settings: Settings) -> dict[str, int]:
    """Two registered devices; the first has ROWS, the second one unrelated reading."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug="lyon", name="Ville de Lyon"))
    ids = {}
    for dev_eui, name in ((DEV_EUI, "boiler room"), (OTHER_EUI, "meeting room")):
        _, row = service.register(
            conn,
            settings,
            tenant_id=tenant_id,
            device=DeviceCreate(dev_eui=dev_eui, model="milesight-em300-sld", name=name),
        )
        ids[dev_eui] = row["id"]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(T0 + timedelta(minutes=m), tenant_id, ids[DEV_EUI], q, v) for m, q, v in ROWS]
            + [(T0 + timedelta(minutes=5), tenant_id, ids[OTHER_EUI], "temperature", -40.0)],
        )
    return ids


@pytest.fixture
def auth(conn: psycopg.Connection, device_ids: dict[str, int]) -> dict[str, str]:
    """An API key of the devices' tenant allowed to read readings."""
    tenant_id = tenants.id_for_slug(conn, "lyon")
    return bearer(add_api_key(conn, tenant_id=tenant_id, permissions=["readings:read"]))


@pytest.fixture
def client(settings: Settings, device_ids: dict[str, int]) -> Iterator[TestClient]:
    """The app with its lifespan running (pool, HTTP ingest pipeline)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _expected(rows: list[tuple[int, str, float]]) -> list[tuple[datetime, str, float]]:
    """Rows as the API must order them: newest first, then by quantity."""
    return sorted(
        ((T0 + timedelta(minutes=m), q, v) for m, q, v in rows),
        key=lambda r: (-r[0].timestamp(), r[1]),
    )


def _parsed(body: list[dict[str, object]]) -> list[tuple[datetime, str, float]]:
    return [(datetime.fromisoformat(str(r["time"])), str(r["quantity"]), r["value"]) for r in body]


def test_readings_come_newest_first_in_the_documented_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.get(URL, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    for item in body:
        assert set(item) == {"time", "quantity", "value"}
        assert isinstance(item["quantity"], str)
        assert isinstance(item["value"], int | float) and not isinstance(item["value"], bool)
        parsed = datetime.fromisoformat(item["time"])
        assert parsed.tzinfo is not None, f"time {item['time']!r} has no UTC offset"
    # the other device's reading (-40 °C) is not listed
    assert _parsed(body) == _expected(ROWS)


def test_quantity_filter_keeps_only_that_quantity(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get(URL, headers=auth, params={"quantity": "temperature"})
    assert response.status_code == 200
    assert _parsed(response.json()) == _expected([r for r in ROWS if r[1] == "temperature"])


def test_unknown_quantity_gives_an_empty_list(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get(URL, headers=auth, params={"quantity": "co2"})
    assert response.status_code == 200
    assert response.json() == []


def test_since_is_inclusive_and_until_exclusive(client: TestClient, auth: dict[str, str]) -> None:
    params = {
        "since": (T0 + timedelta(minutes=10)).isoformat(),
        "until": (T0 + timedelta(minutes=30)).isoformat(),
    }
    response = client.get(URL, headers=auth, params=params)
    assert response.status_code == 200
    assert _parsed(response.json()) == _expected([r for r in ROWS if 10 <= r[0] < 30])


def test_since_and_until_accept_other_utc_offsets(client: TestClient, auth: dict[str, str]) -> None:
    params = {"since": "2024-06-11T12:20:00+02:00"}  # 10:20 UTC, Paris summer time
    response = client.get(URL, headers=auth, params=params)
    assert response.status_code == 200
    assert _parsed(response.json()) == _expected([r for r in ROWS if r[0] >= 20])


def test_limit_returns_the_newest_readings(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get(URL, headers=auth, params={"limit": 3})
    assert response.status_code == 200
    assert _parsed(response.json()) == _expected(ROWS)[:3]


def test_default_limit_is_one_hundred(
    conn: psycopg.Connection,
    device_ids: dict[str, int],
    client: TestClient,
    auth: dict[str, str],
) -> None:
    conn.execute(
        "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
        " SELECT %s - make_interval(mins => n), d.tenant_id, d.id, 'co2', n"
        " FROM generate_series(1, 150) AS n, devices d WHERE d.id = %s",
        (T0, device_ids[DEV_EUI]),
    )
    assert len(client.get(URL, headers=auth).json()) == 100
    assert len(client.get(URL, headers=auth, params={"limit": 10000}).json()) == 150 + len(ROWS)


@pytest.mark.parametrize(
    "written",
    [
        "24-E1-24-13-6C-22-51-07",
        "24:e1:24:13:6c:22:51:07",
        "24E124136C225107",
        "24e1 2413 6c22 5107",
    ],
)
def test_dev_eui_is_accepted_with_separators_and_uppercase(
    client: TestClient, auth: dict[str, str], written: str
) -> None:
    response = client.get(f"/api/v1/devices/{written}/readings", headers=auth)
    assert response.status_code == 200
    assert _parsed(response.json()) == _expected(ROWS)


def test_unknown_device_is_404_with_a_json_detail(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/devices/0011223344556677/readings", headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "0011223344556677" in detail


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("/api/v1/devices/24e124136c2251/readings", {}, id="dev-eui-too-short"),
        pytest.param("/api/v1/devices/24e124136c22510g/readings", {}, id="dev-eui-not-hex"),
        pytest.param(URL, {"since": "2024-06-11T10:00:00"}, id="naive-since"),
        pytest.param(URL, {"until": "2024-06-11T10:00:00"}, id="naive-until"),
        pytest.param(URL, {"since": "yesterday"}, id="since-not-a-date"),
        pytest.param(URL, {"limit": 0}, id="limit-0"),
        pytest.param(URL, {"limit": 10001}, id="limit-10001"),
        pytest.param(URL, {"limit": "ten"}, id="limit-not-a-number"),
        pytest.param(URL, {"quantity": "x" * 65}, id="quantity-too-long"),
        pytest.param(
            URL,
            {"since": "2024-06-11T10:00:00+00:00", "until": "2024-06-11T10:00:00+00:00"},
            id="since-equals-until",
        ),
        pytest.param(
            URL,
            {"since": "2024-06-11T11:00:00+00:00", "until": "2024-06-11T10:00:00+00:00"},
            id="since-after-until",
        ),
    ],
)
def test_invalid_request_is_422_with_a_json_detail(
    client: TestClient, auth: dict[str, str], path: str, params: dict[str, object]
) -> None:
    response = client.get(path, headers=auth, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
        pytest.param({"Authorization": "Basic dGVzdDp0ZXN0"}, id="basic-scheme"),
        pytest.param({"Authorization": "csk_0011aabb_nope"}, id="no-scheme"),
    ],
)
def test_readings_need_the_bearer_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert "detail" in response.json()


def test_unknown_device_is_401_not_404_without_the_token(client: TestClient) -> None:
    """Without the token nothing tells whether a DevEUI is registered."""
    response = client.get("/api/v1/devices/0011223344556677/readings")
    assert response.status_code == 401


def test_health_answers_without_a_token(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_the_readings_route_and_its_bearer_auth(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    operation = spec["paths"]["/api/v1/devices/{dev_eui}/readings"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "dev_eui",
        "quantity",
        "since",
        "until",
        "limit",
    }
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert operation.get("security"), "the readings route must declare its bearer security"
    assert client.get("/api/v1/docs").status_code == 200
