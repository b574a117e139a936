"""Towns with people who work on incidents, and incidents with a controlled history, for
the incident tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from alerts import incidents
from alerts.workflow import Transition
from core import tenants
from tests.kit.identity import PASSWORD, SYSTEM, add_user, bearer

# who works in each town: e-mail local part → role
STAFF = {
    "tech": "technician",
    "tech2": "technician",
    "viewer": "viewer",
    "manager": "facility_manager",
}


def incident_town(conn: psycopg.Connection, slug: str = "annecy", *, always: bool = True) -> int:
    """A town with STAFF (`tech@<slug>.fr`...); its SLA counts every hour when `always`."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug=slug, name=slug.title()))
    for name, role in STAFF.items():
        add_user(conn, tenant_id=tenant_id, email=f"{name}@{slug}.fr", roles=[role])
    if always:
        conn.execute(
            "INSERT INTO alert_settings (tenant_id, sla_policy) VALUES (%s, %s)",
            (tenant_id, Jsonb({"calendar": "24/7"})),
        )
    return tenant_id


def user_id(conn: psycopg.Connection, email: str) -> int:
    """The id of the user with this e-mail."""
    row = conn.execute("SELECT id FROM users WHERE email = %s", (email,)).fetchone()
    assert row is not None, email
    return int(row[0])


def login(client: TestClient, email: str) -> dict[str, str]:
    """The Authorization header of a user logged in through the API."""
    form = {"username": email, "password": PASSWORD}
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def opened(
    conn: psycopg.Connection, tenant_id: int, at: datetime, *, incident_class: str = "majeur",
    steps: tuple[tuple[Transition, datetime], ...] = (), **fields: Any,
) -> int:  # fmt: skip
    """An incident opened at `at` that went through `steps` (transition, instant); its id."""
    defaults = {"title": "Fuite chaufferie", "source": "user"}
    incident_id = incidents.open_incident(
        conn, SYSTEM, tenant_id, incident_class=incident_class, opened_at=at,
        **{**defaults, **fields},
    )  # fmt: skip
    for transition, when in steps:
        incidents.transition(conn, SYSTEM, tenant_id, incident_id, transition, at=when)
    return incident_id
