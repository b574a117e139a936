"""Solutions: their SQL, versions and lifecycle.

A solution row holds its slug, status and current version number; its content and price
lines live in versions that are written once (the database refuses to change them), so a
quote or an order naming (solution, version) always shows what was offered. A change makes
version N+1 from the current content and the fields given, with a required reason; a change
that changes nothing makes no version. Reads take the statuses the caller may see
(`lifecycle.BUYER_VISIBLE` for buyers, every status for the operator); what is not visible
is "not found". Writes run on the operator's connection and are audited.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core import audit
from core.audit import Actor
from devices import device_models

from . import lifecycle
from .lifecycle import Status
from .models import CENT, DomainCreate, SolutionContent, SolutionCreate, SolutionUpdate, Transition

ALL_STATUSES: frozenset[Status] = frozenset(lifecycle.STATUSES)


class NotFound(LookupError):
    """No such solution, version or domain (or not one the caller may see)."""


class Conflict(ValueError):
    """The change contradicts the current state: a taken slug, an illegal transition."""


class Invalid(ValueError):
    """The content names something the catalogue lacks (a domain)."""


_TYPICAL_TOTAL = """(
    SELECT coalesce(sum(round(l.unit_price * l.typical_quantity, 2)), 0)
    FROM catalog_price_lines l WHERE l.solution_id = v.solution_id AND l.version = v.version
)"""

_VERSION = f"""
SELECT s.id, s.slug, s.status, s.current_version, s.updated_at,
       v.version, v.domain, v.name_fr, v.name_en, v.description_fr, v.description_en,
       v.device_models, v.software_modules, v.rule_templates, v.prerequisites, v.roi,
       v.documents, v.change_reason, v.created_by, v.created_at,
       {_TYPICAL_TOTAL} AS typical_total_excl_tax
FROM catalog_solutions s
JOIN catalog_solution_versions v ON v.solution_id = s.id
WHERE s.slug = %(slug)s AND s.status = ANY(%(statuses)s)
"""

_PRICE_LINES = """
SELECT code, label_fr, label_en, kind, unit, unit_price, vat_rate, complexity, device_model,
       typical_quantity
FROM catalog_price_lines WHERE solution_id = %s AND version = %s ORDER BY id
"""

_SEARCH = f"""
SELECT s.slug, s.status, s.current_version, s.updated_at, v.domain, v.name_fr, v.name_en,
       v.device_models, t.total AS typical_total_excl_tax
FROM catalog_solutions s
JOIN catalog_solution_versions v ON v.solution_id = s.id AND v.version = s.current_version
CROSS JOIN LATERAL (SELECT {_TYPICAL_TOTAL} AS total) t
WHERE s.status = ANY(%(statuses)s)
  AND (%(domain)s::text IS NULL OR v.domain = %(domain)s)
  AND (%(models)s::text[] IS NULL OR EXISTS (
       SELECT 1 FROM jsonb_array_elements(v.device_models) used
       WHERE used ->> 'model' = ANY(%(models)s)))
  AND (%(min_price)s::numeric IS NULL OR t.total >= %(min_price)s)
  AND (%(max_price)s::numeric IS NULL OR t.total <= %(max_price)s)
  AND (%(text)s::text IS NULL
       OR v.search_vector @@ (websearch_to_tsquery('french', %(text)s)
                              || websearch_to_tsquery('english', %(text)s))
       OR concat_ws(' ', s.slug, v.name_fr, v.name_en) ILIKE %(pattern)s)
ORDER BY v.domain, v.name_fr, s.slug
LIMIT %(limit)s OFFSET %(offset)s
"""


# --- domains -------------------------------------------------------------------------------


def domains(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every use-case domain, by code."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT code, name_fr, name_en, created_at FROM catalog_domains ORDER BY code"
        ).fetchall()


def create_domain(conn: psycopg.Connection, actor: Actor, body: DomainCreate) -> dict[str, Any]:
    """Add a domain; Conflict when its code exists."""
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO catalog_domains (code, name_fr, name_en) VALUES (%s, %s, %s)"
                " RETURNING code, name_fr, name_en, created_at",
                (body.code, body.name_fr, body.name_en),
            ).fetchone()
            audit.record(conn, actor, "catalog.domain.create", target=body.code)
    except errors.UniqueViolation:
        raise Conflict(f"domain {body.code!r} exists") from None
    assert row is not None
    return row


# --- reads ---------------------------------------------------------------------------------


def _typical_total_incl_tax(lines: list[dict[str, Any]]) -> Decimal:
    """Each line's total excl. tax to the cent, plus its VAT to the cent (half up)."""
    total = Decimal(0)
    for line in lines:
        excl = (line["unit_price"] * line["typical_quantity"]).quantize(CENT, ROUND_HALF_UP)
        vat = (excl * line["vat_rate"] / 100).quantize(CENT, ROUND_HALF_UP)
        total += excl + vat
    return total


