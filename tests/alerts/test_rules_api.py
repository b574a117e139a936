"""Alert rules and alerts through the API: shipped defaults installed once, rules checked
before they are stored, an alert acknowledged once, deletion refused for a rule whose
alerts opened incidents, and every write in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.alerting import evaluate_readings
from alerts.rulebook import RuleBook
from alerts.rules import TEMPLATES
from core import tenants
from core.app import create_app
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.events import StoredReading
from tests.kit.identity import add_api_key, bearer

RULES = "/api/v1/alerts/rules"
EUI = "24e124136c225107"


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> dict[str, object]:
    tenant = tenants.get_or_create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    _, device = devices.register(conn, settings, tenant_id=tenant, device=DeviceCreate(
        dev_eui=EUI, model="milesight-em300-sld", name="Vestiaires"))  # fmt: skip
    manage = add_api_key(conn, tenant_id=tenant, permissions=["alerts:manage", "alerts:read"])
    read = add_api_key(conn, tenant_id=tenant, permissions=["alerts:read"])
    conn.commit()
    return {"tenant": tenant, "device": device["id"], "manage": bearer(manage),
            "read": bearer(read)}  # fmt: skip


@pytest.fixture
def client(settings: Settings, town: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_defaults_are_installed_once_and_can_be_edited(
    client: TestClient, town: dict, conn: psycopg.Connection
) -> None:
    first = client.post(f"{RULES}/defaults", headers=town["manage"])
    assert first.status_code == 200 and sorted(first.json()) == sorted(TEMPLATES)
    assert client.post(f"{RULES}/defaults", headers=town["manage"]).json() == []
    rules = client.get(RULES, headers=town["read"]).json()
    leak = next(r for r in rules if r["template"] == "leak")
    assert (leak["priority"], leak["incident_class"], leak["open_incident"]) == (
        "P0",
        "bloquant",
        True,
    )
    edited = client.patch(f"{RULES}/{leak['id']}", headers=town["manage"],
                          json={"priority": "P1", "scope": {"site": "Gymnase"}})  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert edited.json()["priority"] == "P1" and edited.json()["scope"]["site"] == "Gymnase"
    assert edited.json()["updated_at"] > leak["updated_at"]
    actions = [row[0] for row in conn.execute(
        "SELECT action FROM audit_log WHERE action LIKE 'alerts.rule.%%' ORDER BY id")]  # fmt: skip
    assert actions.count("alerts.rule.create") == len(TEMPLATES)
    assert actions[-1] == "alerts.rule.update"


@pytest.mark.parametrize("change", [
    {"condition": {"kind": "threshold", "quantity": "co2", "value": 1000, "clear_value": 1200}},
    {"open_incident": True},  # the rule has no incident class
    {"name": None},
    {"condition": {"kind": "threshold", "quantity": "co2", "value": 1e12}},
])  # fmt: skip
def test_an_inconsistent_change_is_refused_and_changes_nothing(
    client: TestClient, town: dict, change: dict
) -> None:
    body = {"name": "CO2", "category": "air",
            "condition": {"kind": "threshold", "quantity": "co2", "value": 1500}}  # fmt: skip
    created = client.post(RULES, headers=town["manage"], json=body).json()
    refused = client.patch(f"{RULES}/{created['id']}", headers=town["manage"], json=change)
    assert refused.status_code == 422
    assert client.get(f"{RULES}/{created['id']}", headers=town["read"]).json() == created


def test_an_alert_is_acknowledged_once_and_a_rule_with_incidents_is_kept(
    client: TestClient, town: dict, conn: psycopg.Connection
) -> None:
    client.post(f"{RULES}/defaults", headers=town["manage"])
    leak = StoredReading(datetime.now(UTC), town["tenant"], town["device"], EUI,
                         "milesight-em300-sld", "leak", 1)  # fmt: skip
    conn.execute("INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
                 " VALUES (%s, %s, %s, 'leak', 1)",
                 (leak.time, leak.tenant_id, leak.device_id))  # fmt: skip
    with conn.transaction():
        evaluate_readings(conn, RuleBook(), [leak])
    conn.commit()
    (alert,) = client.get("/api/v1/alerts?state=open", headers=town["read"]).json()
    assert alert["device"] == "Vestiaires" and alert["incident_id"] is not None
    acknowledged = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=town["manage"])
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_at"]
    again = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=town["manage"])
    assert again.status_code == 409
    refused = client.delete(f"{RULES}/{alert['rule_id']}", headers=town["manage"])
    assert refused.status_code == 409 and "disable" in refused.json()["detail"]
    disabled = client.patch(f"{RULES}/{alert['rule_id']}", headers=town["manage"],
                            json={"enabled": False})  # fmt: skip
    assert disabled.json()["enabled"] is False
    assert client.get("/api/v1/alerts/999999", headers=town["read"]).status_code in (404, 405)
