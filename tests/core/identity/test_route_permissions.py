"""Every route × every kind of caller: anonymous (401), each role with and without the
permission (2xx / 403), an API key, the operator, and another town's admin (404 for
this town's objects). A route missing from the table fails the guard test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.embedded import EmbeddedBroker
from core.identity.permissions import permissions_of
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer, enable_totp

DEV_EUI = "a840410000000001"
ROLES = ["viewer", "facility_manager", "enforcement_agent", "technician", "buyer"]
ADMINS = {"tenant_admin": "annecy", "platform_admin": None, "other_town_admin": "lyon"}
_counter = itertools.count()


@dataclass(frozen=True)
class Caller:
    """How a caller authenticates, and what it holds."""

    name: str
    headers: dict[str, str]
    permissions: frozenset[str]
    other_town: bool = False
    is_user: bool = True


@dataclass(frozen=True)
class Route:
    """A route of the API and what it needs."""

    method: str
    path: str
    permission: str | None  # None: any authenticated caller
    body: Callable[[], dict[str, Any]] | None = None
    ok: int = 200
    town_object: bool = False  # {…} in the path names one of annecy's objects
    csv: bytes | None = None  # a text/csv body instead of JSON
    fresh_device: bool = False  # {dev_eui} is a device registered just before the call


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


ROUTES = [
    Route("GET", "/api/v1/users", "users:read"),
    Route("POST", "/api/v1/users", "users:manage", ok=201, body=lambda: {
        "email": f"{_unique('u')}@annecy.fr", "password": PASSWORD, "roles": ["viewer"]}),
    Route("GET", "/api/v1/users/{user_id}", "users:read", town_object=True),
    Route("PATCH", "/api/v1/users/{user_id}", "users:manage", town_object=True,
          body=lambda: {"display_name": "Technicienne"}),
    Route("GET", "/api/v1/api-keys", "apikeys:manage"),
    Route("POST", "/api/v1/api-keys", "apikeys:manage", ok=201,
          body=lambda: {"name": "export", "permissions": ["readings:read"]}),
    Route("DELETE", "/api/v1/api-keys/{key_id}", "apikeys:manage", town_object=True),
    Route("GET", "/api/v1/payment-providers", "providers:manage"),
    Route("POST", "/api/v1/payment-providers", "providers:manage", ok=201,
          body=lambda: {"provider": _unique("payer-")}),
    Route("DELETE", "/api/v1/payment-providers/{provider_id}", "providers:manage",
          town_object=True),
    Route("GET", "/api/v1/audit", "audit:read"),
    Route("GET", "/api/v1/tenants", "tenants:read"),
    Route("POST", "/api/v1/tenants", "tenants:manage", ok=201,
          body=lambda: {"slug": _unique("ville-"), "name": "Nouvelle ville"}),
    Route("GET", "/api/v1/tenants/{slug}", "tenants:read", town_object=True),
    Route("PATCH", "/api/v1/tenants/{slug}", "tenants:manage", body=lambda: {"name": "Annecy"}),
    Route("GET", "/api/v1/devices/{dev_eui}/readings", "readings:read", town_object=True),
    Route("POST", "/api/v1/devices", "devices:write", ok=201, body=lambda: {
        "dev_eui": f"70b3d5{next(_counter):010x}", "model": "bosch-tps110", "name": "Place"}),
    Route("POST", "/api/v1/devices/import", "devices:write",
          csv=b"dev_eui,model,name\na840410000000001,bosch-tps110,Place 12\n"),
    Route("POST", "/api/v1/devices/qr", "devices:write", body=lambda: {
        "code": "LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:"
                "PFOOBAR:CAF2C"}),
    Route("GET", "/api/v1/devices", "devices:read"),
    Route("GET", "/api/v1/devices/{dev_eui}", "devices:read", town_object=True),
    Route("PATCH", "/api/v1/devices/{dev_eui}", "devices:write", town_object=True,
          body=lambda: {"name": "Place 12 bis"}),
    Route("DELETE", "/api/v1/devices/{dev_eui}", "devices:write", ok=204, town_object=True,
          fresh_device=True),
    Route("POST", "/api/v1/devices/{dev_eui}/downlinks", "devices:write", ok=202,
          town_object=True, body=lambda: {"f_port": 10, "data_hex": "01"}),
    Route("GET", "/api/v1/devices/{dev_eui}/downlinks", "devices:read", town_object=True),
    Route("GET", "/api/v1/auth/me", None),
]  # fmt: skip

# Routes whose answer does not follow the permission table; checked one by one below.
SPECIAL = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/session"),
    ("DELETE", "/api/v1/auth/session"),
    ("POST", "/api/v1/auth/totp/enrol"),
    ("POST", "/api/v1/auth/totp/confirm"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/ingest/chirpstack"),
}


@pytest.fixture
def world(conn: psycopg.Connection, settings: Settings) -> dict[str, Any]:
    """Two towns; in annecy one user per role, an API key, a device, a provider."""
    annecy = tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    lyon = tenants.create(conn, tenants.TenantCreate(slug="lyon", name="Lyon"))
    homes = {"annecy": annecy, "lyon": lyon, None: None}
    totps = {}
    for role in ROLES:
        add_user(conn, tenant_id=annecy, email=f"{role}@annecy.fr", roles=[role])
    for name, town in ADMINS.items():
        role = "tenant_admin" if name == "other_town_admin" else name
        user = add_user(conn, tenant_id=homes[town], email=f"{name}@example.fr", roles=[role])
        totps[name] = enable_totp(conn, settings, user["id"])
    devices.register(
        conn, settings, tenant_id=annecy,
        device=DeviceCreate(dev_eui=DEV_EUI, model="bosch-tps110", name="Place 12"),
    )  # fmt: skip
    key = add_api_key(conn, tenant_id=annecy, permissions=["readings:read"])
    return {"annecy": annecy, "lyon": lyon, "totps": totps, "key": key}


@pytest.fixture
def client(
    settings: Settings, world: dict[str, Any], broker: EmbeddedBroker
) -> Iterator[TestClient]:
    roomy = settings.model_copy(update={
        "login_max_failures_per_source": 1000, "mqtt_url": broker.url,
        "chirpstack_applications": {"annecy": "app-annecy", "lyon": "app-lyon"},
    })  # fmt: skip
    with TestClient(create_app(roomy)) as test_client:
        yield test_client


def _token(client: TestClient, email: str, totp: pyotp.TOTP | None = None) -> dict[str, str]:
    form = {"username": email, "password": PASSWORD}
    if totp:
        form["otp"] = totp.now()
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


@pytest.fixture
def callers(client: TestClient, world: dict[str, Any]) -> list[Caller]:
    """Every kind of caller, logged in through the API."""
    found = [Caller("anonymous", {}, frozenset(), is_user=False)]
    for role in ROLES:
        headers = _token(client, f"{role}@annecy.fr")
        found.append(Caller(role, headers, permissions_of([role])))
    for name in ADMINS:
        headers = _token(client, f"{name}@example.fr", world["totps"][name])
        role = "tenant_admin" if name == "other_town_admin" else name
        if name == "platform_admin":
            headers["X-Tenant"] = "annecy"
        found.append(
            Caller(name, headers, permissions_of([role]), other_town=name == "other_town_admin")
        )
    api_key = Caller("api_key", bearer(world["key"]), frozenset({"readings:read"}), is_user=False)
    return [*found, api_key]


def _objects(client: TestClient, callers: list[Caller]) -> dict[str, str]:
    """Ids of annecy's objects, made by its admin."""
    admin = next(c for c in callers if c.name == "tenant_admin").headers
    users = client.get("/api/v1/users", headers=admin).json()
    key = client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "target", "permissions": ["tenants:read"]}
    ).json()
    provider = client.post(
        "/api/v1/payment-providers", headers=admin, json={"provider": "flowbird"}
    ).json()
    return {
        "user_id": str(next(u["id"] for u in users if u["email"] == "technician@annecy.fr")),
        "key_id": str(key["id"]),
        "provider_id": str(provider["id"]),
        "slug": "annecy",
        "dev_eui": DEV_EUI,
    }


