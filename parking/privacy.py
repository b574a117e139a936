"""Personal data of parking: plates in payment sessions, operators' events, enforcement
actions and their photos, and the audit entries of plate checks and actions.

After `plate_retention_days` a plate becomes its pseudonym in each of those places (the
same plate the same pseudonym, so counts, revenue, distinct vehicles and repeat visits
do not change) and the photos, which show the plate, are deleted. After
`sessions_retention_days` sessions, events, batches and actions are deleted. A plate's
erasure request pseudonymises it at once. Every query filters on the tenant: this runs
on the owner's connection.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from core.privacy import Context, Found, Privacy, Processing, Subject, UserColumn, trail
from core.privacy.pseudonyms import is_pseudonym

from .plates import plate_key

# where a plate lives, and the instant its row counts from
_PLATE_TABLES = {
    "parking_sessions": "coalesce(stopped_at, ends_at, started_at)",
    "enforcement_actions": "created_at",
}
_PLATE_AUDIT = ("parking.plate_check", "parking.enforcement.*")
_SELECTED = """
tenant_id = %(tenant)s AND plate_key NOT LIKE 'pseudo:%%'
AND (%(key)s::text IS NULL OR plate_key = %(key)s)
AND (%(before)s::timestamptz IS NULL OR {when} < %(before)s)
"""
# an operator's event keeps the plate as typed: its key is computed as parking.plates does
_EVENT_PLATE = "body #>> '{session,plate}'"
_EVENT_KEY = f"regexp_replace(upper({_EVENT_PLATE}), '[^A-Z0-9]', '', 'g')"
_EVENTS = f"""
SELECT id, {_EVENT_KEY} FROM parking_provider_events
WHERE tenant_id = %(tenant)s AND {_EVENT_PLATE} NOT LIKE 'pseudo:%%'
  AND (%(key)s::text IS NULL OR {_EVENT_KEY} = %(key)s)
  AND (%(before)s::timestamptz IS NULL OR occurred_at < %(before)s OR session_id IN (
       SELECT id FROM parking_sessions WHERE tenant_id = %(tenant)s AND plate_key LIKE 'pseudo:%%'))
