"""Quotes: a town's buyer composes one from available solutions' price lines, submits it;
the operator accepts, amends or refuses it; the buyer accepts or refuses an amendment.

```
draft --submit--> submitted --operator--> accepted | refused
                             \\-> amended --buyer--> accepted | refused
```

Pricing rule: a line is priced on the *current* version of an *available* solution when it
first enters the quote, and keeps that price (a copy of the price line) for as long as it
stays on the quote, through draft edits and the operator's amendment alike. A catalogue
change therefore never alters an existing quote; a new quote is priced anew.

Every function takes the caller's `tenant_id` (None: the operator, every town) and filters
on it explicitly, on top of row-level security for the buyer's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core import audit
from core.audit import Actor

from . import money
from .commerce_models import AmendedLine, LineRequest, QuoteAnswer, QuoteCreate, QuoteUpdate
from .documents import CommerceError, Conflict, NotFound, next_number

#: the operator's calendar, for the year in document numbers
OPERATOR_TZ = ZoneInfo("Europe/Paris")

_CURRENT_PRICE_LINES = """
SELECT s.id AS solution_id, s.slug AS solution_slug, s.status AS solution_status,
       v.version AS solution_version, v.name_fr AS solution_name,
       p.id AS price_line_id, p.code, p.label_fr AS label, p.kind, p.unit, p.device_model,
       p.unit_price, p.vat_rate
FROM catalog_solutions s
JOIN catalog_solution_versions v ON v.solution_id = s.id AND v.version = s.current_version
LEFT JOIN catalog_price_lines p ON p.solution_id = s.id AND p.version = s.current_version
WHERE s.slug = ANY(%s)
"""
_QUOTES = """
SELECT q.id, q.number, q.tenant_id, t.slug AS tenant, t.name AS town, t.siret, q.status,
       q.reference, q.total_excl, q.total_vat, q.total_incl, o.id AS order_id,
       q.created_at, q.updated_at
FROM catalog_quotes q
JOIN tenants t ON t.id = q.tenant_id
LEFT JOIN catalog_orders o ON o.quote_id = q.id
WHERE (%(tenant)s::bigint IS NULL OR q.tenant_id = %(tenant)s)
  AND (%(id)s::bigint IS NULL OR q.id = %(id)s)
  AND (%(status)s::text IS NULL OR q.status = %(status)s)
ORDER BY q.created_at DESC, q.id DESC
LIMIT %(limit)s
"""
_LOCK = """
SELECT id, tenant_id, number, status FROM catalog_quotes
WHERE id = %s AND (%s::bigint IS NULL OR tenant_id = %s)
FOR UPDATE
"""
LINE_COLUMNS = (
    "position",
    "solution_id",
    "solution_version",
    "solution_slug",
    "solution_name",
    "price_line_id",
    "code",
    "label",
    "kind",
    "unit",
    "device_model",
    "unit_price",
    "vat_rate",
    "quantity",
    "discount_percent",
    "amount_excl",
)
_LINES = (
    f"SELECT {', '.join(LINE_COLUMNS)} FROM catalog_quote_lines"
    " WHERE quote_id = %s ORDER BY position"
)
_INSERT_LINE = (
    f"INSERT INTO catalog_quote_lines (tenant_id, quote_id, {', '.join(LINE_COLUMNS)})"
    f" VALUES (%s, %s, {', '.join(['%s'] * len(LINE_COLUMNS))})"
)
_EVENTS = (
    "SELECT status, reason, actor, at FROM catalog_quote_events WHERE quote_id = %s ORDER BY at, id"
)


def _target(quote_id: int) -> str:
    return f"quote:{quote_id}"


def _priced(
    conn: psycopg.Connection,
    requested: Sequence[LineRequest],
    kept: dict[tuple[str, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The requested lines priced (module docstring): a line already on the quote keeps
    its copy; a new one copies the current price line of an available solution."""
    new = {line.solution for line in requested if (line.solution, line.code) not in kept}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_CURRENT_PRICE_LINES, (sorted(new),)).fetchall()
    statuses = {row["solution_slug"]: row["solution_status"] for row in rows}
    current = {(row["solution_slug"], row["code"]): row for row in rows}
    priced = []
    for position, line in enumerate(requested, start=1):
        key = (line.solution, line.code)
        source = kept.get(key)
        if source is None:
            if line.solution not in statuses:
                raise CommerceError(f"no solution {line.solution!r} in the catalogue")
            if statuses[line.solution] != "available":
                raise Conflict(
                    f"solution {line.solution!r} is {statuses[line.solution]}, not available"
                )
            if key not in current:
                raise CommerceError(f"solution {line.solution!r} has no price line {line.code!r}")
            source = current[key]
        discount = line.discount_percent if isinstance(line, AmendedLine) else Decimal(0)
        priced.append(
            {
                **{column: source[column] for column in LINE_COLUMNS if column in source},
                "position": position,
                "quantity": line.quantity,
                "discount_percent": discount,
                "amount_excl": money.line_amount(line.quantity, source["unit_price"], discount),
            }
        )
    return priced


