"""Rules and alerts as the API serves them: list, create from a spec or a shipped template,
change, delete; list alerts and acknowledge one. Every write is audited."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core import audit
from core.audit import Actor

from .rules import TEMPLATES, RuleSpec

_RULE_COLUMNS = """id, name, category, condition, scope, incident_class, priority, open_incident,
enabled, template, created_at, updated_at"""
_ALERT_COLUMNS = """a.id, a.rule_id, r.name AS rule, r.category, a.subject, a.device_id,
d.dev_eui, d.name AS device, a.gateway_id, a.state, a.started_at, a.opened_at, a.last_seen_at,
a.repeats, a.value, a.acknowledged_at, a.acknowledged_by, a.cleared_at, a.incident_id"""


_TEMPLATE_LOCK = 0x616C7274  # advisory lock class of template installs ("alrt")


class NotFound(LookupError):
    """No such rule or alert in the tenant."""


class Conflict(ValueError):
    """The change contradicts the current state."""


def _values(spec: RuleSpec) -> tuple[Any, ...]:
    dumped = spec.model_dump(mode="json")
    condition, scope = Jsonb(dumped["condition"]), Jsonb(dumped["scope"])
    return (spec.name, spec.category, condition, scope, dumped["incident_class"],
            dumped["priority"], spec.open_incident, spec.enabled)  # fmt: skip


def rules(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The tenant's rules, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id").fetchall()


def rule(conn: psycopg.Connection, rule_id: int) -> dict[str, Any]:
    """One rule; NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = %s",
                          (rule_id,)).fetchone()  # fmt: skip
    if row is None:
        raise NotFound(f"no alert rule {rule_id}")
    return row


def create_rule(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, spec: RuleSpec,
    template: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Store a rule."""
    row = conn.execute(
        "INSERT INTO alert_rules (tenant_id, name, category, condition, scope, incident_class,"
        " priority, open_incident, enabled, template)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, *_values(spec), template),
    ).fetchone()
    assert row is not None
    audit.record(conn, actor, "alerts.rule.create", target=str(row[0]),
                 details={"name": spec.name, "template": template})  # fmt: skip
    return rule(conn, row[0])


def lock_templates(conn: psycopg.Connection, tenant_id: int) -> None:
    """Serialise the installs of template rules of one tenant until the transaction ends:
    two at once would both find a template missing, and the second would break the
    one-rule-per-template index."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s::integer)", (_TEMPLATE_LOCK, tenant_id))


def install_templates(conn: psycopg.Connection, actor: Actor, tenant_id: int) -> list[str]:
    """Add the shipped default rules the tenant does not have yet; their template ids."""
    lock_templates(conn, tenant_id)
    have = {row[0] for row in conn.execute(
        "SELECT template FROM alert_rules WHERE tenant_id = %s AND template IS NOT NULL",
        (tenant_id,))}  # fmt: skip
    added = [name for name in TEMPLATES if name not in have]
    for name in added:
        create_rule(conn, actor, tenant_id, TEMPLATES[name], template=name)
    return added


def update_rule(
    conn: psycopg.Connection, actor: Actor, rule_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change some fields of a rule; the result must still be a valid rule (ValueError)."""
    current = rule(conn, rule_id)
    spec_fields = RuleSpec.model_fields.keys()
    merged = {k: current[k] for k in spec_fields} | changes
    spec = RuleSpec.model_validate(merged)
    conn.execute(
        "UPDATE alert_rules SET name = %s, category = %s, condition = %s, scope = %s,"
        " incident_class = %s, priority = %s, open_incident = %s, enabled = %s,"
        " updated_at = clock_timestamp() WHERE id = %s",
        (*_values(spec), rule_id),
    )
    audit.record(conn, actor, "alerts.rule.update", target=str(rule_id),
                 details={"fields": sorted(changes)})  # fmt: skip
    return rule(conn, rule_id)


def delete_rule(conn: psycopg.Connection, actor: Actor, rule_id: int) -> None:
    """Delete a rule whose alerts never opened an incident (otherwise disable it: Conflict)."""
    rule(conn, rule_id)
    used = conn.execute("SELECT 1 FROM alerts WHERE rule_id = %s AND incident_id IS NOT NULL"
                        " LIMIT 1", (rule_id,)).fetchone()  # fmt: skip
    if used:
        raise Conflict(f"alert rule {rule_id} opened incidents: disable it instead")
    conn.execute("DELETE FROM alert_rules WHERE id = %s", (rule_id,))
    audit.record(conn, actor, "alerts.rule.delete", target=str(rule_id))


def alerts(
    conn: psycopg.Connection, *, state: str | None = None, rule_id: int | None = None,
    device_id: int | None = None, limit: int = 100, offset: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """The tenant's alerts, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN alert_rules r ON r.id = a.rule_id"
            " LEFT JOIN devices d ON d.id = a.device_id"
            " WHERE (%(state)s::text IS NULL OR a.state = %(state)s)"
            " AND (%(rule)s::bigint IS NULL OR a.rule_id = %(rule)s)"
            " AND (%(device)s::bigint IS NULL OR a.device_id = %(device)s)"
            " ORDER BY a.started_at DESC, a.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            {"state": state, "rule": rule_id, "device": device_id, "limit": limit,
             "offset": offset},
        ).fetchall()  # fmt: skip


def acknowledge(conn: psycopg.Connection, actor: Actor, alert_id: int) -> dict[str, Any]:
    """A user has seen the alert (once; Conflict if it is pending or already acknowledged)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT state, acknowledged_at FROM alerts WHERE id = %s FOR UPDATE",
                          (alert_id,)).fetchone()  # fmt: skip
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        if row["state"] == "pending":
            raise Conflict("a pending alert cannot be acknowledged: its condition has not lasted")
        if row["acknowledged_at"] is not None:
            raise Conflict(f"alert {alert_id} is already acknowledged")
        cur.execute("UPDATE alerts SET acknowledged_at = now(), acknowledged_by = %s WHERE id = %s",
                    (actor.id if actor.kind == "user" else None, alert_id))  # fmt: skip
        audit.record(conn, actor, "alerts.alert.acknowledge", target=str(alert_id))
        result = cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN alert_rules r ON r.id = a.rule_id"
            " LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = %s", (alert_id,),
        ).fetchone()  # fmt: skip
    assert result is not None
    return result
