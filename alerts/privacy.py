"""Personal data of alerts and incidents: who acted on an incident (users, by e-mail), who
was notified (e-mail targets), and the contact of whoever asked for one (a resident, an
elected official: `requester`).

A person's erasure request replaces their e-mail in the history and attachments (core does
that from `user_columns`) and, where they asked for an incident, their contact: the name
becomes "erased" and the e-mail and phone are removed; the incident itself stays. Every
query filters on the tenant: this runs on the owner's connection.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.privacy import Context, Found, Privacy, Processing, Subject, UserColumn

_REQUESTED = "FROM incidents WHERE tenant_id = %s AND lower(requester ->> 'email') = %s"


def find(conn: psycopg.Connection, ctx: Context, subject: Subject) -> list[Found]:
    """The incidents a person asked for."""
    if subject.kind != "user":
        return []
    row = conn.execute(
        f"SELECT count(*), min(opened_at), max(opened_at) {_REQUESTED}",
        (ctx.tenant_id, subject.value),
    ).fetchone()
    return [Found("incidents.requester", row[0], row[1], row[2])] if row and row[0] else []


def export(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, Any]:
    """The incidents a person asked for, with the contact they gave."""
    if subject.kind != "user":
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT id, title, opened_at, state, requester {_REQUESTED} ORDER BY id",
            (ctx.tenant_id, subject.value),
        ).fetchall()
    return {"incidents.requester": rows} if rows else {}


def erase(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, int]:
    """Anonymise the contact of the incidents a person asked for."""
    if subject.kind != "user":
        return {}
    updated = conn.execute(
        "UPDATE incidents SET requester = (requester - 'email' - 'phone')"
        " || jsonb_build_object('name', 'erased')"
        " WHERE tenant_id = %s AND lower(requester ->> 'email') = %s",
        (ctx.tenant_id, subject.value),
    )
    return {"incidents.requester": updated.rowcount}


PRIVACY = Privacy(
    processings=(
        Processing(
            name="Incidents and requests",
            purpose="Track faults and requests about the town's equipment to their resolution"
            " within the service levels, and answer whoever asked",
            legal_basis="Public task (GDPR art. 6(1)(e))",
            data_subjects=("residents and elected officials who ask", "staff who act"),
            data_categories=("name, e-mail and phone of the requester", "who did what, when"),
            recipients=("town services handling incidents", "their maintenance contractors"),
            retention=(("audit of actions on incidents", "audit_retention_days"),),
            security=(
                "row-level security per town in PostgreSQL",
                "requester shown only to holders of alerts:read, never in the public list,"
                " the audit trail or logs",
            ),
        ),
    ),
    user_columns=(
        UserColumn("incident_events", "actor", "at"),
        UserColumn("incident_attachments", "uploaded_by", "uploaded_at"),
        UserColumn("notifications", "target", "created_at"),
        UserColumn("notification_routes", "target", "created_at"),
        UserColumn("notification_digests", "target", "sent_at"),
    ),
    find=find,
    export=export,
    erase=erase,
)
