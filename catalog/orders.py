"""Orders: the buyer confirms an accepted quote with the town's purchase-order number; the
operator then records delivery, invoicing and payment, each with its date, in that order.

An order keeps its quote's lines (a quote no longer changes once accepted) and copies the
town's name and SIRET as they were at order time, with the totals: the operator's
business-volume reports read orders alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from core import audit
from core.audit import Actor

from . import deployment, quotes
from .commerce_models import OrderCreate, OrderStatusChange
from .documents import Conflict, NotFound, next_number

#: each status and the one an order moves to next, with the column of that step's date
NEXT_STEP = {"ordered": "delivered", "delivered": "invoiced", "invoiced": "paid"}
DATE_OF = {
    "ordered": "ordered_on",
    "delivered": "delivered_on",
    "invoiced": "invoiced_on",
    "paid": "paid_on",
}

_ORDERS = """
SELECT o.id, o.number, o.tenant_id, t.slug AS tenant, o.quote_id, q.number AS quote_number,
       o.po_number, o.status, o.ordered_on, o.delivered_on, o.invoiced_on, o.paid_on,
       o.beneficiary_name, o.beneficiary_siret, o.total_excl, o.total_vat, o.total_incl,
       o.created_at
FROM catalog_orders o
JOIN tenants t ON t.id = o.tenant_id
JOIN catalog_quotes q ON q.id = o.quote_id
WHERE (%(tenant)s::bigint IS NULL OR o.tenant_id = %(tenant)s)
  AND (%(id)s::bigint IS NULL OR o.id = %(id)s)
  AND (%(status)s::text IS NULL OR o.status = %(status)s)
ORDER BY o.ordered_on DESC, o.id DESC
LIMIT %(limit)s
"""
_ORDERABLE = """
SELECT q.id, q.number, q.status, q.total_excl, q.total_vat, q.total_incl,
       t.name, t.siret, (now() AT TIME ZONE t.timezone)::date AS today,
       EXISTS (SELECT 1 FROM catalog_orders o WHERE o.quote_id = q.id) AS ordered
FROM catalog_quotes q JOIN tenants t ON t.id = q.tenant_id
WHERE q.id = %s AND q.tenant_id = %s
FOR UPDATE OF q
"""
_INSERT = """
INSERT INTO catalog_orders (tenant_id, quote_id, number, po_number, ordered_on,
    beneficiary_name, beneficiary_siret, total_excl, total_vat, total_incl, created_by)
VALUES (%(tenant_id)s, %(quote_id)s, %(number)s, %(po_number)s, %(ordered_on)s, %(name)s,
    %(siret)s, %(total_excl)s, %(total_vat)s, %(total_incl)s, %(created_by)s)
RETURNING id
"""
_LOCK = """
SELECT o.id, o.tenant_id, o.number, o.status, o.ordered_on, o.delivered_on, o.invoiced_on,
       o.paid_on, (now() AT TIME ZONE t.timezone)::date AS today
FROM catalog_orders o JOIN tenants t ON t.id = o.tenant_id
WHERE o.id = %s AND (%s::bigint IS NULL OR o.tenant_id = %s)
FOR UPDATE OF o
"""


def _target(order_id: int) -> str:
    return f"order:{order_id}"


def get_all(
    conn: psycopg.Connection,
    *,
    tenant_id: int | None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Orders of the town (or every town for the operator), latest order date first."""
    params = {"tenant": tenant_id, "id": None, "status": status, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_ORDERS, params).fetchall()


def get(conn: psycopg.Connection, order_id: int, *, tenant_id: int | None) -> dict[str, Any]:
    """An order with its quote's lines and VAT breakdown, or NotFound."""
    params = {"tenant": tenant_id, "id": order_id, "status": None, "limit": 1}
    with conn.cursor(row_factory=dict_row) as cur:
        order = cur.execute(_ORDERS, params).fetchone()
    if order is None:
        raise NotFound(f"no order {order_id}")
    order["lines"] = quotes.lines_of(conn, order["quote_id"])
    order["vat"] = quotes.vat_breakdown(order["lines"])
    return order


