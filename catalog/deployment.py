"""Deployment: what an order installs in its town, and a town's configuration promoted
into the catalogue.

Ordering a solution deploys it in the order's transaction (`deploy`): the town gets the
alert rules of each ordered version and an onboarding checklist of the devices to install,
how many of which model. The checklist stores only what was ordered; how far the
installation has gone is computed when it is read (`checklist`) from the town's device
registry, so it is ticked off as technicians register devices without any hook into the
devices package and with no counter that could get out of step with the registry.

The other way round, `promote` turns a town's working configuration (its device models and
enabled alert rules) into a new, proposed catalogue solution: a one-off project becomes a
catalogue item that other towns may order once the operator has priced and certified it.

The town's devices and rules are read with an explicit `tenant_id` filter, so these
functions give the same answer on a town's connection (row-level security) and on the
operator's privileged one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from alerts import rule_service
from alerts.rules import TEMPLATES, RuleSpec
from core import audit
from core.audit import Actor
from devices import device_models

from . import orders, solutions
from .documents import NotFound
from .models import DOMAIN_CODE, SLUG, PriceLineIn, ShortText, SolutionCreate

_VERSION_CONTENT = """
SELECT rule_templates, device_models FROM catalog_solution_versions
WHERE solution_id = %s AND version = %s
"""
_TOWN_RULES = f"""
SELECT template, {", ".join(RuleSpec.model_fields)} FROM alert_rules
WHERE tenant_id = %s ORDER BY id
"""
_INSERT_ITEM = """
INSERT INTO catalog_checklist_items (tenant_id, order_id, solution_id, solution_version,
    device_model, quantity)
VALUES (%s, %s, %s, %s, %s, %s)
"""
_ORDER = "SELECT id, number FROM catalog_orders WHERE id = %s AND tenant_id = %s"
# Every item of the town for the models of one order, oldest order first: the order in
# which registered devices are allocated to items.
_ITEMS = """
SELECT i.id, i.order_id, i.device_model, i.quantity, i.solution_version,
       s.slug AS solution, o.created_at AS ordered_at
FROM catalog_checklist_items i
JOIN catalog_orders o ON o.id = i.order_id
JOIN catalog_solutions s ON s.id = i.solution_id
WHERE i.tenant_id = %s
  AND i.device_model IN (SELECT device_model FROM catalog_checklist_items WHERE order_id = %s)
ORDER BY o.created_at, o.id, i.id
"""
_LIVE_DEVICES = """
SELECT model, created_at FROM devices
WHERE tenant_id = %s AND model = ANY(%s) AND status <> 'decommissioned' AND created_at >= %s
ORDER BY created_at, id
"""
_DEVICE_COUNTS = """
SELECT model, count(*) AS devices FROM devices
WHERE tenant_id = %s AND status <> 'decommissioned'
GROUP BY model ORDER BY model
"""


# --- deployment of an order ------------------------------------------------------------------


@dataclass(frozen=True)
class _TownRule:
    """One of the town's rules, and the shipped template it was made from (if any)."""

    template: str | None
    spec: RuleSpec


