"""Rewriting the audit trail, which is otherwise append-only: pseudonymising what it says
of a plate or a person, and dropping entries past their retention.

The database refuses UPDATE and DELETE on `audit_log` unless the transaction set
`civicsense.audit_rewrite` (core_0006_privacy), and even then an UPDATE may change only
who (`actor`), what about (`target`) and `details`. Only the owner's connection has the
privileges; this module is its only user.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def allow_rewrite(conn: psycopg.Connection) -> None:
    """Let this transaction rewrite the audit trail (until it ends)."""
    conn.execute("SELECT set_config('civicsense.audit_rewrite', 'on', true)")


def entries(
    conn: psycopg.Connection,
    tenant_id: int,
    *,
    actions: Iterable[str],
    before: datetime | None = None,
) -> list[dict[str, Any]]:
    """The tenant's entries of these actions (`x.*` for a prefix), older than `before`."""
    patterns = [a.replace("*", "%") for a in actions]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, at, actor, action, target, details FROM audit_log"
            " WHERE tenant_id = %s AND action LIKE ANY(%s)"
            " AND (%s::timestamptz IS NULL OR at < %s) ORDER BY id",
            (tenant_id, patterns, before, before),
        ).fetchall()


def rewrite(
    conn: psycopg.Connection,
    entry_id: int,
    *,
    target: str | None,
    details: dict[str, Any],
    actor: str | None = None,
) -> None:
    """Replace what an entry says (its action, time and outcome stay)."""
    allow_rewrite(conn)
    conn.execute(
        "UPDATE audit_log SET target = %s, details = %s, actor = coalesce(%s, actor) WHERE id = %s",
        (target, Jsonb(details), actor, entry_id),
    )


def expire(conn: psycopg.Connection, tenant_id: int | None, before: datetime) -> int:
    """Drop the tenant's (or the operator level's, None) entries older than `before`."""
    allow_rewrite(conn)
    cur = conn.execute(
        "DELETE FROM audit_log WHERE tenant_id IS NOT DISTINCT FROM %s AND at < %s",
        (tenant_id, before),
    )
    return cur.rowcount
