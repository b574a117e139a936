"""Who hears of an incident's event, and the outbox rows that carry it to them.

`incident_event` runs inside the transaction that changes the incident (the incidents
service, the alert engine on the ingest path, the SLA checks): it only reads a few rows and
inserts outbox rows, never touches the network, so a dead mail server or webhook cannot slow
or break that transaction. The rows commit or roll back with the change itself, and
`NOTIFY civicsense_notify` (delivered at commit) wakes the delivery worker at once.

Recipients:
- the tenant's routes (a mailbox or a signed webhook) whose events, categories and minimum
  priority match;
- the tenant's users who may manage incidents or alerts, as their preference says
  (immediate, digest or off; categories; minimum priority);
- "assigned" goes to the assignee (always, immediately) rather than to every manager;
- "escalated" goes to the tenant administrators immediately, whatever their preference.

One occurrence of an event is queued once per destination: the unique key
(channel, target, incident, event, instance) absorbs a second call and the same address
reached through a route and a user. `instance` is "once" for an opening, the milestone for
SLA notices (sent once per milestone, as incident_events keeps them), otherwise the
transaction id: two assignments in two transactions are two occurrences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core.identity.permissions import ROLES, role_permissions

from .sla import Priority

__all__ = [
    "CHANNEL",
    "EVENTS",
    "MANAGER_PERMISSIONS",
    "Message",
    "create_route",
    "delete_route",
    "get_outbox",
    "get_preference",
    "get_routes",
    "incident_event",
    "incident_path",
    "priority_at_least",
    "put_preference",
]

#: The LISTEN/NOTIFY channel the delivery worker waits on; the payload is the tenant id.
CHANNEL = "civicsense_notify"

#: Events, with their French and English labels.
EVENTS: dict[str, tuple[str, str]] = {
    "opened": ("Nouvel incident", "New incident"),
    "assigned": ("Incident assigné", "Incident assigned"),
    "requalified": ("Incident requalifié", "Incident requalified"),
    "resolved": ("Incident résolu", "Incident resolved"),
    "closed": ("Incident clos", "Incident closed"),
    "sla_warning": ("Échéance proche", "Deadline approaching"),
    "sla_breach": ("Délai dépassé", "Deadline missed"),
    "escalated": ("Incident escaladé", "Incident escalated"),
}

#: Users holding one of these (through a role or a grant) are notified.
MANAGER_PERMISSIONS = ("incidents:manage", "alerts:manage")
ADMIN_ROLE = "tenant_admin"

_CLASSES_EN = {"bloquant": "blocking", "majeur": "major", "mineur": "minor"}
_CATEGORIES = {
    "leak": ("fuite d'eau", "water leak"),
    "air": ("qualité de l'air", "air quality"),
    "battery": ("batterie", "battery"),
    "silence": ("capteur muet", "silent sensor"),
    "gateway": ("passerelle", "gateway"),
    "parking": ("stationnement", "parking"),
    "other": ("autre", "other"),
}
_MILESTONES = {"gti": ("GTI (intervention)", "GTI (response)"),
               "gtr": ("GTR (rétablissement)", "GTR (restoration)")}  # fmt: skip
_MANAGER_ROLES = sorted(
    name for name in ROLES if role_permissions(name).intersection(MANAGER_PERMISSIONS)
)


def priority_at_least(priority: str, minimum: str) -> bool:
    """Whether `priority` is as urgent as `minimum` or more (P0 is the most urgent)."""
    order = list(Priority)
    return order.index(Priority(priority)) <= order.index(Priority(minimum))


def incident_path(incident_id: int) -> str:
    """The API path of an incident, given in every message."""
    return f"/api/v1/incidents/{incident_id}"


@dataclass(frozen=True)
class Message:
    """What every recipient of one event gets: an e-mail and a webhook payload."""

    subject: str
    body: str
    payload: dict[str, Any]


_INCIDENT = """
SELECT i.id, i.tenant_id, i.title, i.category, i.incident_class, i.priority, i.state, i.site,
       i.assignee_id, i.opened_at, i.gti_due_at, i.gtr_due_at, t.timezone
