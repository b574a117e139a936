"""Catalogue solutions written straight into the catalogue tables, a price change as a new
version, and quotes and orders brought to a given state through the services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import psycopg
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from catalog import lifecycle, orders, quotes, seed, solutions
from catalog.commerce_models import (
    LineRequest,
    OrderCreate,
    QuoteAnswer,
    QuoteCreate,
)
from catalog.models import Transition
from core import tenants
from core.identity.permissions import ADMIN_ROLES
from core.settings import Settings
from tests.kit.identity import PASSWORD, SYSTEM, add_user, bearer, enable_totp

SIRETS = {"annecy": "21740010700017", "lyon": "21690123100011"}

#: (code, label, kind, unit, unit price, VAT rate, device model)
PARKING_LINES = [
    ("capteur", "Capteur de place Nwave", "hardware", "device", "189.99", "20", "nwave-nps405"),
    ("plateforme", "Abonnement plateforme", "software", "year", "1200.00", "20", None),
    ("pose", "Pose et paramétrage, par jour", "service", "day", "650.00", "10", None),
    ("guide", "Guide d'usage imprimé", "service", "unit", "3.00", "5.5", None),
]
AIR_LINES = [
    ("capteur", "Capteur CO2 AM103", "hardware", "device", "0.33", "20", "milesight-am103"),
    ("formation", "Formation des agents", "service", "day", "480.00", "2.1", None),
]


def add_solution(
    conn: psycopg.Connection,
    slug: str,
    lines: list[tuple[str, str, str, str, str, str, str | None]],
    *,
    domain: str = "parking",
    status: str = "available",
) -> int:
    """A solution at version 1 with these price lines; its id."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO catalog_domains (code, name_fr, name_en) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (domain, domain.capitalize(), domain.capitalize()),
        )
        row = conn.execute(
            "INSERT INTO catalog_solutions (slug, status, current_version) VALUES (%s, %s, 1)"
            " RETURNING id",
            (slug, status),
        ).fetchone()
        assert row is not None
        devices = [{"model": line[6], "quantity": None} for line in lines if line[6]]
        conn.execute(
            "INSERT INTO catalog_solution_versions (solution_id, version, domain, name_fr,"
            " name_en, device_models, change_reason, created_by)"
            " VALUES (%s, 1, %s, %s, %s, %s, 'création', 'tests')",
            (row[0], domain, f"Solution {slug}", f"Solution {slug}", Jsonb(devices)),
        )
        for code, label, kind, unit, price, rate, model in lines:
            conn.execute(
                "INSERT INTO catalog_price_lines (solution_id, version, code, label_fr, label_en,"
                " kind, unit, unit_price, vat_rate, device_model)"
                " VALUES (%s, 1, %s, %s, %s, %s, %s, %s, %s, %s)",
                (row[0], code, label, label, kind, unit, Decimal(price), Decimal(rate), model),
            )
    return int(row[0])


def reprice(conn: psycopg.Connection, slug: str, code: str, unit_price: str) -> int:
    """A new version of `slug` with every line copied and `code` at a new price, as the
    catalogue does on a price change; the new version number."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE catalog_solutions SET current_version = current_version + 1"
            " WHERE slug = %s RETURNING id, current_version",
            (slug,),
        ).fetchone()
        assert row is not None
        solution_id, version = row
        conn.execute(
            "INSERT INTO catalog_solution_versions (solution_id, version, domain, name_fr,"
            " name_en, device_models, change_reason, created_by)"
            " SELECT solution_id, %s, domain, name_fr, name_en, device_models, 'prix', 'tests'"
            " FROM catalog_solution_versions WHERE solution_id = %s AND version = %s",
            (version, solution_id, version - 1),
        )
        conn.execute(
            "INSERT INTO catalog_price_lines (solution_id, version, code, label_fr, label_en,"
            " kind, unit, unit_price, vat_rate, device_model)"
            " SELECT solution_id, %s, code, label_fr, label_en, kind, unit,"
            " CASE WHEN code = %s THEN %s ELSE unit_price END, vat_rate, device_model"
            " FROM catalog_price_lines WHERE solution_id = %s AND version = %s",
            (version, code, Decimal(unit_price), solution_id, version - 1),
        )
    return int(version)


def add_catalogue(conn: psycopg.Connection) -> None:
    """Two available solutions (parking, indoor air), once."""
    found = conn.execute("SELECT 1 FROM catalog_solutions WHERE slug = 'parking-test'").fetchone()
    if found is None:
        add_solution(conn, "parking-test", PARKING_LINES)
        add_solution(conn, "air-test", AIR_LINES, domain="air_indoor")


def line(solution: str, code: str, quantity: str) -> LineRequest:
    """A requested line."""
    return LineRequest(solution=solution, code=code, quantity=Decimal(quantity))


QuoteState = Literal["draft", "submitted", "amended", "accepted"]


def quote_in_state(
    conn: psycopg.Connection,
    tenant_id: int,
    state: QuoteState,
    lines: list[LineRequest] | None = None,
) -> int:
    """A new quote of the town brought to `state` (the catalogue added if missing), of
    `lines` (default: 10 parking sensors and 3 air sensors); its id. Made through the
    services, on the owner's connection."""
    add_catalogue(conn)
    default = [line("parking-test", "capteur", "10"), line("air-test", "capteur", "3")]
    data = QuoteCreate(lines=lines or default)
    quote = quotes.create(conn, SYSTEM, tenant_id=tenant_id, data=data)
    if state == "draft":
        return int(quote["id"])
    quotes.submit(conn, SYSTEM, tenant_id=tenant_id, quote_id=quote["id"])
    if state == "submitted":
        return int(quote["id"])
    answer: dict[str, Any] = {"decision": "accept"}
    if state == "amended":
        answer = {
            "decision": "amend",
            "reason": "remise de volume",
            "lines": [
                {
                    "solution": "parking-test",
                    "code": "capteur",
                    "quantity": "10",
                    "discount_percent": "5",
                }
            ],
        }
    quotes.answer(
        conn, SYSTEM, tenant_id=None, quote_id=quote["id"], data=QuoteAnswer.model_validate(answer)
    )
    return int(quote["id"])


