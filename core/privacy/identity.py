"""core's own part: user accounts, the audit trail and sensor data.

A person's account is anonymised, not deleted: incidents, actions and audit entries keep
pointing at its id (a pseudonymous reference), while its e-mail, name and credentials go.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from . import trail
from .contract import Context, Found, Privacy, Processing, Rows, Subject

_ACCOUNT = """
SELECT id, email, display_name, active, created_at, last_login_at, password_changed_at,
       totp_secret IS NOT NULL AS totp_enabled
FROM users WHERE tenant_id = %s AND id = %s
"""
_ROLES = "SELECT role FROM user_roles WHERE user_id = %s AND tenant_id = %s ORDER BY role"
_SESSIONS = """
SELECT kind, created_at, expires_at, revoked_at, source FROM auth_sessions
WHERE user_id = %s ORDER BY created_at
"""
# entries the person made, or that name them
_THEIR_ENTRIES = """
tenant_id = %(tenant)s
AND ((actor_kind = 'user' AND actor_id = %(user)s) OR actor = %(email)s OR target = %(email)s)
"""
_THEIR_AUDIT = " FROM audit_log WHERE " + _THEIR_ENTRIES


def _rows(conn: psycopg.Connection, query: str, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _audit_params(ctx: Context, subject: Subject) -> dict[str, Any]:
    return {"tenant": ctx.tenant_id, "user": subject.user_id, "email": subject.value}


def find(conn: psycopg.Connection, ctx: Context, subject: Subject) -> list[Found]:
    """The account, its sessions and the audit entries about the person."""
    if subject.kind != "user":
        return []
    found = []
    if subject.user_id is not None:
        account = _rows(conn, _ACCOUNT, (ctx.tenant_id, subject.user_id))[0]
        found.append(Found("users", 1, account["created_at"], account["last_login_at"]))
        row = conn.execute(
            "SELECT count(*), min(created_at), max(created_at) FROM auth_sessions"
            " WHERE user_id = %s",
            (subject.user_id,),
        ).fetchone()
        if row and row[0]:
            found.append(Found("auth_sessions", row[0], row[1], row[2]))
    row = conn.execute(
        "SELECT count(*), min(at), max(at) " + _THEIR_AUDIT, _audit_params(ctx, subject)
    ).fetchone()
    if row and row[0]:
        found.append(Found("audit_log", row[0], row[1], row[2]))
    return found


def export(conn: psycopg.Connection, ctx: Context, subject: Subject) -> Rows:
    """The account (no password hash, no second-factor secret), roles, sessions, audit."""
    if subject.kind != "user":
        return {}
    rows: Rows = {}
    if subject.user_id is not None:
        rows["users"] = _rows(conn, _ACCOUNT, (ctx.tenant_id, subject.user_id))
        rows["user_roles"] = _rows(conn, _ROLES, (subject.user_id, ctx.tenant_id))
        rows["auth_sessions"] = _rows(conn, _SESSIONS, (subject.user_id,))
    rows["audit_log"] = _rows(
        conn,
        "SELECT at, actor, action, target, outcome, source, details "
        + _THEIR_AUDIT
        + " ORDER BY id",
        _audit_params(ctx, subject),
    )
    return rows


def erase(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, int]:
    """Anonymise the account (e-mail, name, credentials, sessions) and its audit trail."""
    if subject.kind != "user":
        return {}
    counts = {}
    if subject.user_id is not None:
        counts["users"] = conn.execute(
            "UPDATE users SET email = %s, display_name = NULL, password_hash = '!erased',"
            " totp_secret = NULL, totp_pending = NULL, recovery_codes = '{}', active = false"
            " WHERE tenant_id = %s AND id = %s",
            (subject.replacement, ctx.tenant_id, subject.user_id),
        ).rowcount
        conn.execute(
            "DELETE FROM user_permissions WHERE user_id = %s AND tenant_id = %s",
            (subject.user_id, ctx.tenant_id),
        )
        counts["auth_sessions"] = conn.execute(
            "UPDATE auth_sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
            (ctx.now, subject.user_id),
        ).rowcount
    trail.allow_rewrite(conn)
    counts["audit_log"] = conn.execute(
        "UPDATE audit_log SET"
        " actor = CASE WHEN actor = %(email)s OR (actor_kind = 'user' AND actor_id = %(user)s)"
        " THEN %(new)s ELSE actor END,"
        " target = CASE WHEN target = %(email)s THEN %(new)s ELSE target END WHERE "
        + _THEIR_ENTRIES,
        {**_audit_params(ctx, subject), "new": subject.replacement},
    ).rowcount
    return counts


def retain(conn: psycopg.Connection, ctx: Context) -> dict[str, int]:
    """Drop the tenant's audit entries older than the audit retention."""
    days = ctx.settings.audit_retention_days
    return {"audit_log.expired": trail.expire(conn, ctx.tenant_id, ctx.now - timedelta(days=days))}


_SECURITY_BASE = (
    "row-level security per town in PostgreSQL",
    "authenticated access with roles and permissions, optional TOTP second factor",
    "every write and every read of personal data in the audit trail",
)

PRIVACY = Privacy(
    processings=(
        Processing(
            name="User accounts",
            purpose="Give the town's and the operator's staff access to the platform",
            legal_basis="Public task (GDPR art. 6(1)(e)) of the town",
            data_subjects=("town staff", "enforcement agents", "operator staff"),
            data_categories=(
                "e-mail",
                "name",
                "roles",
                "password hash",
                "login times",
                "sessions (addresses)",
            ),
            recipients=("town administrators",),
            retention=(("audit trail of their actions", "audit_retention_days"),),
            security=(
                *_SECURITY_BASE,
                "passwords hashed with Argon2id",
                "second-factor secrets encrypted with the secret key",
            ),
        ),
        Processing(
            name="Audit trail",
            purpose="Accountability: who did what, who looked up personal data",
            legal_basis="Legal obligation of security (GDPR art. 32) and public task",
            data_subjects=("users", "vehicle owners (pseudonymised plates after retention)"),
            data_categories=("user e-mail", "source address", "action", "target"),
            recipients=("town administrators", "data protection officer"),
            retention=(("audit entries", "audit_retention_days"),),
            security=(
                *_SECURITY_BASE,
                "append-only in the database; only retention and data-subject requests rewrite it",
            ),
        ),
        Processing(
            name="Sensor data",
            purpose="Operate the town's sensors: parking occupancy, air quality, leaks",
            legal_basis="Public task (GDPR art. 6(1)(e)); no person is identified by it",
            data_subjects=("none directly (bay occupancy, room air quality)",),
            data_categories=("raw LoRaWAN uplinks", "decoded readings", "radio metadata"),
            recipients=("town staff", "facility managers"),
            retention=(
                ("raw uplinks", "raw_retention_days"),
                ("decoded readings", "readings_retention_days"),
            ),
            security=_SECURITY_BASE,
        ),
    ),
    find=find,
    export=export,
    erase=erase,
    retain=retain,
)