FROM incidents i JOIN tenants t ON t.id = i.tenant_id
WHERE i.id = %s
"""

_ROUTES = """
SELECT id, channel, target FROM notification_routes
WHERE tenant_id = %(tenant_id)s
  AND (events = '{}' OR %(event)s = ANY (events))
  AND (categories = '{}' OR %(category)s = ANY (categories))
  AND %(priority)s <= min_priority  -- 'P0' < 'P1' < 'P2' as text and as urgency
ORDER BY id
"""

# The tenant's users who manage incidents or alerts, its administrators and the assignee,
# with their preference (defaults without a row).
_USERS = """
SELECT u.id, u.email,
       coalesce(p.mode, 'immediate') AS mode,
       coalesce(p.categories, '{}') AS categories,
       coalesce(p.min_priority, 'P2') AS min_priority,
       EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = ANY (%(manager_roles)s))
         OR EXISTS (SELECT 1 FROM user_permissions g
                    WHERE g.user_id = u.id AND g.permission = ANY (%(permissions)s)) AS manager,
       EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = %(admin)s) AS admin
FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id
WHERE u.tenant_id = %(tenant_id)s AND u.active
ORDER BY u.id
"""  # noqa: E501

_ENQUEUE = """
INSERT INTO notifications (tenant_id, channel, target, route_id, user_id, incident_id, event,
                           instance, subject, body, payload, status)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (channel, target, incident_id, event, instance) DO NOTHING
"""


@dataclass(frozen=True)
class _Recipient:
    channel: str
    target: str
    route_id: int | None
    user_id: int | None
    status: str  # pending (immediate) or digest


def incident_event(
    conn: psycopg.Connection, incident_id: int, event: str, *, details: dict[str, Any] | None = None
) -> None:
    """Queue the notifications of `event` on the incident, in the caller's transaction.

    `details` is passed on to webhooks; the keys read here are `milestone` (SLA notices:
    "gti" or "gtr"), `assignee_id` (the new assignee, default the incident's) and
    `instance` (to tell occurrences apart explicitly). The caller sets the tenant
    (application role) or uses the owner's connection (workers).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    details = dict(details or {})
    with conn.cursor(row_factory=dict_row) as cur:
        incident = cur.execute(_INCIDENT, (incident_id,)).fetchone()
        if incident is None:
            raise ValueError(f"no incident {incident_id}")
        recipients = _recipients(cur, incident, event, details)
        if not recipients:
            return
        instance = _instance(cur, event, details)
    message = _message(incident, event, details)
    payload = json.dumps(message.payload, default=str)
    with conn.cursor() as cur:
        cur.executemany(
            _ENQUEUE,
            [
                (incident["tenant_id"], r.channel, r.target, r.route_id, r.user_id, incident_id,
                 event, instance, message.subject, message.body, payload, r.status)
                for r in recipients
            ],
        )  # fmt: skip
    if any(r.status == "pending" for r in recipients):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(incident["tenant_id"])))


