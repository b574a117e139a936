"""Every route × every kind of caller: anonymous (401), each role with and without the
permission (2xx / 403), an API key, the operator, and another town's admin (404 for
this town's objects). A route missing from the table fails the guard test."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from core import tenants
from core.app import create_app
from core.embedded import EmbeddedBroker
from core.identity.permissions import permissions_of
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from tests.kit import catalog as catalog_kit
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer, enable_totp

DEV_EUI = "a840410000000001"
ROLES = ["viewer", "facility_manager", "enforcement_agent", "technician", "buyer"]
METRICS_TOKEN = "metrics-token-of-the-scraper"
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
    body: Callable[[], Any] | None = None
    ok: int = 200
    town_object: bool = False  # the path or the body names one of annecy's objects
    other_town: int = 404  # what another town's admin gets then
    raw: bytes | None = None  # a body of `media_type` instead of JSON
    media_type: str = "text/csv"
    fresh: str | None = None  # this {…} of the path is made just before each call
    maker: str | None = None  # the FRESH factory making it, when not named after the {…}


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(out, "PNG")
    return out.getvalue()


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
          raw=b"dev_eui,model,name\na840410000000001,bosch-tps110,Place 12\n"),
    Route("POST", "/api/v1/devices/qr", "devices:write", body=lambda: {
        "code": "LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:"
                "PFOOBAR:CAF2C"}),
    Route("GET", "/api/v1/devices", "devices:read"),
    Route("GET", "/api/v1/devices/{dev_eui}", "devices:read", town_object=True),
    Route("PATCH", "/api/v1/devices/{dev_eui}", "devices:write", town_object=True,
          body=lambda: {"name": "Place 12 bis"}),
    Route("DELETE", "/api/v1/devices/{dev_eui}", "devices:write", ok=204, town_object=True,
          fresh="dev_eui"),
    Route("POST", "/api/v1/devices/{dev_eui}/downlinks", "devices:write", ok=202,
          town_object=True, body=lambda: {"f_port": 10, "data_hex": "01"}),
    Route("GET", "/api/v1/devices/{dev_eui}/downlinks", "devices:read", town_object=True),
    # in this order: the photo that PUT stores is there for GET; DELETE is idempotent
    Route("PUT", "/api/v1/devices/{dev_eui}/photo", "devices:write", town_object=True,
          raw=_png(), media_type="image/png"),
    Route("GET", "/api/v1/devices/{dev_eui}/photo", "devices:read", town_object=True),
    Route("DELETE", "/api/v1/devices/{dev_eui}/photo", "devices:write", ok=204,
          town_object=True),
    Route("GET", "/api/v1/device-models", "devices:read"),
    Route("GET", "/api/v1/device-models/{model_id}", "devices:read"),
    Route("GET", "/api/v1/parking/zones", "parking:read"),
    Route("POST", "/api/v1/parking/zones", "parking:manage", ok=201,
          body=lambda: {"code": _unique("Z"), "name": "Gare"}),
    Route("GET", "/api/v1/parking/zones/{zone}", "parking:read", town_object=True),
    Route("PATCH", "/api/v1/parking/zones/{zone}", "parking:manage", town_object=True,
          body=lambda: {"grace_minutes": 15}),
    Route("GET", "/api/v1/parking/bays", "parking:read"),
    Route("POST", "/api/v1/parking/bays", "parking:manage", ok=201, town_object=True,
          body=lambda: {"code": _unique("P"), "zone": "Z1", "lat": 45.9, "lon": 6.12}),
    Route("GET", "/api/v1/parking/bays/status", "parking:read"),
    Route("GET", "/api/v1/parking/bays/{bay}", "parking:read", town_object=True),
    Route("PATCH", "/api/v1/parking/bays/{bay}", "parking:manage", town_object=True,
          body=lambda: {"kind": "delivery"}),
    Route("DELETE", "/api/v1/parking/bays/{bay}", "parking:manage", ok=204, town_object=True,
          fresh="bay"),
    Route("GET", "/api/v1/parking/sessions", "parking:read"),
    Route("POST", "/api/v1/parking/sessions", "parking:sessions", ok=201, town_object=True,
          other_town=422, body=lambda: {"plate": "AB-123-CD", "zone": "Z1"}),
    Route("POST", "/api/v1/parking/sessions/{session_id}/extend", "parking:sessions",
          town_object=True, body=lambda: {"minutes": 1}),
    Route("POST", "/api/v1/parking/sessions/{session_id}/stop", "parking:sessions",
          town_object=True, fresh="session_id"),
    Route("POST", "/api/v1/parking/sessions/batches", "parking:sessions", body=lambda: {
        "station": "horodateur-1", "batch_id": _unique("b"), "sessions": [{
            "id": _unique("t"), "plate": "AB-123-CD", "zone": "Z1",
            "started_at": "2026-11-23T08:00:00Z"}]}),
    Route("GET", "/api/v1/parking/enforcement/plates/{plate}", "parking:enforce"),
    Route("GET", "/api/v1/parking/enforcement/unpaid", "parking:enforce"),
    Route("POST", "/api/v1/parking/enforcement/actions", "parking:enforce", ok=201,
          town_object=True, body=lambda: {"kind": "warning", "bay": "B1"}),
    Route("GET", "/api/v1/parking/enforcement/actions", "parking:enforce"),
    # in this order: GET reads the photo of the action `_parking_objects` made; PUT refuses
    # a second photo (409), so each of its calls gets an action without one
    Route("GET", "/api/v1/parking/enforcement/actions/{action_id}/photo", "parking:enforce",
          town_object=True),
    Route("PUT", "/api/v1/parking/enforcement/actions/{action_id}/photo", "parking:enforce",
          town_object=True, raw=_png(), media_type="image/png", fresh="action_id"),
    Route("GET", "/api/v1/parking/reports/reconciliation", "parking:manage"),
    Route("GET", "/api/v1/parking/reports/stale-zones", "parking:manage"),
    Route("GET", "/api/v1/parking/reports/occupancy", "parking:manage"),
    Route("GET", "/api/v1/parking/reports/recipients", "parking:manage"),
    Route("PUT", "/api/v1/parking/reports/recipients", "parking:manage",
          body=lambda: [{"email": "regie@annecy.fr", "role": "regie"}]),
    Route("GET", "/api/v1/alerts/rules", "alerts:read"),
    Route("GET", "/api/v1/alerts/rules/templates", "alerts:read"),
    Route("POST", "/api/v1/alerts/rules", "alerts:manage", ok=201, body=lambda: _LEAK_RULE),
    Route("POST", "/api/v1/alerts/rules/defaults", "alerts:manage"),
    Route("GET", "/api/v1/alerts/rules/{rule_id}", "alerts:read", town_object=True),
    Route("PATCH", "/api/v1/alerts/rules/{rule_id}", "alerts:manage", town_object=True,
          body=lambda: {"name": "Fuite (gymnase)"}),
    Route("DELETE", "/api/v1/alerts/rules/{rule_id}", "alerts:manage", ok=204,
          town_object=True, fresh="rule_id"),
    Route("GET", "/api/v1/alerts", "alerts:read"),
    Route("POST", "/api/v1/alerts/{alert_id}/acknowledge", "alerts:manage", town_object=True,
          fresh="alert_id"),
    Route("GET", "/api/v1/notifications", "alerts:manage"),
    Route("GET", "/api/v1/notifications/routes", "alerts:manage"),
    Route("POST", "/api/v1/notifications/routes", "alerts:manage", ok=201,
          body=lambda: _notification_route()),
    Route("DELETE", "/api/v1/notifications/routes/{route_id}", "alerts:manage", ok=204,
          town_object=True, fresh="route_id"),
    Route("GET", "/api/v1/notifications/preferences", "alerts:read"),
    Route("PUT", "/api/v1/notifications/preferences", "alerts:read",
          body=lambda: {"mode": "digest", "min_priority": "P1"}),
    Route("GET", "/api/v1/incidents", "alerts:read"),
    Route("POST", "/api/v1/incidents", "incidents:manage", ok=201,
          body=lambda: {"title": "Lampadaire éteint", "incident_class": "mineur"}),
    Route("GET", "/api/v1/incidents/report", "alerts:read"),
    Route("GET", "/api/v1/incidents/{incident_id}", "alerts:read", town_object=True),
    Route("PATCH", "/api/v1/incidents/{incident_id}", "alerts:manage", town_object=True,
          body=lambda: {"public": True}),
    Route("GET", "/api/v1/incidents/{incident_id}/events", "alerts:read", town_object=True),
    Route("POST", "/api/v1/incidents/{incident_id}/assign", "alerts:manage", town_object=True,
          body=lambda: {"assignee_id": None}),
    Route("POST", "/api/v1/incidents/{incident_id}/comments", "incidents:manage", ok=201,
          town_object=True, body=lambda: {"body": "Passage prévu demain matin"}),
    Route("POST", "/api/v1/incidents/{incident_id}/attachments", "incidents:manage", ok=201,
          town_object=True, raw=_png(), media_type="image/png"),
    Route("GET", "/api/v1/incidents/{incident_id}/attachments/{attachment_id}", "alerts:read",
          town_object=True),
    # last, as they replace {incident_id}: each call gets a new incident assigned to
    # technician@annecy.fr, which its assignee and holders of alerts:manage may acknowledge
    Route("POST", "/api/v1/incidents/{incident_id}/transitions", "incidents:manage",
          town_object=True, fresh="incident_id", body=lambda: {"transition": "acknowledge"}),
    Route("POST", "/api/v1/incidents/{incident_id}/requalify", "alerts:manage",
          town_object=True, fresh="incident_id",
          body=lambda: {"incident_class": "bloquant", "reason": "tout le quartier est touché"}),
    Route("GET", "/api/v1/catalog/domains", "catalog:read"),
    Route("POST", "/api/v1/catalog/domains", "catalog:manage", ok=201, body=lambda: {
        "code": _unique("domaine_"), "name_fr": "Domaine", "name_en": "Domain"}),
    Route("GET", "/api/v1/catalog/solutions", "catalog:read"),
    Route("POST", "/api/v1/catalog/solutions", "catalog:manage", ok=201,
          body=lambda: _catalog_solution(_unique("solution-"))),
    Route("POST", "/api/v1/catalog/solutions/from-town", "catalog:manage", ok=201,
          body=lambda: {"slug": _unique("projet-"), "domain": "parking", "name_fr": "Projet",
                        "name_en": "Project", "price_lines": [{
                            "code": "pose", "label_fr": "Pose", "label_en": "Installation",
                            "kind": "service", "unit": "day", "unit_price": "620.00",
                            "vat_rate": "20"}]}),
    Route("GET", "/api/v1/catalog/solutions/{solution}", "catalog:read"),
    Route("PATCH", "/api/v1/catalog/solutions/{solution}", "catalog:manage",
          body=lambda: {"change_reason": "révision", "name_fr": _unique("Fuites ")}),
    Route("GET", "/api/v1/catalog/solutions/{solution}/versions", "catalog:read"),
    Route("GET", "/api/v1/catalog/solutions/{solution}/versions/{version}", "catalog:read"),
    Route("POST", "/api/v1/catalog/solutions/{solution}/transitions", "catalog:manage",
          body=lambda: {"to": "deprecated", "reason": "fin de commercialisation annoncée"}),
    Route("GET", "/api/v1/catalog/quotes", "catalog:order"),
    Route("POST", "/api/v1/catalog/quotes", "catalog:order", ok=201, body=lambda: {
        "lines": [{"solution": "parking-test", "code": "capteur", "quantity": "12"}]}),
    Route("GET", "/api/v1/catalog/quotes/{quote_id}", "catalog:order", town_object=True),
    Route("GET", "/api/v1/catalog/quotes/{quote_id}/pdf", "catalog:order", town_object=True),
    Route("PATCH", "/api/v1/catalog/quotes/{quote_id}", "catalog:order", town_object=True,
          body=lambda: {"reference": "Marché 2026-04"}),
    # after the routes above: each of these replaces {quote_id} with a quote in the state
    # its step needs
    Route("POST", "/api/v1/catalog/quotes/{quote_id}/submit", "catalog:order", town_object=True,
          fresh="quote_id", maker="draft_quote"),
    Route("POST", "/api/v1/catalog/quotes/{quote_id}/answer", "catalog:manage", town_object=True,
          fresh="quote_id", maker="submitted_quote", body=lambda: {"decision": "accept"}),
    Route("POST", "/api/v1/catalog/quotes/{quote_id}/accept", "catalog:order", town_object=True,
          fresh="quote_id", maker="amended_quote"),
    Route("POST", "/api/v1/catalog/quotes/{quote_id}/refuse", "catalog:order", town_object=True,
          fresh="quote_id", maker="amended_quote", body=lambda: {"reason": "budget"}),
    Route("POST", "/api/v1/catalog/quotes/{quote_id}/order", "catalog:order", ok=201,
          town_object=True, fresh="quote_id", maker="accepted_quote",
          body=lambda: {"po_number": "BC-2026-17"}),
    Route("GET", "/api/v1/catalog/orders", "catalog:order"),
    Route("GET", "/api/v1/catalog/orders/{order_id}", "catalog:order", town_object=True),
    Route("GET", "/api/v1/catalog/orders/{order_id}/pdf", "catalog:order", town_object=True),
    Route("GET", "/api/v1/catalog/orders/{order_id}/checklist", "catalog:read",
          town_object=True),
    Route("POST", "/api/v1/catalog/orders/{order_id}/status", "catalog:manage",
          town_object=True, fresh="order_id", body=lambda: {"status": "delivered"}),
    Route("GET", "/api/v1/catalog/reports/business-volume", "catalog:manage"),
    Route("GET", "/api/v1/auth/me", None),
]  # fmt: skip

# Routes whose answer does not follow the permission table; checked one by one below.
SPECIAL = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/ready"),  # unauthenticated readiness probe, tests/core/test_observability
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/session"),
    ("DELETE", "/api/v1/auth/session"),
    ("POST", "/api/v1/auth/totp/enrol"),
    ("POST", "/api/v1/auth/totp/confirm"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/ingest/chirpstack"),
    ("POST", "/api/v1/parking/providers/{provider}/events"),  # signed, tests/parking
    ("GET", "/api/v1/parking/bays/events"),  # an endless stream, tests/parking
    ("GET", "/api/v1/incidents/public/{tenant_slug}"),  # no authentication, tests/alerts
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
        "metrics_token": SecretStr(METRICS_TOKEN),
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
        "model_id": "nwave-nps405",
        **_parking_objects(client, admin),
        "rule_id": _fresh_rule(client, admin),
        **_incident_objects(client, admin),
        **_catalog_objects(client, next(c for c in callers if c.name == "platform_admin").headers),
        "quote_id": _catalog_maker("draft")(client, admin),
        "order_id": _catalog_maker("order")(client, admin),
    }


def _parking_objects(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    """Zone Z1, bay B1, a paid session in it and an enforcement action with its photo."""
    zone = client.post("/api/v1/parking/zones", headers=admin, json={"code": "Z1", "name": "C"})
    bay = {"code": "B1", "zone": "Z1", "lat": 45.9, "lon": 6.12}
    assert zone.status_code == 201
    assert client.post("/api/v1/parking/bays", headers=admin, json=bay).status_code == 201
    action_id = _fresh_action(client, admin)
    photo = client.put(f"/api/v1/parking/enforcement/actions/{action_id}/photo", content=_png(),
                       headers={**admin, "Content-Type": "image/png"})  # fmt: skip
    assert photo.status_code == 200, photo.text
    return {"zone": "Z1", "bay": "B1", "plate": "AB-123-CD",
            "session_id": _fresh_session(client, admin), "action_id": action_id}  # fmt: skip


def _fresh_session(client: TestClient, admin: dict[str, str]) -> str:
    body = {"plate": "AB-123-CD", "zone": "Z1", "duration_minutes": 30}
    response = client.post("/api/v1/parking/sessions", headers=admin, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _fresh_action(client: TestClient, admin: dict[str, str]) -> str:
    body = {"kind": "fps", "bay": "B1", "plate": "AB-123-CD", "amount": "35.00"}
    response = client.post("/api/v1/parking/enforcement/actions", headers=admin, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _fresh_bay(client: TestClient, admin: dict[str, str]) -> str:
    code = _unique("D")
    bay = {"code": code, "zone": "Z1", "lat": 45.9, "lon": 6.12}
    assert client.post("/api/v1/parking/bays", headers=admin, json=bay).status_code == 201
    return code


_LEAK_RULE = {"name": "Fuite", "category": "leak",
              "condition": {"kind": "event", "quantity": "leak", "equals": 1}}  # fmt: skip


def _fresh_rule(client: TestClient, admin: dict[str, str]) -> str:
    response = client.post("/api/v1/alerts/rules", headers=admin, json=_LEAK_RULE)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _fresh_alert(client: TestClient, admin: dict[str, str]) -> str:
    """An open alert of a fresh rule on annecy's device (the engine's part is tested apart)."""
    rule_id = _fresh_rule(client, admin)
    with client.app.state.privileged_pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "INSERT INTO alerts (tenant_id, rule_id, subject, device_id, state, started_at,"
            " opened_at, last_seen_at) SELECT tenant_id, %s, 'device:' || id, id, 'open', now(),"
            " now(), now() FROM devices WHERE dev_eui = %s RETURNING id", (rule_id, DEV_EUI),
        ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


def _fresh_incident(client: TestClient, admin: dict[str, str]) -> str:
    """A new incident of annecy, assigned to its technician."""
    body = {"title": "Fuite chaufferie", "incident_class": "majeur"}
    created = client.post("/api/v1/incidents", headers=admin, json=body)
    assert created.status_code == 201, created.text
    incident_id = created.json()["id"]
    users = client.get("/api/v1/users", headers=admin).json()
    technician = next(u["id"] for u in users if u["email"] == "technician@annecy.fr")
    assigned = client.post(f"/api/v1/incidents/{incident_id}/assign", headers=admin,
                           json={"assignee_id": technician})  # fmt: skip
    assert assigned.status_code == 200, assigned.text
    return str(incident_id)


def _incident_objects(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    """An incident of annecy with a photo attached."""
    incident_id = _fresh_incident(client, admin)
    photo = client.post(f"/api/v1/incidents/{incident_id}/attachments", content=_png(),
                        headers={**admin, "Content-Type": "image/png"})  # fmt: skip
    assert photo.status_code == 201, photo.text
    return {"incident_id": incident_id, "attachment_id": str(photo.json()["id"])}


def _catalog_solution(slug: str) -> dict[str, Any]:
    """A valid new catalogue solution."""
    return {"slug": slug, "domain": "leak", "name_fr": "Fuites", "name_en": "Leaks",
            "device_models": [{"model": "milesight-em300-sld", "quantity": 5}],
            "rule_templates": ["leak"],
            "price_lines": [{"code": "pose", "label_fr": "Pose", "label_en": "Installation",
                             "kind": "service", "unit": "day", "unit_price": "620.00",
                             "vat_rate": "20"}]}  # fmt: skip


def _catalog_objects(client: TestClient, operator: dict[str, str]) -> dict[str, str]:
    """A catalogue solution on sale, made by the operator (the catalogue has no town)."""
    url = "/api/v1/catalog/solutions"
    created = client.post(url, headers=operator, json=_catalog_solution("fuites-annecy"))
    assert created.status_code == 201, created.text
    for status in ("certified", "available"):
        step = client.post(f"{url}/fuites-annecy/transitions", headers=operator,
                           json={"to": status, "reason": "tests"})  # fmt: skip
        assert step.status_code == 200, step.text
    return {"solution": "fuites-annecy", "version": "1"}


def _catalog_maker(made: str) -> Callable[[TestClient, dict[str, str]], str]:
    """A factory of annecy's quotes in state `made`, or of its orders (`order`), made
    through the catalogue services on the owner's connection (annecy's SIRET set)."""

    def make(client: TestClient, admin: dict[str, str]) -> str:
        with client.app.state.privileged_pool.connection() as conn:  # type: ignore[attr-defined]
            town = tenants.id_for_slug(conn, "annecy")
            conn.execute("UPDATE tenants SET siret = %s WHERE id = %s AND siret IS NULL",
                         (catalog_kit.SIRETS["annecy"], town))  # fmt: skip
            if made == "order":
                return str(catalog_kit.order_of(conn, town))
            return str(catalog_kit.quote_in_state(conn, town, made))  # type: ignore[arg-type]

    return make


def _notification_route() -> dict[str, str]:
    return {"name": "Astreinte", "channel": "email", "target": f"{_unique('astreinte')}@annecy.fr"}


def _fresh_route(client: TestClient, admin: dict[str, str]) -> str:
    response = client.post("/api/v1/notifications/routes", headers=admin,
                           json=_notification_route())  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _fresh_device(client: TestClient, admin: dict[str, str]) -> str:
    dev_eui = f"70b3d6{next(_counter):010x}"
    device = {"dev_eui": dev_eui, "model": "milesight-am103", "name": "Salle"}
    assert client.post("/api/v1/devices", headers=admin, json=device).status_code == 201
    return dev_eui


FRESH = {
    "dev_eui": _fresh_device, "bay": _fresh_bay, "session_id": _fresh_session,
    "action_id": _fresh_action, "rule_id": _fresh_rule, "alert_id": _fresh_alert,
    "route_id": _fresh_route, "incident_id": _fresh_incident,
    "draft_quote": _catalog_maker("draft"), "submitted_quote": _catalog_maker("submitted"),
    "amended_quote": _catalog_maker("amended"), "accepted_quote": _catalog_maker("accepted"),
    "order_id": _catalog_maker("order"),
}  # fmt: skip


def _expected(route: Route, caller: Caller) -> int:
    if caller.name == "anonymous":
        return 401
    if route.permission is not None and route.permission not in caller.permissions:
        return 403
    if route.town_object and caller.other_town:
        return route.other_town
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
        if route.fresh is not None:
            objects[route.fresh] = FRESH[route.maker or route.fresh](client, admin)
        path = route.path.format(**objects)
        body = route.body() if route.body else None
        if route.raw is not None:
            headers = {**caller.headers, "Content-Type": route.media_type}
            response = client.request(route.method, path, headers=headers, content=route.raw)
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
        ready = client.get("/api/v1/ready", headers=headers)  # the scheduler has not run here
        assert (ready.status_code, ready.json()["detail"]) == (503, "not ready: scheduler")
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


def test_metrics_open_to_the_metrics_token_only(client: TestClient, callers: list[Caller]) -> None:
    """/metrics is outside the API (and its document): no user or API key opens it, and the
    scraper's token opens nothing else."""
    for caller in callers:
        assert client.get("/metrics", headers=caller.headers).status_code == 401, caller.name
    scraper = bearer(METRICS_TOKEN)
    assert client.get("/metrics", headers=scraper).status_code == 200
    assert client.get("/api/v1/auth/me", headers=scraper).status_code == 401


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
