"""The audit trail: every write, every login and every read of personal data.

Rows are appended in the same transaction as the action they describe (a rolled-back
action leaves no trace, a committed one always does); the table refuses UPDATE and
DELETE at the database level, and the application role may only read its tenant's rows.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

Outcome = Literal["success", "failure", "denied"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, an API key, the command line, an anonymous caller, the system."""

    kind: Literal["user", "api_key", "cli", "anonymous", "system"]
    label: str
    id: int | None = None
    tenant_id: int | None = None
    source: str | None = None


def cli_actor() -> Actor:
    """The operator at the command line (operating-system user name)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor("cli", f"cli:{name}", source="cli")


def record(
    conn: psycopg.Connection,
    actor: Actor,
    action: str,
    *,
    target: str | None = None,
    outcome: Outcome = "success",
    tenant_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry; `tenant_id` defaults to the actor's."""
    conn.execute(
        "INSERT INTO audit_log (tenant_id, actor_kind, actor_id, actor, action, target,"
        " outcome, source, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id if tenant_id is not None else actor.tenant_id,
            actor.kind,
            actor.id,
            actor.label,
            action,
            target,
            outcome,
            actor.source,
            Jsonb(details or {}),
        ),
    )


class AuditEntry(BaseModel):
    """One line of the audit trail."""

    id: int
    at: datetime
    tenant_id: int | None
    actor_kind: str
    actor: str
    action: str
    target: str | None
    outcome: str
    source: str | None
    details: dict[str, Any]


_SEARCH = """
SELECT id, at, tenant_id, actor_kind, actor, action, target, outcome, source, details
FROM audit_log
WHERE (%(action)s::text IS NULL OR action = %(action)s OR action LIKE %(action)s || '.%%')
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY id DESC
LIMIT %(limit)s
"""


def search(
    conn: psycopg.Connection,
    *,
    action: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries the connection may see, newest first; `action` matches a prefix too."""
    params = {
        "action": action,
        "actor": actor,
        "outcome": outcome,
        "since": since,
        "until": until,
        "before_id": before_id,
        "limit": limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SEARCH, params).fetchall()


def recent_failures_from(conn: psycopg.Connection, source: str, *, minutes: int) -> int:
    """Failed logins from one address in the last `minutes` (throttling)."""
    row = conn.execute(
        "SELECT count(*) FROM audit_log WHERE outcome = 'failure' AND action = 'auth.login'"
        " AND source = %s AND at > now() - make_interval(mins => %s)",
        (source, minutes),
    ).fetchone()
    return int(row[0]) if row else 0