def order_of(
    conn: psycopg.Connection,
    tenant_id: int,
    *,
    siret: str = SIRETS["annecy"],
    po_number: str = "BC-2026-17",
    lines: list[LineRequest] | None = None,
) -> int:
    """A new order of the town from a new accepted quote of `lines` (those of
    `quote_in_state` by default; `siret` set if it has none)."""
    conn.execute(
        "UPDATE tenants SET siret = %s WHERE id = %s AND siret IS NULL", (siret, tenant_id)
    )
    quote_id = quote_in_state(conn, tenant_id, "accepted", lines)
    order = orders.create(
        conn, SYSTEM, tenant_id=tenant_id, quote_id=quote_id, data=OrderCreate(po_number=po_number)
    )
    return int(order["id"])


def two_towns(conn: psycopg.Connection) -> dict[str, int]:
    """Annecy and Lyon, with their SIRETs, and the catalogue."""
    add_catalogue(conn)
    return {
        slug: tenants.create(
            conn, tenants.TenantCreate(slug=slug, name=slug.capitalize(), siret=siret)
        )
        for slug, siret in SIRETS.items()
    }


def log_in(
    conn: psycopg.Connection,
    settings: Settings,
    client: TestClient,
    *,
    name: str,
    tenant_id: int | None,
    role: str,
) -> dict[str, str]:
    """Headers of a new user `name@example.fr` holding `role` (administrators log in with
    TOTP)."""
    email = f"{name}@example.fr"
    user = add_user(conn, tenant_id=tenant_id, email=email, roles=[role])
    form = {"username": email, "password": PASSWORD}
    if role in ADMIN_ROLES:
        form["otp"] = enable_totp(conn, settings, user["id"]).now()
    response = client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def logged_in(
    conn: psycopg.Connection, settings: Settings, client: TestClient, towns: dict[str, int]
) -> dict[str, dict[str, str]]:
    """Headers of annecy's buyer and viewer, lyon's buyer and the operator (platform_admin,
    logged in with TOTP)."""
    people = {
        "annecy_buyer": ("annecy", "buyer"),
        "annecy_viewer": ("annecy", "viewer"),
        "lyon_buyer": ("lyon", "buyer"),
        "operator": (None, "platform_admin"),
    }
    return {
        name: log_in(
            conn, settings, client, name=name, tenant_id=towns[town] if town else None, role=role
        )
        for name, (town, role) in people.items()
    }


def seeded_solution(conn: psycopg.Connection, slug: str) -> str:
    """The shipped catalogue loaded (`catalog.seed`), with solution `slug` available: taken
    along the lifecycle if the file leaves it elsewhere; `slug`."""
    seed.load(conn, SYSTEM, seed.read_file(seed.SHIPPED), source=seed.SHIPPED.name)
    current = solutions.solution(conn, slug)["status"]
    if current != "available":
        # proposed and certified walk the planned path; deprecated comes straight back
        path = lifecycle.planned_path("available")[lifecycle.STATUSES.index(current) :]
        for status in path or ["available"]:
            step = Transition(to=status, reason="mise en vente pour les tests")
            solutions.transition(conn, SYSTEM, slug, step)
    return slug
