"""The catalogue service: versions written once, the lifecycle and its reasons, content
checked against the platform's device models and alert-rule templates."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from pydantic import ValidationError

from catalog import solutions
from catalog.models import SolutionCreate, SolutionUpdate, Transition
from tests.catalog.conftest import solution_body
from tests.kit.identity import SYSTEM


@pytest.fixture
def proposed(conn: psycopg.Connection) -> dict:
    return solutions.create(conn, SYSTEM, SolutionCreate.model_validate(solution_body()))


def _price_change(price: str) -> SolutionUpdate:
    lines = solution_body()["price_lines"]
    lines[0]["unit_price"] = price
    return SolutionUpdate(change_reason="hausse du prix fournisseur", price_lines=lines)


def test_a_price_change_makes_version_2_and_leaves_version_1_as_it_was(
    conn: psycopg.Connection, proposed: dict
) -> None:
    changed = solutions.update(conn, SYSTEM, "fuites-ecoles", _price_change("85.50"))
    assert changed["current_version"] == 2
    assert changed["price_lines"][0]["unit_price"] == Decimal("85.50")
    assert [line["code"] for line in changed["price_lines"]] == ["detecteur", "pose"]
    first = solutions.version(conn, "fuites-ecoles", 1, statuses=solutions.ALL_STATUSES)
    assert first["price_lines"][0]["unit_price"] == Decimal("79.00")
    assert first["typical_total_excl_tax"] == Decimal("1410.00")  # 10 × 79 + 620
    history = solutions.versions(conn, "fuites-ecoles", statuses=solutions.ALL_STATUSES)
    assert [(v["version"], v["change_reason"]) for v in history] == [
        (1, "Version initiale"), (2, "hausse du prix fournisseur")]  # fmt: skip


def test_a_change_that_changes_nothing_makes_no_version(
    conn: psycopg.Connection, proposed: dict
) -> None:
    again = solutions.update(conn, SYSTEM, "fuites-ecoles", _price_change("79"))
    assert again["current_version"] == 1


def test_versions_and_price_lines_cannot_be_altered_even_by_the_owner(
    conn: psycopg.Connection, proposed: dict
) -> None:
    for statement in ("UPDATE catalog_price_lines SET unit_price = 1",
                      "DELETE FROM catalog_solution_versions"):  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)


def test_lifecycle_follows_the_planned_path_with_reasons(
    conn: psycopg.Connection, proposed: dict
) -> None:
    for status in ("certified", "available", "deprecated", "available", "withdrawn"):
        solutions.transition(conn, SYSTEM, "fuites-ecoles", Transition(to=status, reason=status))
    final = solutions.solution(conn, "fuites-ecoles")
    steps = [(c["from_status"], c["to_status"], c["reason"]) for c in final["status_changes"]]
    assert steps == [
        ("proposed", "certified", "certified"), ("certified", "available", "available"),
        ("available", "deprecated", "deprecated"), ("deprecated", "available", "available"),
        ("available", "withdrawn", "withdrawn"),
    ]  # fmt: skip
    with pytest.raises(solutions.Conflict, match="withdrawn"):
        solutions.update(conn, SYSTEM, "fuites-ecoles", _price_change("90"))


@pytest.mark.parametrize(("path", "refused"), [
    ((), "available"),  # proposed cannot skip certification
    (("certified",), "proposed"),  # nothing goes back
    (("certified", "available"), "certified"),
    (("withdrawn",), "available"),  # withdrawn is final
])  # fmt: skip
def test_an_illegal_transition_is_refused_and_recorded_nowhere(
    conn: psycopg.Connection, proposed: dict, path: tuple[str, ...], refused: str
) -> None:
    for status in path:
        solutions.transition(conn, SYSTEM, "fuites-ecoles", Transition(to=status, reason="ok"))
    with pytest.raises(solutions.Conflict):
        solutions.transition(conn, SYSTEM, "fuites-ecoles", Transition(to=refused, reason="no"))
    assert len(solutions.solution(conn, "fuites-ecoles")["status_changes"]) == len(path)


@pytest.mark.parametrize(("change", "message"), [
    ({"device_models": [{"model": "acme-nothing", "quantity": 1}],
      "price_lines": solution_body()["price_lines"][1:]}, "unknown device model"),
    ({"rule_templates": ["flood"]}, "unknown alert-rule template"),
    ({"rule_templates": [{"name": "x", "category": "air", "condition": {"kind": "nope"}}]},
     "condition"),
])  # fmt: skip
def test_content_is_checked_against_the_platform(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SolutionCreate.model_validate(solution_body(**change))


def test_money_is_kept_to_the_cent() -> None:
    line = SolutionCreate.model_validate(solution_body()).price_lines[1]
    assert (line.unit_price, line.vat_rate) == (Decimal("620.00"), Decimal("20.00"))
    assert str(line.unit_price) == "620.00"


def test_an_unknown_domain_is_invalid(conn: psycopg.Connection) -> None:
    with pytest.raises(solutions.Invalid, match="domain"):
        solutions.create(conn, SYSTEM, SolutionCreate.model_validate(solution_body(domain="mars")))