def _recipients(
    cur: psycopg.Cursor[dict[str, Any]], incident: dict[str, Any], event: str, details: dict
) -> list[_Recipient]:
    """Everyone to tell, forced recipients first (the first of a duplicate address wins)."""
    tenant_id, category, priority = (incident[k] for k in ("tenant_id", "category", "priority"))
    routes = cur.execute(
        _ROUTES,
        {"tenant_id": tenant_id, "event": event, "category": category, "priority": priority},
    ).fetchall()
    users = cur.execute(
        _USERS,
        {
            "tenant_id": tenant_id,
            "manager_roles": _MANAGER_ROLES,
            "permissions": list(MANAGER_PERMISSIONS),
            "admin": ADMIN_ROLE,
        },
    ).fetchall()
    forced: list[_Recipient] = []
    chosen: list[_Recipient] = []
    assignee = details.get("assignee_id", incident["assignee_id"])
    for user in users:
        if event == "assigned":
            if user["id"] == assignee:
                forced.append(_Recipient("email", user["email"], None, user["id"], "pending"))
            continue
        if event == "escalated" and user["admin"]:
            forced.append(_Recipient("email", user["email"], None, user["id"], "pending"))
            continue
        if not user["manager"] or user["mode"] == "off":
            continue
        if user["categories"] and category not in user["categories"]:
            continue
        if not priority_at_least(priority, user["min_priority"]):
            continue
        status = "digest" if user["mode"] == "digest" else "pending"
        chosen.append(_Recipient("email", user["email"], None, user["id"], status))
    routed = [_Recipient(r["channel"], r["target"], r["id"], None, "pending") for r in routes]
    unique: dict[tuple[str, str], _Recipient] = {}
    for recipient in forced + routed + chosen:
        unique.setdefault((recipient.channel, recipient.target), recipient)
    return list(unique.values())


def _instance(cur: psycopg.Cursor[dict[str, Any]], event: str, details: dict) -> str:
    """Which occurrence of `event` this is (see the module's docstring)."""
    if "instance" in details:
        return str(details["instance"])
    if event == "opened":
        return "once"
    milestone = details.get("milestone")
    if event in ("sla_warning", "sla_breach") or (event == "escalated" and milestone):
        return str(milestone or "once")
    row = cur.execute("SELECT pg_current_xact_id()::text AS xact").fetchone()
    assert row is not None
    return f"xact:{row['xact']}"


def _when(value: datetime | None, zone: ZoneInfo, french: bool) -> str:
    if value is None:
        return "suspendue (en attente)" if french else "paused (waiting)"
    local = value.astimezone(zone)
    return local.strftime("%d/%m/%Y %H:%M" if french else "%Y-%m-%d %H:%M") + f" ({zone.key})"


def _message(incident: dict[str, Any], event: str, details: dict[str, Any]) -> Message:
    """The subject, the bilingual body (French first) and the webhook payload."""
    zone = ZoneInfo(incident["timezone"])
    event_fr, event_en = EVENTS[event]
    klass, priority = incident["incident_class"], incident["priority"]
    category_fr, category_en = _CATEGORIES.get(incident["category"], (incident["category"],) * 2)
    place = f" : {incident['site']}" if incident["site"] else ""
    heading = "" if event == "opened" else f"{event_fr} — "
    subject = f"[civicsense] {priority} {klass} — {heading}{incident['title']}{place}"
    path = incident_path(incident["id"])
    milestone = _MILESTONES.get(str(details.get("milestone")))
    site = incident["site"] or "—"
    french = [
        f"{event_fr} : incident n° {incident['id']}",
        f"Titre : {incident['title']}",
        f"Site : {site}",
        f"Catégorie : {category_fr}",
        f"Classe : {klass} — priorité {priority}",
        f"État : {incident['state']}",
        *([f"Échéance concernée : {milestone[0]}"] if milestone else []),
        f"Échéance GTI (intervention) : {_when(incident['gti_due_at'], zone, True)}",
        f"Échéance GTR (rétablissement) : {_when(incident['gtr_due_at'], zone, True)}",
        f"Lien : {path}",
    ]
    english = [
        f"{event_en}: incident #{incident['id']}",
        f"Title: {incident['title']}",
        f"Site: {site}",
        f"Category: {category_en}",
        f"Class: {_CLASSES_EN.get(klass, klass)} — priority {priority}",
        f"State: {incident['state']}",
        *([f"Deadline concerned: {milestone[1]}"] if milestone else []),
        f"GTI deadline (response): {_when(incident['gti_due_at'], zone, False)}",
        f"GTR deadline (restoration): {_when(incident['gtr_due_at'], zone, False)}",
        f"Link: {path}",
    ]
    body = "\n".join(
        [*french, "", "-- English --", "", *english, "",
         "Message automatique de civicsense / automatic message from civicsense."]
    )  # fmt: skip
    payload = {
        "event": event,
        "occurred_at": datetime.now(UTC).isoformat(),
        "incident_id": incident["id"],
        "tenant_id": incident["tenant_id"],
        "title": incident["title"],
        "category": incident["category"],
        "class": klass,
        "priority": priority,
        "state": incident["state"],
        "site": incident["site"],
        "assignee_id": details.get("assignee_id", incident["assignee_id"]),
        "opened_at": _iso(incident["opened_at"]),
        "gti_due_at": _iso(incident["gti_due_at"]),
        "gtr_due_at": _iso(incident["gtr_due_at"]),
        "link": path,
        "details": details,
    }
    return Message(subject, body, payload)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# --- the tenant's routes and its users' preferences ------------------------------------

