"""The shipped catalogue: realistic, loaded by `civicsense seed demo`, loaded twice with no
change, and a changed file makes new versions without touching the operator's statuses."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner

from catalog import seed, solutions
from catalog.models import VAT_RATES
from core.cli import cli
from core.settings import Settings
from tests.kit.identity import SYSTEM


def _counts(conn: psycopg.Connection) -> tuple:
    return conn.execute(
        "SELECT (SELECT count(*) FROM catalog_solutions),"
        " (SELECT count(DISTINCT domain) FROM catalog_solution_versions),"
        " (SELECT count(*) FROM catalog_solution_versions),"
        " (SELECT count(*) FROM catalog_price_lines),"
        " (SELECT count(*) FROM catalog_status_changes),"
        " (SELECT count(*) FROM catalog_domains)"
    ).fetchone()


def test_seed_demo_loads_the_catalogue_and_twice_changes_nothing(
    conn: psycopg.Connection, settings: Settings
) -> None:
    seed.demo_seed(conn, settings, devices=0)
    first = _counts(conn)
    solutions_count, domains_used = first[0], first[1]
    assert solutions_count >= 8 and domains_used >= 6
    assert first[2] == solutions_count  # one version each
    seed.demo_seed(conn, settings, devices=0)
    assert _counts(conn) == first
    on_sale = solutions.search(conn, statuses=frozenset({"available"}))
    assert len(on_sale) >= 6
    parking = solutions.solution(conn, "stationnement-voirie-connecte")
    assert parking["device_models"][0]["model"] == "nwave-nps405"
    assert [c["to_status"] for c in parking["status_changes"]] == ["certified", "available"]


def test_shipped_prices_use_french_vat_rates_some_reduced() -> None:
    catalogue = seed.read_file(seed.SHIPPED)
    rates = {line.vat_rate for s in catalogue.solutions for line in s.price_lines}
    assert rates <= VAT_RATES and len(rates) >= 2
    kinds = {line.kind for s in catalogue.solutions for line in s.price_lines}
    assert kinds == {"hardware", "software", "service"}


def test_a_changed_file_makes_new_versions_and_keeps_statuses(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    seed.load(conn, SYSTEM, seed.read_file(seed.SHIPPED), source="v1.json")
    data = json.loads(seed.SHIPPED.read_text(encoding="utf-8"))
    changed = data["solutions"][0]
    changed["price_lines"][0]["unit_price"] = "205.00"
    changed["status"] = "withdrawn"  # not applied to an existing solution
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    runner = CliRunner(env={"CIVICSENSE_DATABASE_URL": database_url})
    result = runner.invoke(cli, ["catalog", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 updated" in result.output
    current = solutions.solution(conn, changed["slug"])
    assert (current["current_version"], current["status"]) == (2, "available")
    assert current["change_reason"] == "mise à jour depuis v2.json"