def create(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, quote_id: int, data: OrderCreate
) -> dict[str, Any]:
    """The order of an accepted quote (once), with the town's SIRET of today, deployed
    in the same transaction (`deployment.deploy`: the town's rules and checklist)."""
    with conn.cursor(row_factory=dict_row) as cur:
        quote = cur.execute(_ORDERABLE, (quote_id, tenant_id)).fetchone()
    if quote is None:
        raise NotFound(f"no quote {quote_id}")
    if quote["status"] != "accepted":
        raise Conflict(
            f"quote {quote['number']} is {quote['status']}: only an accepted one is ordered"
        )
    if quote["ordered"]:
        raise Conflict(f"quote {quote['number']} is ordered already")
    if quote["siret"] is None:
        raise Conflict("the town has no SIRET yet: the operator sets it on the tenant first")
    ordered_on = data.ordered_on or quote["today"]
    if ordered_on > quote["today"]:
        raise Conflict(f"an order date cannot be in the future ({ordered_on.isoformat()})")
    number = next_number(conn, "CMD", ordered_on.year)
    row = conn.execute(
        _INSERT,
        {
            "tenant_id": tenant_id,
            "quote_id": quote_id,
            "number": number,
            "po_number": data.po_number,
            "ordered_on": ordered_on,
            "name": quote["name"],
            "siret": quote["siret"],
            "total_excl": quote["total_excl"],
            "total_vat": quote["total_vat"],
            "total_incl": quote["total_incl"],
            "created_by": actor.label,
        },
    ).fetchone()
    assert row is not None
    audit.record(
        conn,
        actor,
        "catalog.order.create",
        target=_target(row[0]),
        tenant_id=tenant_id,
        details={"number": number, "quote": quote["number"], "po_number": data.po_number},
    )
    deployment.deploy(conn, actor, tenant_id, row[0])
    return get(conn, row[0], tenant_id=tenant_id)


def move(
    conn: psycopg.Connection,
    actor: Actor,
    *,
    tenant_id: int | None,
    order_id: int,
    data: OrderStatusChange,
) -> dict[str, Any]:
    """The operator records the order's next step and its date (today by default); a
    skipped or repeated step, or a date before the previous step's, is a Conflict."""
    with conn.cursor(row_factory=dict_row) as cur:
        order = cur.execute(_LOCK, (order_id, tenant_id, tenant_id)).fetchone()
    if order is None:
        raise NotFound(f"no order {order_id}")
    current = order["status"]
    if NEXT_STEP.get(current) != data.status:
        raise Conflict(
            f"order {order['number']} is {current}: an order moves"
            " ordered → delivered → invoiced → paid, one step at a time"
        )
    on = data.on or order["today"]
    previous: date = order[DATE_OF[current]]
    if on < previous or on > order["today"]:
        raise Conflict(
            f"the {data.status} date must be between the {current} date"
            f" ({previous.isoformat()}) and today"
        )
    conn.execute(
        sql.SQL(
            "UPDATE catalog_orders SET status = %s, {} = %s, updated_at = now() WHERE id = %s"
        ).format(sql.Identifier(DATE_OF[data.status])),
        (data.status, on, order_id),
    )
    audit.record(
        conn,
        actor,
        f"catalog.order.{data.status}",
        target=_target(order_id),
        tenant_id=order["tenant_id"],
        details={"number": order["number"], "on": on.isoformat()},
    )
    return get(conn, order_id, tenant_id=tenant_id)


@dataclass(frozen=True)
class OrderedLine:
    """One price line of an ordered solution and its quantity."""

    code: str
    kind: str
    unit: str
    device_model: str | None
    quantity: Decimal


@dataclass(frozen=True)
class OrderedSolution:
    """A solution version an order bought, with its lines: what deployment installs."""

    solution_id: int
    version: int
    slug: str
    lines: tuple[OrderedLine, ...]

    def devices(self) -> dict[str, Decimal]:
        """How many devices of each model the order bought for this solution: its hardware
        lines per device (a per-device subscription or service line buys no device)."""
        counts: dict[str, Decimal] = {}
        for line in self.lines:
            if line.device_model is not None and line.unit == "device" and line.kind == "hardware":
                counts[line.device_model] = (
                    counts.get(line.device_model, Decimal(0)) + line.quantity
                )
        return counts


def created_solution_lines(conn: psycopg.Connection, order_id: int) -> list[OrderedSolution]:
    """Per solution version of the order, the ordered lines: the hook of the deployment
    step (alert rules from the version's templates, the checklist of devices to install).
    Reads through `conn`, so a buyer's connection sees only its town's orders."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT l.solution_id, l.solution_version, l.solution_slug, l.code, l.kind,"
            " l.unit, l.device_model, l.quantity"
            " FROM catalog_orders o JOIN catalog_quote_lines l ON l.quote_id = o.quote_id"
            " WHERE o.id = %s ORDER BY l.position",
            (order_id,),
        ).fetchall()
    grouped: dict[tuple[int, int, str], list[OrderedLine]] = {}
    for row in rows:
        key = (row["solution_id"], row["solution_version"], row["solution_slug"])
        grouped.setdefault(key, []).append(
            OrderedLine(row["code"], row["kind"], row["unit"], row["device_model"], row["quantity"])
        )
    return [OrderedSolution(*key, tuple(lines)) for key, lines in grouped.items()]
