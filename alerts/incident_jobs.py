"""Scheduled incident work: the SLA notices (every minute) and the automatic closing of
resolved incidents left without a reaction (hourly).

Both run on the owner's connection across towns, which row security does not confine:
every query names its incidents' tenant. Each incident is handled in its own transaction,
so that one failing incident does not hold back the others. A notice is recorded once per
incident, milestone and kind even when two schedulers race: the unique index on
incident_events decides, and only the process whose row went in notifies.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core.audit import Actor
from core.settings import Settings

from . import incidents, notify
from .sla import AlertKind, SlaPolicy
from .workflow import AUTO_CLOSE_AFTER, IllegalTransitionError, Transition, auto_close_at

__all__ = ["SCHEDULER", "auto_close", "check_sla"]

log = logging.getLogger("civicsense.alerts.incidents")
SCHEDULER = Actor("system", "scheduler")
_NOTICE = {AlertKind.WARNING: "sla_warning", AlertKind.BREACH: "sla_breach"}

# Incidents with a clock not reached whose breach is not recorded yet: only they may
# still owe a notice (a breach comes after its clock's warning).
_WATCHED = """
SELECT i.id, i.tenant_id, i.priority, i.opened_at FROM incidents i
WHERE i.state <> 'closed' AND i.opened_at <= %(now)s
  AND EXISTS (
      SELECT 1 FROM (VALUES ('gti', i.gti_reached_at), ('gtr', i.gtr_reached_at))
                    AS m (milestone, reached_at)
      WHERE m.reached_at IS NULL AND NOT EXISTS (
          SELECT 1 FROM incident_events e
          WHERE e.incident_id = i.id AND e.kind = 'sla_breach'
            AND e.details ->> 'milestone' = m.milestone))
ORDER BY i.tenant_id, i.id
"""

_RECORD = """
INSERT INTO incident_events (tenant_id, incident_id, at, kind, actor, details)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING id
"""


def _record(
    conn: psycopg.Connection, incident: dict[str, Any], kind: str, details: dict[str, Any],
    at: datetime,
) -> bool:  # fmt: skip
    """Append a scheduler's line to the history; False when the same notice already went in."""
    row = conn.execute(
        _RECORD, (incident["tenant_id"], incident["id"], at, kind, SCHEDULER.label, Jsonb(details))
    ).fetchone()
    return row is not None


def _notices(
    conn: psycopg.Connection, incident: dict[str, Any], policy: SlaPolicy, now: datetime
) -> int:
    """Record and notify the incident's notices due by `now`; how many."""
    history = incidents.history_of(conn, incident)
    sent = 0
    for milestone, clock in incidents.clocks(policy, history, incident["priority"]).items():
        for due in clock.alerts():
            if due.at > now:
                continue
            kind = _NOTICE[due.kind]
            details = {"milestone": milestone.value, "due_at": due.at.astimezone(UTC).isoformat()}
            if not _record(conn, incident, kind, details, now):
                continue
            sent += 1
            notify.incident_event(conn, incident["id"], kind, details=details)
            if due.kind is AlertKind.BREACH:
                _record(conn, incident, "escalated", details, now)
                notify.incident_event(conn, incident["id"], "escalated", details=details)
    return sent


def check_sla(settings: Settings, now: datetime | None = None) -> int:
    """Record and notify every SLA warning and breach due by `now`, each once, a breach
    with its escalation to the town's administrators; how many notices went out."""
    moment = now or datetime.now(UTC)
    policies: dict[int, SlaPolicy] = {}
    sent = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            watched = cur.execute(_WATCHED, {"now": moment}).fetchall()
        for incident in watched:
            try:
                with conn.transaction():
                    tenant_id = incident["tenant_id"]
                    if tenant_id not in policies:
                        policies[tenant_id] = incidents.sla_policy(conn, tenant_id)
                    sent += _notices(conn, incident, policies[tenant_id], moment)
            except Exception:  # one incident's fault must not stop the others' notices
                log.exception("SLA check of incident %s failed", incident["id"])
    return sent


def auto_close(settings: Settings, now: datetime | None = None) -> int:
    """Close the resolved incidents whose 20 days without a reaction are over
    (`workflow.auto_close_at`); how many."""
    moment = now or datetime.now(UTC)
    closed = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            resolved = cur.execute(
                "SELECT id, tenant_id, resolved_at, last_reaction_at FROM incidents"
                " WHERE state = 'resolved' AND resolved_at <= %s ORDER BY id",
                (moment - AUTO_CLOSE_AFTER,),
            ).fetchall()
        for incident in resolved:
            if auto_close_at(incident["resolved_at"], incident["last_reaction_at"]) > moment:
                continue
            try:
                with conn.transaction():
                    incidents.transition(
                        conn, SCHEDULER, incident["tenant_id"], incident["id"],
                        Transition.AUTO_CLOSE, at=moment,
                    )  # fmt: skip
                closed += 1
            except IllegalTransitionError:  # reopened or closed meanwhile
                continue
            except Exception:
                log.exception("automatic closing of incident %s failed", incident["id"])
    return closed