def _with_lines(conn: psycopg.Connection, row: dict[str, Any]) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        lines = cur.execute(_PRICE_LINES, (row["id"], row["version"])).fetchall()
    return {**row, "price_lines": lines, "typical_total_incl_tax": _typical_total_incl_tax(lines)}


def _version_row(
    conn: psycopg.Connection, slug: str, version: int | None, statuses: frozenset[Status]
) -> dict[str, Any]:
    query = _VERSION + (
        " AND v.version = s.current_version" if version is None else " AND v.version = %(version)s"
    )
    params = {"slug": slug, "statuses": list(statuses), "version": version}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    if row is None:
        raise NotFound(f"no solution {slug!r}" + ("" if version is None else f" version {version}"))
    return row


def solution(
    conn: psycopg.Connection, slug: str, *, statuses: frozenset[Status] = ALL_STATUSES
) -> dict[str, Any]:
    """A solution with its current version's content and price lines and its lifecycle
    history; NotFound."""
    row = _with_lines(conn, _version_row(conn, slug, None, statuses))
    with conn.cursor(row_factory=dict_row) as cur:
        row["status_changes"] = cur.execute(
            "SELECT from_status, to_status, reason, actor, at FROM catalog_status_changes"
            " WHERE solution_id = %s ORDER BY id",
            (row["id"],),
        ).fetchall()
    return row


def version(
    conn: psycopg.Connection, slug: str, number: int, *, statuses: frozenset[Status]
) -> dict[str, Any]:
    """One version of a solution as it was written; NotFound."""
    return _with_lines(conn, _version_row(conn, slug, number, statuses))


def versions(
    conn: psycopg.Connection, slug: str, *, statuses: frozenset[Status]
) -> list[dict[str, Any]]:
    """A solution's versions, oldest first; NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _VERSION + " ORDER BY v.version", {"slug": slug, "statuses": list(statuses)}
        ).fetchall()
    if not rows:
        raise NotFound(f"no solution {slug!r}")
    return rows


def _models_matching(
    device_model: str | None, quantity: str | None, vendor: str | None
) -> list[str] | None:
    """The device models a solution must use one of; None: no device filter."""
    if device_model is None and quantity is None and vendor is None:
        return None
    return [
        model.model_id
        for model in device_models.get_all(quantity=quantity, vendor=vendor)
        if device_model is None or model.model_id == device_model
    ]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: psycopg.Connection,
    *,
    statuses: frozenset[Status],
    domain: str | None = None,
    device_model: str | None = None,
    quantity: str | None = None,
    vendor: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Solutions (current versions) matching every filter given, by domain and name.

    Devices: a solution matches when it uses one model that is `device_model`, reports
    `quantity` (`co2`, `leak`, `occupied`... from the models' codecs) and comes from
    `vendor`. Price: the typical total excl. tax (Σ unit price × typical quantity).
    Text: PostgreSQL full-text search, French stemming on the French texts and English on
    the English ones (`capteurs` finds "capteur", `leaks` finds "leak"), or a substring of
    the slug or a name (`CO2`, `NPS`, a word's beginning), which stemming misses.
    """
    text = (text or "").strip() or None
    params = {
        "statuses": list(statuses),
        "domain": domain,
        "models": _models_matching(device_model, quantity, vendor),
        "min_price": min_price,
        "max_price": max_price,
        "text": text,
        "pattern": _like_pattern(text) if text else None,
        "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SEARCH, params).fetchall()


# --- writes --------------------------------------------------------------------------------


def _content(conn: psycopg.Connection, slug: str) -> SolutionContent:
    """The current version's content as written, for a change to start from."""
    row = _with_lines(conn, _version_row(conn, slug, None, ALL_STATUSES))
    return SolutionContent.model_validate(
        {name: row[name] for name in SolutionContent.model_fields}
    )


def _insert_version(
    conn: psycopg.Connection,
    actor: Actor,
    solution_id: int,
    number: int,
    content: SolutionContent,
    reason: str,
) -> None:
    known = conn.execute("SELECT 1 FROM catalog_domains WHERE code = %s", (content.domain,))
    if known.fetchone() is None:
        raise Invalid(f"unknown domain {content.domain!r} (see GET /api/v1/catalog/domains)")
    data = content.model_dump(mode="json")
    conn.execute(
        "INSERT INTO catalog_solution_versions (solution_id, version, domain, name_fr, name_en,"
        " description_fr, description_en, device_models, software_modules, rule_templates,"
        " prerequisites, roi, documents, change_reason, created_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            solution_id, number, content.domain, content.name_fr, content.name_en,
            content.description_fr, content.description_en, Jsonb(data["device_models"]),
            content.software_modules, Jsonb(data["rule_templates"]),
            Jsonb(data["prerequisites"]), Jsonb(data["roi"]), Jsonb(data["documents"]),
            reason, actor.label,
        ),
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO catalog_price_lines (solution_id, version, code, label_fr, label_en,"
            " kind, unit, unit_price, vat_rate, complexity, device_model, typical_quantity)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (solution_id, number, line.code, line.label_fr, line.label_en, line.kind,
                 line.unit, line.unit_price, line.vat_rate, line.complexity, line.device_model,
                 line.typical_quantity)
                for line in content.price_lines
            ],
        )  # fmt: skip