def _fresh_device(client: TestClient, admin: dict[str, str]) -> str:
    dev_eui = f"70b3d6{next(_counter):010x}"
    device = {"dev_eui": dev_eui, "model": "milesight-am103", "name": "Salle"}
    assert client.post("/api/v1/devices", headers=admin, json=device).status_code == 201
    return dev_eui


def _expected(route: Route, caller: Caller) -> int:
    if caller.name == "anonymous":
        return 401
    if route.permission is not None and route.permission not in caller.permissions:
        return 403
    if route.town_object and caller.other_town:
        return 404
    return route.ok


def test_every_route_is_in_the_table(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    served = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    tabled = {(r.method, r.path) for r in ROUTES} | SPECIAL
    assert served == tabled


def test_every_route_for_every_caller(client: TestClient, callers: list[Caller]) -> None:
    objects = _objects(client, callers)
    mismatches = []
    admin = next(c for c in callers if c.name == "tenant_admin").headers
    for route, caller in itertools.product(ROUTES, callers):
        if route.fresh_device:
            objects["dev_eui"] = _fresh_device(client, admin)
        path = route.path.format(**objects)
        body = route.body() if route.body else None
        if route.csv is not None:
            headers = {**caller.headers, "Content-Type": "text/csv"}
            response = client.request(route.method, path, headers=headers, content=route.csv)
        else:
            response = client.request(route.method, path, headers=caller.headers, json=body)
        expected = _expected(route, caller)
        if response.status_code != expected:
            got = f"{response.status_code} (expected {expected}) {response.text[:120]}"
            mismatches.append(f"{route.method} {path} as {caller.name}: {got}")
        assert response.status_code < 400 or "detail" in response.json()
    assert not mismatches, "\n".join(mismatches)


def test_special_routes_for_every_caller(client: TestClient, callers: list[Caller]) -> None:
    bad_login = {"username": "nobody@annecy.fr", "password": "wrong password, sorry"}
    for caller in callers:
        headers = caller.headers
        assert client.get("/api/v1/health", headers=headers).status_code == 200
        login = client.post("/api/v1/auth/token", data=bad_login, headers=headers)
        assert login.status_code == 401
        refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}, headers=headers)
        assert refresh.status_code == 401
        session = client.post("/api/v1/auth/session", data=bad_login, headers=headers)
        assert session.status_code == 401
        ingest = client.post(
            "/api/v1/ingest/chirpstack", params={"event": "up"}, content=b"{}",
            headers={**headers, "Content-Type": "application/json"},
        )  # fmt: skip
        assert ingest.status_code == 401, "user credentials do not open the ingest route"
        password = client.post(
            "/api/v1/auth/password", headers=headers,
            json={"current_password": "not it at all", "new_password": "whatever 12345"},
        )  # fmt: skip
        confirm = client.post("/api/v1/auth/totp/confirm", headers=headers, json={"code": "000000"})
        enrol = client.post("/api/v1/auth/totp/enrol", headers=headers)
        logout = client.delete("/api/v1/auth/session", headers=headers)
        if caller.name == "anonymous":
            statuses = (password, confirm, enrol, logout)
            assert [r.status_code for r in statuses] == [401] * 4
        elif not caller.is_user:
            assert [r.status_code for r in (password, confirm, enrol)] == [403] * 3
            assert logout.status_code == 204
        else:
            assert password.status_code == 403  # wrong current password
            assert confirm.status_code == 409  # nothing to confirm yet
            has_totp = caller.name in ADMINS
            assert enrol.status_code == (409 if has_totp else 200)
            assert logout.status_code == 204


def test_openapi_describes_the_security_schemes(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["userToken"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert schemes["sessionCookie"] == {
        "type": "apiKey", "in": "cookie", "name": "civicsense_session",
        "description": schemes["sessionCookie"]["description"],
    }  # fmt: skip
    for route in ROUTES:
        operation = spec["paths"][route.path][route.method.lower()]
        declared = {name for requirement in operation["security"] for name in requirement}
        assert declared == {"userToken", "apiKey", "sessionCookie"}, route.path