"""
_RENAME_EVENTS = """
UPDATE parking_provider_events e SET body = jsonb_set(e.body, '{session,plate}', to_jsonb(m.p))
FROM unnest(%s::bigint[], %s::text[]) AS m(i, p) WHERE e.tenant_id = %s AND e.id = m.i
"""


def _params(ctx: Context, key: str | None, before: datetime | None) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "key": key, "before": before}


def _pseudonymise(
    conn: psycopg.Connection, ctx: Context, *, key: str | None, before: datetime | None
) -> dict[str, int]:
    """Turn the plates (one plate's `key`, or all those older than `before`) into their
    pseudonyms everywhere; how many rows changed per place."""
    params = _params(ctx, key, before)
    counts = {}
    for table, when in _PLATE_TABLES.items():
        where = sql.SQL(_SELECTED).format(when=sql.SQL(when))
        keys = [row[0] for row in conn.execute(
            sql.SQL("SELECT DISTINCT plate_key FROM {} WHERE ").format(sql.Identifier(table))
            + where, params).fetchall()]  # fmt: skip
        counts[table] = conn.execute(
            sql.SQL("UPDATE {} SET plate = m.p, plate_key = m.p FROM unnest(%(keys)s::text[],"
                    " %(pseudonyms)s::text[]) AS m(k, p) WHERE plate_key = m.k AND ").format(
                sql.Identifier(table)) + where,
            {**params, "keys": keys, "pseudonyms": [ctx.pseudonym(k) for k in keys]},
        ).rowcount if keys else 0  # fmt: skip
    events = conn.execute(_EVENTS, params).fetchall()
    pseudonyms = [ctx.pseudonym(k) for _, k in events]
    conn.execute(_RENAME_EVENTS, ([i for i, _ in events], pseudonyms, ctx.tenant_id))
    counts["parking_provider_events"] = len(events)
    counts["enforcement_action_photos"] = conn.execute(
        "DELETE FROM enforcement_action_photos p USING enforcement_actions a"
        " WHERE p.action_id = a.id AND p.tenant_id = %(tenant)s AND a.tenant_id = %(tenant)s"
        " AND (%(key)s::text IS NULL OR a.plate_key = %(key)s OR a.plate_key = %(pseudo)s)"
        " AND (%(before)s::timestamptz IS NULL OR a.created_at < %(before)s)",
        {**params, "pseudo": ctx.pseudonym(key) if key else None},
    ).rowcount
    counts["audit_log"] = _pseudonymise_audit(conn, ctx, key=key, before=before)
    return counts


def _audit_plate(entry: dict[str, Any]) -> str | None:
    """The plate an audit entry names: a check's target, an action's details."""
    if entry["action"] == "parking.plate_check":
        return entry["target"]  # type: ignore[no-any-return]
    return entry["details"].get("plate")  # type: ignore[no-any-return]


def _plate_entries(
    conn: psycopg.Connection, ctx: Context, *, key: str | None, before: datetime | None
) -> list[tuple[dict[str, Any], str]]:
    """Audit entries naming a plate in clear (that plate, or older than `before`)."""
    found = []
    for entry in trail.entries(conn, ctx.tenant_id, actions=_PLATE_AUDIT, before=before):
        plate = _audit_plate(entry)
        if plate is None or is_pseudonym(plate):
            continue
        entry_key = plate_key(plate)
        if key is None or entry_key == key:
            found.append((entry, entry_key))
    return found


def _pseudonymise_audit(
    conn: psycopg.Connection, ctx: Context, *, key: str | None, before: datetime | None
) -> int:
    entries = _plate_entries(conn, ctx, key=key, before=before)
    for entry, entry_key in entries:
        pseudonym = ctx.pseudonym(entry_key)
        if entry["action"] == "parking.plate_check":
            trail.rewrite(conn, entry["id"], target=pseudonym, details=entry["details"])
        else:
            details = {**entry["details"], "plate": pseudonym}
            trail.rewrite(conn, entry["id"], target=entry["target"], details=details)
    return len(entries)


def _expire(conn: psycopg.Connection, ctx: Context, before: datetime) -> dict[str, int]:
    """Delete the sessions, events, batches and actions older than `before`."""
    params = {"tenant": ctx.tenant_id, "before": before}
    ended = "s.tenant_id = %(tenant)s AND " + _PLATE_TABLES["parking_sessions"] + " < %(before)s"
    statements = {
        "parking_provider_events.expired": "DELETE FROM parking_provider_events e USING"
        " parking_sessions s WHERE e.session_id = s.id AND e.tenant_id = %(tenant)s AND " + ended,
        "parking_sessions.expired": "DELETE FROM parking_sessions s WHERE " + ended,
        "parking_batches.expired": "DELETE FROM parking_batches"
        " WHERE tenant_id = %(tenant)s AND received_at < %(before)s",
        "enforcement_action_photos.expired": "DELETE FROM enforcement_action_photos p USING"
        " enforcement_actions a WHERE p.action_id = a.id AND p.tenant_id = %(tenant)s"
        " AND a.tenant_id = %(tenant)s AND a.created_at < %(before)s",
        "enforcement_actions.expired": "DELETE FROM enforcement_actions"
        " WHERE tenant_id = %(tenant)s AND created_at < %(before)s",
    }
    return {what: conn.execute(query, params).rowcount for what, query in statements.items()}


def retain(conn: psycopg.Connection, ctx: Context) -> dict[str, int]:
    """Pseudonymise plates past their retention, delete records past theirs."""
    settings = ctx.settings
    counts = _expire(conn, ctx, ctx.now - timedelta(days=settings.sessions_retention_days))
    plates_before = ctx.now - timedelta(days=settings.plate_retention_days)
    pseudonymised = _pseudonymise(conn, ctx, key=None, before=plates_before)
    return {**counts, **{f"{where}.pseudonymised": n for where, n in pseudonymised.items()}}


def _count(conn: psycopg.Connection, query: str, params: Any) -> tuple[int, Any, Any]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2]


def find(conn: psycopg.Connection, ctx: Context, subject: Subject) -> list[Found]:
    """Where the plate is in clear, and where its pseudonym stands for it."""
    if subject.kind != "plate":
        return []
    found = []
    for table, when in _PLATE_TABLES.items():
        pseudonymised = (f"{table} (pseudonymised)", ctx.pseudonym(subject.value))
        for label, value in ((table, subject.value), pseudonymised):
            rows, first, last = _count(conn, f"SELECT count(*), min({when}), max({when})"
                                       f" FROM {table} WHERE tenant_id = %s AND plate_key = %s",
                                       (ctx.tenant_id, value))  # fmt: skip
            if rows:
                found.append(Found(label, rows, first, last))
    params = _params(ctx, subject.value, None)
    rows, first, last = _count(conn, "SELECT count(*), min(occurred_at), max(occurred_at) FROM"
                               " parking_provider_events WHERE id IN (SELECT id FROM ("
                               + _EVENTS + ") AS e)", params)  # fmt: skip
    if rows:
        found.append(Found("parking_provider_events", rows, first, last))
    entries = [e for e, _ in _plate_entries(conn, ctx, key=subject.value, before=None)]
    if entries:
        found.append(Found("audit_log", len(entries), entries[0]["at"], entries[-1]["at"]))
    return found


_EXPORT_SESSIONS = """
SELECT s.id, s.source, s.provider, s.external_id, s.plate, z.code AS zone, b.code AS bay,
       s.started_at, s.ends_at, s.stopped_at, s.amount, s.service_amount, s.currency
FROM parking_sessions s JOIN parking_zones z ON z.id = s.zone_id
LEFT JOIN parking_bays b ON b.id = s.bay_id
WHERE s.tenant_id = %s AND s.plate_key = ANY(%s) ORDER BY s.started_at
"""
_EXPORT_ACTIONS = """
SELECT a.id, a.kind, a.plate, b.code AS bay, z.code AS zone, a.amount, a.note, a.bay_status,
       a.agent, a.created_at, p.action_id IS NOT NULL AS has_photo
FROM enforcement_actions a LEFT JOIN parking_bays b ON b.id = a.bay_id
LEFT JOIN parking_zones z ON z.id = a.zone_id
LEFT JOIN enforcement_action_photos p ON p.action_id = a.id
WHERE a.tenant_id = %s AND a.plate_key = ANY(%s) ORDER BY a.created_at
"""


def export(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, list[Any]]:
    """The plate's sessions, operators' events, actions and the checks of it."""
    if subject.kind != "plate":
        return {}
    keys = [subject.value, ctx.pseudonym(subject.value)]
    with conn.cursor(row_factory=dict_row) as cur:
        sessions = cur.execute(_EXPORT_SESSIONS, (ctx.tenant_id, keys)).fetchall()
        actions = cur.execute(_EXPORT_ACTIONS, (ctx.tenant_id, keys)).fetchall()
        events = cur.execute(
            "SELECT provider, event_id, kind, occurred_at, body FROM parking_provider_events"
            " WHERE id IN (SELECT id FROM (" + _EVENTS + ") AS e) ORDER BY occurred_at",
            _params(ctx, subject.value, None),
        ).fetchall()
    return {"parking_sessions": sessions, "enforcement_actions": actions,
            "parking_provider_events": events}  # fmt: skip


def erase(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, int]:
    """Pseudonymise the plate now, everywhere in the tenant; its photos are deleted."""
    if subject.kind != "plate":
        return {}
    return _pseudonymise(conn, ctx, key=subject.value, before=None)


_SECURITY = (
    "row-level security per town in PostgreSQL",
    "plate lookups restricted to enforcement permissions and each one audited",
    "plates pseudonymised (HMAC-SHA256, key derived from the secret key) after retention",
    "photos re-encoded without metadata, deleted with the plate's retention",
)

PRIVACY = Privacy(
    processings=(
        Processing(
            name="Parking payment sessions",
            purpose="Collect the parking fee (redevance de stationnement) and reconcile it "
            "with the payment operators and pay stations",
            legal_basis="Public task (GDPR art. 6(1)(e)): CGCT art. L2333-87",
            data_subjects=("drivers",),
            data_categories=("licence plate", "zone and bay", "times", "amounts paid"),
            recipients=(
                "town parking service and finance",
                "payment operators (their own sessions)",
                "enforcement agents (paid or not)",
            ),
            retention=(
                ("plates in clear", "plate_retention_days"),
                ("sessions with pseudonymised plates", "sessions_retention_days"),
            ),
            security=(*_SECURITY, "operators' webhooks signed (HMAC) and replay-protected"),
        ),
        Processing(
            name="Parking enforcement",
            purpose="Check payment on the street and record FPS notices and warnings",
            legal_basis="Public task (GDPR art. 6(1)(e)): CGCT art. L2333-87 (FPS)",
            data_subjects=("drivers and vehicle holders", "enforcement agents"),
            data_categories=(
                "licence plate",
                "photo of the vehicle",
                "bay status",
                "agent",
                "FPS amount",
            ),
            recipients=("enforcement agents", "town parking service"),
            retention=(
                ("plates in clear and photos", "plate_retention_days"),
                ("actions with pseudonymised plates", "sessions_retention_days"),
                ("audit of plate checks", "audit_retention_days"),
            ),
            security=_SECURITY,
        ),
    ),
    user_columns=(
        UserColumn("enforcement_actions", "agent", "created_at"),
        UserColumn("enforcement_action_photos", "uploaded_by", "uploaded_at"),
        UserColumn("parking_batches", "received_by", "received_at"),
    ),
    find=find,
    export=export,
    erase=erase,
    retain=retain,
    plate_key=plate_key,
)
