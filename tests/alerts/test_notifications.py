"""Who is told of an incident's events: routes, users' preferences, assignees and
administrators; the outbox rows incident_event queues in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import get_args

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from alerts import digest, notify
from alerts.notification_models import Event
from core import crypto
from core.app import create_app
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer
from tests.kit.notifications import (
    OPENED,
    add_incident,
    add_route,
    add_tenant,
    outbox,
    set_preference,
)
from tests.kit.smtp import smtp_server


def test_opened_reaches_managers_but_not_viewers(conn: psycopg.Connection) -> None:
    tenant_id = add_tenant(conn)
    add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    add_user(conn, tenant_id=tenant_id, email="tech@lyon.fr", roles=["technician"])
    add_user(conn, tenant_id=tenant_id, email="viewer@lyon.fr", roles=["viewer"])
    incident_id = add_incident(conn, tenant_id)
    notify.incident_event(conn, incident_id, "opened")
    assert outbox(conn, incident_id) == {"fm@lyon.fr": "pending", "tech@lyon.fr": "pending"}
    subject, body = conn.execute(
        "SELECT subject, body FROM notifications WHERE target = 'fm@lyon.fr'"
    ).fetchone()  # type: ignore[misc]
    assert subject == "[civicsense] P0 bloquant — Fuite d'eau détectée : Gymnase Jean Moulin"
    assert f"/api/v1/incidents/{incident_id}" in body
    assert body.index("Échéance GTI") < body.index("GTI deadline")


def test_queued_under_the_application_role_in_the_callers_transaction(
    conn: psycopg.Connection, database_url: str
) -> None:
    tenant_id = add_tenant(conn)
    add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    incident_id = add_incident(conn, tenant_id)
    with psycopg.connect(database_url) as app:
        app.execute("SET ROLE civicsense_app")
        app.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id),))
        notify.incident_event(app, incident_id, "opened")
        app.rollback()
        assert outbox(conn, incident_id) == {}  # rolled back with the caller's change
        app.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id),))
        notify.incident_event(app, incident_id, "opened")
        notify.incident_event(app, incident_id, "opened")  # a second call: queued once
    assert outbox(conn, incident_id) == {"fm@lyon.fr": "pending"}


def test_event_names_agree_with_the_api_models() -> None:
    assert set(get_args(Event)) == set(notify.EVENTS)


def test_routes_filter_by_category_priority_and_event(conn: psycopg.Connection) -> None:
    tenant_id = add_tenant(conn)
    add_route(conn, tenant_id, "astreinte@lyon.fr", min_priority="P0")
    add_route(conn, tenant_id, "eau@lyon.fr", categories=["leak"])
    add_route(conn, tenant_id, "air@lyon.fr", categories=["air"])
    add_route(conn, tenant_id, "clotures@lyon.fr", events=["closed"])
    urgent_leak = add_incident(conn, tenant_id, priority="P0")
    minor_leak = add_incident(conn, tenant_id, priority="P2", incident_class="mineur")
    minor_air = add_incident(conn, tenant_id, priority="P2", category="air",
                             incident_class="mineur")  # fmt: skip
    for incident_id in (urgent_leak, minor_leak, minor_air):
        notify.incident_event(conn, incident_id, "opened")
    assert set(outbox(conn, urgent_leak)) == {"astreinte@lyon.fr", "eau@lyon.fr"}
    assert set(outbox(conn, minor_leak)) == {"eau@lyon.fr"}
    assert set(outbox(conn, minor_air)) == {"air@lyon.fr"}
    notify.incident_event(conn, minor_air, "closed")
    closed = conn.execute(
        "SELECT target FROM notifications WHERE incident_id = %s AND event = 'closed'",
        (minor_air,),
    ).fetchall()
    assert {target for (target,) in closed} == {"air@lyon.fr", "clotures@lyon.fr"}


def test_preferences_immediate_digest_off_and_filters(conn: psycopg.Connection) -> None:
    tenant_id = add_tenant(conn)
    users = {
        name: add_user(conn, tenant_id=tenant_id, email=f"{name}@lyon.fr",
                       roles=["facility_manager"])["id"]
        for name in ("now", "later", "never", "p0only", "aironly", "default")
    }  # fmt: skip
    set_preference(conn, tenant_id, users["now"], mode="immediate")
    set_preference(conn, tenant_id, users["later"], mode="digest")
    set_preference(conn, tenant_id, users["never"], mode="off")
    set_preference(conn, tenant_id, users["p0only"], min_priority="P0")
    set_preference(conn, tenant_id, users["aironly"], categories=["air"])
    incident_id = add_incident(conn, tenant_id, priority="P1", incident_class="majeur")
    notify.incident_event(conn, incident_id, "opened")
    assert outbox(conn, incident_id) == {
        "now@lyon.fr": "pending", "later@lyon.fr": "digest", "default@lyon.fr": "pending",
    }  # fmt: skip


def test_assignment_goes_to_the_assignee_whatever_their_preference(
    conn: psycopg.Connection,
) -> None:
    tenant_id = add_tenant(conn)
    manager = add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    tech = add_user(conn, tenant_id=tenant_id, email="tech@lyon.fr", roles=["technician"])
    set_preference(conn, tenant_id, tech["id"], mode="off")
    incident_id = add_incident(conn, tenant_id, assignee_id=tech["id"])
    notify.incident_event(conn, incident_id, "assigned")
    assert outbox(conn, incident_id) == {"tech@lyon.fr": "pending"}
    assert manager["id"] != tech["id"]
    # a later re-assignment, in another transaction, is another occurrence
    notify.incident_event(conn, incident_id, "assigned", details={"assignee_id": manager["id"]})
    assert outbox(conn, incident_id) == {"tech@lyon.fr": "pending", "fm@lyon.fr": "pending"}


def test_escalation_reaches_tenant_admins_even_when_they_opted_out(
    conn: psycopg.Connection,
) -> None:
    tenant_id = add_tenant(conn)
    other = add_tenant(conn, "annecy")
    admin = add_user(conn, tenant_id=tenant_id, email="admin@lyon.fr", roles=["tenant_admin"])
    add_user(conn, tenant_id=other, email="admin@annecy.fr", roles=["tenant_admin"])
    add_user(conn, tenant_id=tenant_id, email="viewer@lyon.fr", roles=["viewer"])
    set_preference(conn, tenant_id, admin["id"], mode="off")
    incident_id = add_incident(conn, tenant_id, priority="P2", incident_class="mineur")
    notify.incident_event(conn, incident_id, "opened")
    assert outbox(conn, incident_id) == {}
    notify.incident_event(conn, incident_id, "escalated", details={"milestone": "gtr"})
    assert outbox(conn, incident_id) == {"admin@lyon.fr": "pending"}


def test_sla_notice_is_queued_once_per_milestone(conn: psycopg.Connection) -> None:
    tenant_id = add_tenant(conn)
    add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    incident_id = add_incident(conn, tenant_id)
    for milestone in ("gti", "gti", "gtr"):
        notify.incident_event(conn, incident_id, "sla_breach", details={"milestone": milestone})
    subjects = conn.execute(
        "SELECT subject, body FROM notifications WHERE incident_id = %s ORDER BY id",
        (incident_id,),
    ).fetchall()
    assert len(subjects) == 2
    assert subjects[0][0].startswith("[civicsense] P0 bloquant — Délai dépassé — ")
    assert "Échéance concernée : GTI (intervention)" in subjects[0][1]


# --- digests ----------------------------------------------------------------------------


def test_digest_sent_once_a_day_after_the_users_hour(
    conn: psycopg.Connection, settings: Settings
) -> None:
    tenant_id = add_tenant(conn)
    user = add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    set_preference(conn, tenant_id, user["id"], mode="digest", digest_hour=8)
    first, second = add_incident(conn, tenant_id), add_incident(conn, tenant_id, title="CO2")
    notify.incident_event(conn, first, "opened")
    notify.incident_event(conn, second, "opened")
    conn.execute("UPDATE notifications SET created_at = %s", (OPENED,))  # 10:00 in Paris
    next_day = datetime(2026, 3, 3, 6, 59, tzinfo=UTC)  # 07:59 in Paris
    with smtp_server() as server:
        mailed = settings.model_copy(update={"smtp_url": SecretStr(server.url)})
        assert digest.send_digests(mailed, now=next_day) == 0  # before the user's hour
        assert digest.send_digests(mailed, now=next_day + timedelta(minutes=1)) == 1
        assert digest.send_digests(mailed, now=next_day + timedelta(hours=3)) == 0
        (received,) = server.messages
    assert received.rcpt_tos == ["fm@lyon.fr"]
    assert received.message["Subject"].startswith("[civicsense] Résumé du 03/03/2026 : 2 ")
    text = received.message.get_content()
    assert f"/api/v1/incidents/{first}" in text and f"/api/v1/incidents/{second}" in text
    assert set(outbox(conn, first).values()) == {"sent"}


def test_notifications_after_the_digest_hour_wait_for_the_next_day(
    conn: psycopg.Connection, settings: Settings
) -> None:
    tenant_id = add_tenant(conn)
    user = add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    set_preference(conn, tenant_id, user["id"], mode="digest", digest_hour=7)
    incident_id = add_incident(conn, tenant_id)
    notify.incident_event(conn, incident_id, "opened")
    conn.execute("UPDATE notifications SET created_at = %s", (OPENED,))  # 10:00 in Paris
    with smtp_server() as server:
        mailed = settings.model_copy(update={"smtp_url": SecretStr(server.url)})
        assert digest.send_digests(mailed, now=OPENED + timedelta(hours=2)) == 0
        assert digest.send_digests(mailed, now=OPENED + timedelta(days=1)) == 1
        assert len(server.messages) == 1


# --- the API ----------------------------------------------------------------------------


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    return add_tenant(conn)


@pytest.fixture
def client(settings: Settings, town: int) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_webhook_secret_is_write_only_and_route_changes_are_audited(
    client: TestClient, conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    manager = bearer(add_api_key(conn, tenant_id=town, permissions=["alerts:manage"]))
    route = {"name": "GMAO", "channel": "webhook", "target": "https://gmao.example.fr/hook",
             "secret": "a-very-long-shared-secret", "categories": ["leak"]}  # fmt: skip
    created = client.post("/api/v1/notifications/routes", headers=manager, json=route)
    assert created.status_code == 201, created.text
    assert created.json()["has_secret"] is True and "secret" not in created.json()
    again = client.post("/api/v1/notifications/routes", headers=manager, json=route)
    assert again.status_code == 409
    listed = client.get("/api/v1/notifications/routes", headers=manager)
    assert "a-very-long-shared-secret" not in listed.text
    stored = conn.execute("SELECT secret_encrypted FROM notification_routes").fetchone()
    assert stored is not None
    assert crypto.decrypt(settings, bytes(stored[0])) == "a-very-long-shared-secret"
    no_secret = {**route, "target": "https://other.example.fr", "secret": None}
    assert client.post("/api/v1/notifications/routes", headers=manager,
                       json=no_secret).status_code == 422  # fmt: skip
    route_id = created.json()["id"]
    deleted = client.delete(f"/api/v1/notifications/routes/{route_id}", headers=manager)
    assert deleted.status_code == 204
    gone = client.delete(f"/api/v1/notifications/routes/{route_id}", headers=manager)
    assert gone.status_code == 404
    actions = conn.execute(
        "SELECT action, details::text FROM audit_log"
        " WHERE action LIKE 'notifications.%' ORDER BY id"
    ).fetchall()
    assert [a for a, _ in actions] == ["notifications.route.create", "notifications.route.delete"]
    assert all("a-very-long" not in details for _, details in actions)


def test_each_user_sets_their_own_preference(
    client: TestClient, conn: psycopg.Connection, town: int
) -> None:
    add_user(conn, tenant_id=town, email="fm@lyon.fr", roles=["facility_manager"])
    login = client.post("/api/v1/auth/token", data={"username": "fm@lyon.fr", "password": PASSWORD})
    me = bearer(login.json()["access_token"])
    assert client.get("/api/v1/notifications/preferences", headers=me).json()["mode"] == "immediate"
    choice = {"mode": "digest", "categories": ["leak"], "min_priority": "P1", "digest_hour": 6}
    put = client.put("/api/v1/notifications/preferences", headers=me, json=choice)
    assert put.status_code == 200, put.text
    got = client.get("/api/v1/notifications/preferences", headers=me).json()
    assert {k: got[k] for k in choice} == choice
    key = bearer(add_api_key(conn, tenant_id=town, permissions=["alerts:read"]))
    assert client.get("/api/v1/notifications/preferences", headers=key).status_code == 403


def test_outbox_shows_delivery_state_but_no_secret(
    client: TestClient, conn: psycopg.Connection, town: int
) -> None:
    add_user(conn, tenant_id=town, email="fm@lyon.fr", roles=["facility_manager"])
    incident_id = add_incident(conn, town)
    notify.incident_event(conn, incident_id, "opened")
    manager = bearer(add_api_key(conn, tenant_id=town, permissions=["alerts:manage"]))
    reader = bearer(add_api_key(conn, tenant_id=town, permissions=["alerts:read"]))
    listed = client.get("/api/v1/notifications", headers=manager, params={"status": "pending"})
    assert listed.status_code == 200, listed.text
    (row,) = listed.json()
    assert (row["target"], row["status"], row["attempts"]) == ("fm@lyon.fr", "pending", 0)
    assert client.get("/api/v1/notifications", headers=reader).status_code == 403
