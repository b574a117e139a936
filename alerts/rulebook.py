"""Tenants' enabled rules, loaded from the database and kept per process.

The engine evaluates every committed batch of readings, so reading the rules each time would
cost a query per batch and tenant. A tenant's rules are reloaded only when its fingerprint
(number of rules, latest update) changed: one small query per batch for all its tenants.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from pydantic import TypeAdapter

from .rules import Condition, RuleSpec, Scope

_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)

_FINGERPRINTS = """
SELECT tenant_id, count(*), max(updated_at) FROM alert_rules
WHERE tenant_id = ANY(%s) GROUP BY tenant_id
"""
_RULES = """
SELECT id, tenant_id, name, category, condition, scope, incident_class, priority,
       open_incident, enabled
FROM alert_rules WHERE tenant_id = ANY(%s) AND enabled ORDER BY id
"""


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule."""

    id: int
    tenant_id: int
    spec: RuleSpec


def rule_from_row(row: tuple) -> Rule:
    """A Rule from the columns of `_RULES`."""
    rule_id, tenant_id, name, category, condition, scope, klass, priority, opens, enabled = row
    spec = RuleSpec(
        name=name, category=category, condition=_CONDITION.validate_python(condition),
        scope=Scope.model_validate(scope), incident_class=klass, priority=priority,
        open_incident=opens, enabled=enabled,
    )  # fmt: skip
    return Rule(rule_id, tenant_id, spec)


def enabled_rules(conn: psycopg.Connection, tenant_ids: Iterable[int]) -> list[Rule]:
    """The enabled rules of these tenants, by id."""
    return [rule_from_row(row) for row in conn.execute(_RULES, (list(tenant_ids),))]


@dataclass
class _TenantRules:
    fingerprint: tuple[int, datetime | None]
    by_quantity: dict[str, list[Rule]] = field(default_factory=dict)


class RuleBook:
    """Reading rules (threshold, event, rate) by tenant and quantity, reloaded on change."""

    def __init__(self) -> None:
        self._tenants: dict[int, _TenantRules] = {}
        self._lock = threading.Lock()

    def for_tenants(
        self, conn: psycopg.Connection, tenant_ids: set[int]
    ) -> dict[int, dict[str, list[Rule]]]:
        """Tenant → quantity → its enabled reading rules."""
        prints = {t: (n, at) for t, n, at in conn.execute(_FINGERPRINTS, (list(tenant_ids),))}
        with self._lock:
            stale = {t for t in tenant_ids
                     if t not in self._tenants
                     or self._tenants[t].fingerprint != prints.get(t, (0, None))}  # fmt: skip
        if stale:
            grouped: dict[int, dict[str, list[Rule]]] = {t: defaultdict(list) for t in stale}
            for rule in enabled_rules(conn, stale):
                quantity = getattr(rule.spec.condition, "quantity", None)
                if quantity is not None:
                    grouped[rule.tenant_id][quantity].append(rule)
            with self._lock:
                for tenant_id, rules in grouped.items():
                    fingerprint = prints.get(tenant_id, (0, None))
                    self._tenants[tenant_id] = _TenantRules(fingerprint, dict(rules))
        with self._lock:
            return {t: self._tenants[t].by_quantity for t in tenant_ids}