_ROUTE_COLUMNS = """id, name, channel, target, categories, events, min_priority,
       secret_encrypted IS NOT NULL AS has_secret, created_at"""


def get_routes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The routes the connection may see, without their secrets."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_ROUTE_COLUMNS} FROM notification_routes ORDER BY id"
        ).fetchall()


def create_route(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    route: dict[str, Any],
    secret_encrypted: bytes | None,
    created_by: int | None,
) -> dict[str, Any]:
    """A new route (`route`: name, channel, target, categories, events, min_priority)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO notification_routes (tenant_id, name, channel, target, categories,"
            " events, min_priority, secret_encrypted, created_by)"
            " VALUES (%(tenant_id)s, %(name)s, %(channel)s, %(target)s, %(categories)s,"
            " %(events)s, %(min_priority)s, %(secret)s, %(created_by)s)"
            f" RETURNING {_ROUTE_COLUMNS}",
            {**route, "tenant_id": tenant_id, "secret": secret_encrypted, "created_by": created_by},
        ).fetchone()
    assert row is not None
    return row


def delete_route(conn: psycopg.Connection, route_id: int) -> dict[str, Any] | None:
    """Remove a route; its queued notifications keep their history. None if not found."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"DELETE FROM notification_routes WHERE id = %s RETURNING {_ROUTE_COLUMNS}",
            (route_id,),
        ).fetchone()


_PREFERENCE_COLUMNS = "mode, categories, min_priority, digest_hour, updated_at"


def get_preference(conn: psycopg.Connection, user_id: int) -> dict[str, Any] | None:
    """A user's preference, None while they keep the defaults."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_PREFERENCE_COLUMNS} FROM notification_preferences WHERE user_id = %s",
            (user_id,),
        ).fetchone()


def put_preference(
    conn: psycopg.Connection, *, tenant_id: int, user_id: int, preference: dict[str, Any]
) -> dict[str, Any]:
    """Set a user's preference (mode, categories, min_priority, digest_hour)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO notification_preferences (user_id, tenant_id, mode, categories,"
            " min_priority, digest_hour) VALUES (%(user_id)s, %(tenant_id)s, %(mode)s,"
            " %(categories)s, %(min_priority)s, %(digest_hour)s)"
            " ON CONFLICT (user_id) DO UPDATE SET tenant_id = excluded.tenant_id,"
            " mode = excluded.mode, categories = excluded.categories,"
            " min_priority = excluded.min_priority, digest_hour = excluded.digest_hour,"
            f" updated_at = now() RETURNING {_PREFERENCE_COLUMNS}",
            {**preference, "user_id": user_id, "tenant_id": tenant_id},
        ).fetchone()
    assert row is not None
    return row


def get_outbox(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    incident_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Queued notifications the connection may see, newest first (no bodies, no secrets)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, channel, target, user_id, incident_id, event, subject, status, attempts,"
            " next_attempt_at, last_error, created_at, sent_at FROM notifications"
            " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
            "   AND (%(incident_id)s::bigint IS NULL OR incident_id = %(incident_id)s)"
            "   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"status": status, "incident_id": incident_id, "before_id": before_id, "limit": limit},
        ).fetchall()