def _write_lines(
    conn: psycopg.Connection, quote_id: int, tenant_id: int, lines: list[dict[str, Any]]
) -> None:
    """Replace the quote's lines and store the totals recomputed from them."""
    conn.execute("DELETE FROM catalog_quote_lines WHERE quote_id = %s", (quote_id,))
    with conn.cursor() as cur:
        cur.executemany(
            _INSERT_LINE,
            [(tenant_id, quote_id, *(line[column] for column in LINE_COLUMNS)) for line in lines],
        )
    totals = money.totals((line["amount_excl"], line["vat_rate"]) for line in lines)
    conn.execute(
        "UPDATE catalog_quotes SET total_excl = %s, total_vat = %s, total_incl = %s,"
        " updated_at = now() WHERE id = %s",
        (totals.excl, totals.vat, totals.incl, quote_id),
    )


def _kept_lines(conn: psycopg.Connection, quote_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {(line["solution_slug"], line["code"]): line for line in lines_of(conn, quote_id)}


def _event(
    conn: psycopg.Connection, quote: dict[str, Any], status: str, reason: str | None, actor: Actor
) -> None:
    conn.execute(
        "INSERT INTO catalog_quote_events (tenant_id, quote_id, status, reason, actor)"
        " VALUES (%s, %s, %s, %s, %s)",
        (quote["tenant_id"], quote["id"], status, reason, actor.label),
    )


def _lock(conn: psycopg.Connection, quote_id: int, tenant_id: int | None) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        quote = cur.execute(_LOCK, (quote_id, tenant_id, tenant_id)).fetchone()
    if quote is None:
        raise NotFound(f"no quote {quote_id}")
    return quote


def lines_of(conn: psycopg.Connection, quote_id: int) -> list[dict[str, Any]]:
    """A quote's lines, in order (the caller has checked it may see the quote)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LINES, (quote_id,)).fetchall()


def vat_breakdown(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The VAT per rate of these lines (catalog.money's rule)."""
    totals = money.totals((line["amount_excl"], line["vat_rate"]) for line in lines)
    return [{"rate": s.rate, "base": s.base, "vat": s.vat} for s in totals.by_rate]


def get_all(
    conn: psycopg.Connection,
    *,
    tenant_id: int | None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Quotes of the town (or every town for the operator), newest first."""
    params = {"tenant": tenant_id, "id": None, "status": status, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_QUOTES, params).fetchall()


def get(conn: psycopg.Connection, quote_id: int, *, tenant_id: int | None) -> dict[str, Any]:
    """A quote with its lines, VAT breakdown and history, or NotFound."""
    params = {"tenant": tenant_id, "id": quote_id, "status": None, "limit": 1}
    with conn.cursor(row_factory=dict_row) as cur:
        quote = cur.execute(_QUOTES, params).fetchone()
        if quote is None:
            raise NotFound(f"no quote {quote_id}")
        quote["events"] = cur.execute(_EVENTS, (quote_id,)).fetchall()
    quote["lines"] = lines_of(conn, quote_id)
    quote["vat"] = vat_breakdown(quote["lines"])
    return quote


def create(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, data: QuoteCreate
) -> dict[str, Any]:
    """A new draft quote of the town, priced on today's catalogue."""
    lines = _priced(conn, data.lines, {})
    number = next_number(conn, "DEV", datetime.now(OPERATOR_TZ).year)
    with conn.cursor(row_factory=dict_row) as cur:
        quote = cur.execute(
            "INSERT INTO catalog_quotes (tenant_id, number, reference, created_by)"
            " VALUES (%s, %s, %s, %s) RETURNING id, tenant_id",
            (tenant_id, number, data.reference, actor.label),
        ).fetchone()
    assert quote is not None
    _write_lines(conn, quote["id"], tenant_id, lines)
    _event(conn, quote, "draft", None, actor)
    audit.record(
        conn,
        actor,
        "catalog.quote.create",
        target=_target(quote["id"]),
        tenant_id=tenant_id,
        details={"number": number, "lines": len(lines)},
    )
    return get(conn, quote["id"], tenant_id=tenant_id)


def update(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, quote_id: int, data: QuoteUpdate
) -> dict[str, Any]:
    """Change a draft's reference and/or lines."""
    quote = _lock(conn, quote_id, tenant_id)
    if quote["status"] != "draft":
        raise Conflict(f"quote {quote['number']} is {quote['status']}: only a draft changes")
    if data.reference is not None:
        conn.execute(
            "UPDATE catalog_quotes SET reference = %s, updated_at = now() WHERE id = %s",
            (data.reference, quote_id),
        )
    if data.lines is not None:
        _write_lines(
            conn, quote_id, tenant_id, _priced(conn, data.lines, _kept_lines(conn, quote_id))
        )
    details = {"number": quote["number"], "changed": sorted(data.model_fields_set)}
    audit.record(
        conn,
        actor,
        "catalog.quote.update",
        target=_target(quote_id),
        tenant_id=tenant_id,
        details=details,
    )
    return get(conn, quote_id, tenant_id=tenant_id)


def _move(
    conn: psycopg.Connection,
    actor: Actor,
    *,
    tenant_id: int | None,
    quote_id: int,
    allowed_from: frozenset[str],
    to: str,
    reason: str | None,
    lines: Sequence[AmendedLine] | None = None,
) -> dict[str, Any]:
    """One step of the workflow: check the state, apply, keep the history, audit."""
    quote = _lock(conn, quote_id, tenant_id)
    if quote["status"] not in allowed_from:
        expected = " or ".join(sorted(allowed_from))
        raise Conflict(f"quote {quote['number']} is {quote['status']}, not {expected}")
    if lines is not None:
        priced = _priced(conn, lines, _kept_lines(conn, quote_id))
        _write_lines(conn, quote_id, quote["tenant_id"], priced)
    conn.execute(
        "UPDATE catalog_quotes SET status = %s, updated_at = now() WHERE id = %s", (to, quote_id)
    )
    _event(conn, quote, to, reason, actor)
    details = {"number": quote["number"], "from": quote["status"], "reason": reason}
    audit.record(
        conn,
        actor,
        f"catalog.quote.{to}",
        target=_target(quote_id),
        tenant_id=quote["tenant_id"],
        details=details,
    )
    return get(conn, quote_id, tenant_id=tenant_id)


def submit(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, quote_id: int
) -> dict[str, Any]:
    """The buyer sends the draft to the operator."""
    return _move(
        conn,
        actor,
        tenant_id=tenant_id,
        quote_id=quote_id,
        allowed_from=frozenset({"draft"}),
        to="submitted",
        reason=None,
    )


_ANSWERS = {"accept": "accepted", "amend": "amended", "refuse": "refused"}


def answer(
    conn: psycopg.Connection,
    actor: Actor,
    *,
    tenant_id: int | None,
    quote_id: int,
    data: QuoteAnswer,
) -> dict[str, Any]:
    """The operator's answer to a submitted quote; an amendment replaces the lines (those
    kept keep their price, a discount may apply) for the buyer to accept or refuse."""
    return _move(
        conn,
        actor,
        tenant_id=tenant_id,
        quote_id=quote_id,
        allowed_from=frozenset({"submitted"}),
        to=_ANSWERS[data.decision],
        reason=data.reason,
        lines=data.lines,
    )


def decide(
    conn: psycopg.Connection,
    actor: Actor,
    *,
    tenant_id: int,
    quote_id: int,
    accept: bool,
    reason: str | None,
) -> dict[str, Any]:
    """The buyer accepts or refuses the operator's amendment."""
    return _move(
        conn,
        actor,
        tenant_id=tenant_id,
        quote_id=quote_id,
        allowed_from=frozenset({"amended"}),
        to="accepted" if accept else "refused",
        reason=reason,
    )
