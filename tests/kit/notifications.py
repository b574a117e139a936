"""Towns, incidents written as the incidents service would, routes and preferences, for the
notification and scheduler tests."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from alerts import notify
from core import tenants

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def add_tenant(conn: psycopg.Connection, slug: str = "lyon") -> int:
    """A town."""
    return tenants.create(conn, tenants.TenantCreate(slug=slug, name=f"Ville de {slug}"))


def add_incident(
    conn: psycopg.Connection,
    tenant_id: int,
    *,
    title: str = "Fuite d'eau détectée",
    category: str = "leak",
    incident_class: str = "bloquant",
    priority: str = "P0",
    site: str | None = "Gymnase Jean Moulin",
    assignee_id: int | None = None,
) -> int:
    """An incident row, as the incidents service would write it."""
    row = conn.execute(
        "INSERT INTO incidents (tenant_id, title, category, incident_class, priority, source,"
        " site, assignee_id, opened_at, gti_due_at, gtr_due_at)"
        " VALUES (%s, %s, %s, %s, %s, 'user', %s, %s, %s, %s + interval '1 hour',"
        " %s + interval '4 hours') RETURNING id",
        (tenant_id, title, category, incident_class, priority, site, assignee_id, OPENED, OPENED,
         OPENED),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def outbox(conn: psycopg.Connection, incident_id: int) -> dict[str, str]:
    """Target → status of the incident's queued notifications."""
    rows = conn.execute(
        "SELECT target, status FROM notifications WHERE incident_id = %s", (incident_id,)
    ).fetchall()
    return dict(rows)


def add_route(conn: psycopg.Connection, tenant_id: int, target: str, **filters: object) -> int:
    """An e-mail route of the tenant (filters: categories, events, min_priority)."""
    route = {"name": target, "channel": "email", "target": target, "categories": [],
             "events": [], "min_priority": "P2", **filters}  # fmt: skip
    row = notify.create_route(
        conn, tenant_id=tenant_id, route=route, secret_encrypted=None, created_by=None
    )
    return int(row["id"])


def set_preference(
    conn: psycopg.Connection, tenant_id: int, user_id: int, **choice: object
) -> None:
    """A user's notification preference."""
    preference = {"mode": "immediate", "categories": [], "min_priority": "P2",
                  "digest_hour": 7, **choice}  # fmt: skip
    notify.put_preference(conn, tenant_id=tenant_id, user_id=user_id, preference=preference)