def _town_rules(conn: psycopg.Connection, tenant_id: int) -> list[_TownRule]:
    """The town's rules (enabled or not) as specs, with the template each was made from."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_TOWN_RULES, (tenant_id,)).fetchall()
    return [
        _TownRule(
            row["template"], RuleSpec.model_validate({k: row[k] for k in RuleSpec.model_fields})
        )
        for row in rows
    ]


def _install_rules(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, wanted: Iterable[str | dict[str, Any]]
) -> list[str]:
    """Create the rules of `wanted` (template ids or RuleSpec objects) the town lacks; what
    was created (template ids, and the names of full rules).

    A template the town already has is skipped even when the town disabled or edited it
    (the town's choice stands; the database allows one rule per template). A full rule is
    skipped when an identical rule is enabled. A template id this platform no longer ships
    (an old version's) is skipped: there is nothing to create it from.
    """
    rule_service.lock_templates(conn, tenant_id)
    existing = _town_rules(conn, tenant_id)
    templates = {rule.template for rule in existing if rule.template is not None}
    enabled = [rule.spec for rule in existing if rule.spec.enabled]
    created: list[str] = []
    for item in wanted:
        if isinstance(item, str):
            if item in templates or item not in TEMPLATES:
                continue
            rule_service.create_rule(conn, actor, tenant_id, TEMPLATES[item], template=item)
            templates.add(item)
            created.append(item)
        else:
            spec = RuleSpec.model_validate(item)
            if spec in enabled:
                continue
            rule_service.create_rule(conn, actor, tenant_id, spec)
            enabled.append(spec)
            created.append(spec.name)
    return created


def _devices_to_install(
    ordered: orders.OrderedSolution, typical: list[dict[str, Any]]
) -> dict[str, int]:
    """How many devices of each model the order installs for one solution.

    The ordered hardware lines per device say it (a fractional quantity is rounded up: a
    device is installed whole). A solution ordered without such a line (services and a
    subscription only, say) falls back to its version's typical deployment, the
    `device_models` quantities; models without a typical quantity are left out.
    """
    counts = ordered.devices()
    if counts:
        return {model: math.ceil(quantity) for model, quantity in counts.items()}
    return {use["model"]: use["quantity"] for use in typical if use.get("quantity")}


def deploy(conn: psycopg.Connection, actor: Actor, tenant_id: int, order_id: int) -> None:
    """Give the town what its new order sets up: for each ordered solution version, its
    alert rules (`_install_rules`) and the checklist items of the devices to install
    (`_devices_to_install`). Called by `orders.create` in the order's transaction, audited."""
    rules: list[str] = []
    checklist: dict[str, int] = {}
    with conn.transaction():
        for ordered in orders.created_solution_lines(conn, order_id):
            row = conn.execute(_VERSION_CONTENT, (ordered.solution_id, ordered.version)).fetchone()
            assert row is not None  # a quote line's version exists (foreign key)
            rule_templates, typical = row
            rules += _install_rules(conn, actor, tenant_id, rule_templates)
            to_install = _devices_to_install(ordered, typical)
            with conn.cursor() as cur:
                cur.executemany(
                    _INSERT_ITEM,
                    [
                        (tenant_id, order_id, ordered.solution_id, ordered.version, model, count)
                        for model, count in to_install.items()
                    ],
                )
            for model, count in to_install.items():
                checklist[model] = checklist.get(model, 0) + count
        audit.record(
            conn,
            actor,
            "catalog.order.deploy",
            target=f"order:{order_id}/deployment",
            tenant_id=tenant_id,
            details={"rules": rules, "checklist": checklist},
        )


# --- the checklist ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    """Devices of one model to install for one ordered solution, and how many are in."""

    solution: str
    solution_version: int
    model: str
    model_name: str
    quantity: int
    registered: int
    remaining: int
    complete: bool


@dataclass(frozen=True)
class Checklist:
    """An order's onboarding checklist; complete when every item is."""

    order_id: int
    order_number: str
    complete: bool
    items: list[ChecklistItem]


def _model_name(model: str) -> str:
    try:
        return device_models.get(model).name
    except device_models.UnknownModel:  # a model since removed from the platform
        return model


def _allocate(items: list[dict[str, Any]], devices: list[dict[str, Any]]) -> dict[int, int]:
    """How many devices count towards each item (by item id).

    Each device, in registration order, ticks the oldest item of its model that is not
    full and whose order was placed at or before the device's registration (items come
    oldest order first). A device therefore counts once, and two orders of the same model
    are filled one after the other rather than both ticked by the same devices.
    """
    filled = {item["id"]: 0 for item in items}
    for device in devices:
        for item in items:
            if (
                item["device_model"] == device["model"]
                and item["ordered_at"] <= device["created_at"]
                and filled[item["id"]] < item["quantity"]
            ):
                filled[item["id"]] += 1
                break
    return filled


def checklist(conn: psycopg.Connection, *, tenant_id: int, order_id: int) -> Checklist:
    """The order's checklist with its progress, computed now; NotFound for an order that
    is not the town's.

    Progress rule: a device counts when it is the town's, of the item's model, not
    decommissioned, and registered at or after the order was placed (devices installed
    before belong to earlier projects). Devices are allocated first come, first served
    across the town's orders, oldest order first (`_allocate`): with two orders of 3
    sensors each, the first 3 sensors registered after the first order tick it, the next
    3 the second. A decommissioned device stops counting, so its replacement is expected.
    """
    order = conn.execute(_ORDER, (order_id, tenant_id)).fetchone()
    if order is None:
        raise NotFound(f"no order {order_id}")
    with conn.cursor(row_factory=dict_row) as cur:
        items = cur.execute(_ITEMS, (tenant_id, order_id)).fetchall()
        devices = []
        if items:
            models = sorted({item["device_model"] for item in items})
            since = min(item["ordered_at"] for item in items)
            devices = cur.execute(_LIVE_DEVICES, (tenant_id, models, since)).fetchall()
    filled = _allocate(items, devices)
    mine = [
        ChecklistItem(
            solution=item["solution"],
            solution_version=item["solution_version"],
            model=item["device_model"],
            model_name=_model_name(item["device_model"]),
            quantity=item["quantity"],
            registered=filled[item["id"]],
            remaining=item["quantity"] - filled[item["id"]],
            complete=filled[item["id"]] == item["quantity"],
        )
        for item in items
        if item["order_id"] == order_id
    ]
    return Checklist(order[0], order[1], all(item.complete for item in mine), mine)


# --- promotion of a town's configuration ----------------------------------------------------


class TownSolution(BaseModel):
    """What the operator says of a solution made from a town's configuration; its device
    models and rules come from the town. Without price lines, each device model gets a
    hardware line at 0.00 € for the typical count, to be priced (PATCH) before the
    solution is certified."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, Field(pattern=SLUG)]
    domain: Annotated[str, Field(pattern=DOMAIN_CODE)]
    name_fr: ShortText
    name_en: ShortText
    description_fr: str = ""
    description_en: str = ""
    price_lines: list[PriceLineIn] | None = None


def _as_catalogue_rule(rule: _TownRule) -> str | dict[str, Any]:
    """A template id when the rule is its template unchanged, else the rule itself."""
    if rule.template is not None and TEMPLATES.get(rule.template) == rule.spec:
        return rule.template
    return rule.spec.model_dump(mode="json")


def _unpriced_lines(device_uses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One hardware line per device model counted, at 0.00 €, to be priced."""
    return [
        {
            "code": use["model"],
            "label_fr": _model_name(use["model"]),
            "label_en": _model_name(use["model"]),
            "kind": "hardware",
            "unit": "device",
            "unit_price": "0.00",
            "vat_rate": "20",
            "device_model": use["model"],
            "typical_quantity": use["quantity"],
        }
        for use in device_uses
        if use["quantity"] is not None
    ]


def promote(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, body: TownSolution
) -> dict[str, Any]:
    """A new proposed solution from the town's configuration (see `TownSolution`).

    Device models: those of the town's devices that are not decommissioned, with their
    count as the typical quantity, plus any model an enabled rule watches without the
    town having such a device (no typical quantity), so that the rule stays valid.
    Rules: the enabled ones, as template ids when unchanged from their template, each
    once. The content is checked and written by `solutions.create` (Conflict, Invalid,
    pydantic's ValidationError); audited for the town too.
    """
    town = conn.execute("SELECT slug FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    assert town is not None  # the caller resolved the town (X-Tenant)
    with conn.cursor(row_factory=dict_row) as cur:
        counts = {row["model"]: row["devices"] for row in cur.execute(_DEVICE_COUNTS, (tenant_id,))}
    rules = [rule for rule in _town_rules(conn, tenant_id) if rule.spec.enabled]
    watched = {rule.spec.scope.model for rule in rules if rule.spec.scope.model is not None}
    uses = [{"model": model, "quantity": count} for model, count in counts.items()]
    uses += [{"model": model, "quantity": None} for model in sorted(watched - counts.keys())]
    catalogue_rules: list[str | dict[str, Any]] = []
    for rule in map(_as_catalogue_rule, rules):
        if rule not in catalogue_rules:  # a rule the town wrote twice is offered once
            catalogue_rules.append(rule)
    given = body.model_dump(mode="json")
    if given["price_lines"] is None:
        given["price_lines"] = _unpriced_lines(uses)
    content = SolutionCreate.model_validate(
        {
            **given,
            "device_models": uses,
            "rule_templates": catalogue_rules,
            "change_reason": f"Promue depuis la configuration de {town[0]}",
        }
    )
    with conn.transaction():
        created = solutions.create(conn, actor, content)
        audit.record(
            conn,
            actor,
            "catalog.solution.promote",
            target=body.slug,
            tenant_id=tenant_id,
            details={"devices": counts, "rules": len(rules)},
        )
    return created