def _locked(conn: psycopg.Connection, slug: str) -> tuple[int, Status, int]:
    """A solution's id, status and current version, locked until the transaction ends
    (two changes at once make versions N+1 and N+2, not two N+1)."""
    row = conn.execute(
        "SELECT id, status, current_version FROM catalog_solutions WHERE slug = %s FOR UPDATE",
        (slug,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no solution {slug!r}")
    return row[0], row[1], row[2]


def create(conn: psycopg.Connection, actor: Actor, body: SolutionCreate) -> dict[str, Any]:
    """A new solution, proposed, with its version 1; Conflict when the slug is taken."""
    content = SolutionContent.model_validate(body.model_dump(exclude={"slug", "change_reason"}))
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO catalog_solutions (slug, current_version) VALUES (%s, 1) RETURNING id",
                (body.slug,),
            ).fetchone()
            assert row is not None
            _insert_version(conn, actor, row[0], 1, content, body.change_reason)
            audit.record(conn, actor, "catalog.solution.create", target=body.slug,
                         details={"version": 1, "domain": content.domain})  # fmt: skip
    except errors.UniqueViolation:
        raise Conflict(f"solution {body.slug!r} exists") from None
    return solution(conn, body.slug)


def update(
    conn: psycopg.Connection, actor: Actor, slug: str, body: SolutionUpdate
) -> dict[str, Any]:
    """Make the next version from the current one and the fields given; nothing when they
    change nothing. Conflict for a withdrawn solution; pydantic's ValidationError when the
    result is not valid content."""
    with conn.transaction():
        solution_id, status, current = _locked(conn, slug)
        if status in lifecycle.FROZEN:
            raise Conflict(f"solution {slug!r} is {status}: its content no longer changes")
        before = _content(conn, slug)
        after = SolutionContent.model_validate({**before.model_dump(mode="json"), **body.changes()})
        if after.model_dump(mode="json") != before.model_dump(mode="json"):
            number = current + 1
            _insert_version(conn, actor, solution_id, number, after, body.change_reason)
            conn.execute(
                "UPDATE catalog_solutions SET current_version = %s, updated_at = now()"
                " WHERE id = %s",
                (number, solution_id),
            )
            audit.record(conn, actor, "catalog.solution.update", target=slug,
                         details={"version": number, "reason": body.change_reason,
                                  "fields": sorted(body.changes())})  # fmt: skip
    return solution(conn, slug)


def transition(
    conn: psycopg.Connection, actor: Actor, slug: str, body: Transition
) -> dict[str, Any]:
    """Move a solution along its lifecycle, with the reason; Conflict when `lifecycle`
    does not allow the step."""
    with conn.transaction():
        solution_id, status, _ = _locked(conn, slug)
        if not lifecycle.allowed(status, body.to):
            possible = ", ".join(sorted(lifecycle.TRANSITIONS[status])) or "none, it is final"
            raise Conflict(
                f"{slug!r} is {status}: it cannot become {body.to} (possible: {possible})"
            )
        conn.execute(
            "UPDATE catalog_solutions SET status = %s, updated_at = now() WHERE id = %s",
            (body.to, solution_id),
        )
        conn.execute(
            "INSERT INTO catalog_status_changes (solution_id, from_status, to_status, reason,"
            " actor) VALUES (%s, %s, %s, %s, %s)",
            (solution_id, status, body.to, body.reason, actor.label),
        )
        audit.record(conn, actor, "catalog.solution.transition", target=slug,
                     details={"from": status, "to": body.to, "reason": body.reason})  # fmt: skip
    return solution(conn, slug)
