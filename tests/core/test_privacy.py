"""The register of processing activities, retention settings, and data-subject requests
(find, export, erase) for a plate and for a person, through the `civicsense privacy` CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from pydantic import ValidationError

from alerts import incidents
from core import audit
from core.cli import cli
from core.settings import Settings
from tests.conftest import base_settings
from tests.kit.identity import PASSWORD, add_user
from tests.kit.incidents import opened
from tests.kit.parking import ALWAYS, parking_town
from tests.parking.test_plate_retention import _in_clear, _plant

SECRET = "q1o4l7oQ5d0sE6S3C0mQbq1a9rZKDw8LMRS0iVt1H6w="


def _privacy(settings: Settings, *args: str, **env: str) -> Result:
    environment = {"CIVICSENSE_SECRET_KEY": SECRET, **env}
    result = CliRunner().invoke(
        cli, ["--database-url", settings.database_url, "privacy", *args], env=environment
    )
    assert result.exit_code == 0, result.output
    return result


def test_register_lists_the_retention_periods_configured(settings: Settings) -> None:
    entries = json.loads(_privacy(settings, "register", "--format", "json").output)
    names = {entry["name"] for entry in entries}
    assert {"Parking payment sessions", "Parking enforcement", "User accounts",
            "Audit trail", "Sensor data"} <= names  # fmt: skip
    days = {r["setting"]: r["days"] for entry in entries for r in entry["retention"]}
    assert days["CIVICSENSE_PLATE_RETENTION_DAYS"] == 90
    assert days["CIVICSENSE_RAW_RETENTION_DAYS"] == 730
    for entry in entries:
        assert entry["purpose"] and entry["legal_basis"] and entry["security"]

    changed = _privacy(settings, "register", CIVICSENSE_PLATE_RETENTION_DAYS="30").output
    assert changed.startswith("# Register of processing activities")
    assert "plates in clear: 30 days (CIVICSENSE_PLATE_RETENTION_DAYS)" in changed


def test_a_plate_cannot_outlive_its_session() -> None:
    with pytest.raises(ValidationError, match=r"plate_retention_days .* sessions_retention_days"):
        base_settings(plate_retention_days=400, sessions_retention_days=365)


@pytest.fixture
def towns(conn: psycopg.Connection, settings: Settings) -> dict[str, int]:
    annecy = parking_town(conn, settings, bays=0, zone={"hours": ALWAYS})
    chambery = parking_town(conn, settings, slug="chambery", bays=0, zone={"hours": ALWAYS})
    today = datetime.now(UTC)
    for slug, tenant_id in (("annecy", annecy.tenant_id), ("chambery", chambery.tenant_id)):
        _plant(settings.database_url, tenant_id, slug, today)
    return {"annecy": annecy.tenant_id, "chambery": chambery.tenant_id}


def _found(output: str) -> dict[str, int]:
    return {line.split("\t")[0]: int(line.split("\t")[1]) for line in output.splitlines()
            if "\t" in line}  # fmt: skip


def test_find_export_erase_a_plate_in_one_town(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int], tmp_path: Path
) -> None:
    found = _found(_privacy(settings, "find", "--tenant", "annecy", "--plate", "ef 456 gh").output)
    sessions = conn.execute(
        "SELECT count(*) FROM parking_sessions WHERE tenant_id = %s AND plate_key = 'EF456GH'",
        (towns["annecy"],),
    ).fetchone()
    assert sessions is not None and found["parking_sessions"] == sessions[0] > 0
    assert found["enforcement_actions"] == 1 and found["audit_log"] == 2  # check + FPS

    output = tmp_path / "plate.json"
    _privacy(settings, "export", "--tenant", "annecy", "--plate", "EF-456-GH", "-o", str(output))
    data = json.loads(output.read_text())["data"]
    assert len(data["parking_sessions"]) == sessions[0]
    assert {s["plate"] for s in data["parking_sessions"]} == {"EF-456-GH"}
    assert data["enforcement_actions"][0]["amount"] == "35.00"

    _privacy(settings, "erase", "--tenant", "annecy", "--plate", "EF456GH", "--yes")
    assert "EF456GH" not in _in_clear_in_town(conn, towns["annecy"])
    after = _found(_privacy(settings, "find", "--tenant", "annecy", "--plate", "EF456GH").output)
    assert "parking_sessions" not in after
    assert after["parking_sessions (pseudonymised)"] == sessions[0]
    # the other town's same plate is untouched
    other = _found(_privacy(settings, "find", "--tenant", "chambery", "--plate", "EF456GH").output)
    assert other["parking_sessions"] > 0

    requests = conn.execute(
        "SELECT action, target, details::text FROM audit_log WHERE action LIKE 'privacy.%%'"
        " AND tenant_id = %s ORDER BY id",
        (towns["annecy"],),
    ).fetchall()
    assert [r[0] for r in requests] == ["privacy.find", "privacy.export", "privacy.erase",
                                        "privacy.find"]  # fmt: skip
    assert all(r[1].startswith("pseudo:") and "EF" not in r[2] for r in requests)


def _in_clear_in_town(conn: psycopg.Connection, tenant_id: int) -> str:
    """The plates still in clear in the town's sessions, actions and audit, concatenated."""
    rows = conn.execute(
        "SELECT string_agg(plate_key, ' ') FROM (SELECT plate_key FROM parking_sessions"
        " WHERE tenant_id = %(t)s UNION ALL SELECT plate_key FROM enforcement_actions"
        " WHERE tenant_id = %(t)s UNION ALL SELECT regexp_replace(upper(coalesce(target, '')"
        " || (details ->> 'plate')), '[^A-Z0-9]', '', 'g') FROM audit_log WHERE tenant_id ="
        " %(t)s AND action LIKE 'parking.%%') AS p",
        {"t": tenant_id},
    ).fetchone()
    return str(rows[0] if rows else "")


def test_erase_a_person_keeps_pseudonymous_references(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int], tmp_path: Path
) -> None:
    user = add_user(conn, tenant_id=towns["annecy"], email="agent@annecy.fr",
                    roles=["enforcement_agent"])  # fmt: skip
    conn.execute(
        "UPDATE enforcement_actions SET agent_id = %s WHERE tenant_id = %s",
        (user["id"], towns["annecy"]),
    )
    found = _found(_privacy(settings, "find", "--tenant", "annecy", "--user",
                            "Agent@Annecy.fr").output)  # fmt: skip
    assert found["users"] == 1 and found["enforcement_actions.agent"] == 1
    assert found["audit_log"] >= 5  # the checks, the FPS, the account's creation

    output = tmp_path / "person.json"
    _privacy(settings, "export", "--tenant", "annecy", "--user", "agent@annecy.fr", "-o",
             str(output))  # fmt: skip
    exported = output.read_text()
    assert "agent@annecy.fr" in exported and PASSWORD not in exported
    assert "argon2" not in exported  # no password hash

    _privacy(settings, "erase", "--tenant", "annecy", "--user", "agent@annecy.fr", "--yes")
    account = conn.execute(
        "SELECT email, active, password_hash FROM users WHERE id = %s", (user["id"],)
    ).fetchone()
    assert account == (f"erased-user-{user['id']}@erased.invalid", False, "!erased")
    left = _in_any_column(conn, "agent@annecy.fr")
    assert left == {}
    action = conn.execute(
        "SELECT agent, agent_id FROM enforcement_actions WHERE tenant_id = %s",
        (towns["annecy"],),
    ).fetchone()
    assert action == (f"erased-user-{user['id']}@erased.invalid", user["id"])
    # the other town's agent of the same name is someone else: untouched
    assert _in_any_column(conn, "agent@chambery.fr")


def _in_any_column(conn: psycopg.Connection, text: str) -> dict[str, Any]:
    """Where an e-mail is found in any text column (compared on letters and digits)."""
    return _in_clear(conn, (text.upper().replace("@", "").replace(".", ""),))


def test_the_audit_trail_stays_append_only(conn: psycopg.Connection, towns: dict[str, int]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE audit_log SET target = 'x'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    with conn.transaction():
        conn.execute("SELECT set_config('civicsense.audit_rewrite', 'on', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only have its actor"):
            conn.execute("UPDATE audit_log SET action = 'forged'")


def test_erase_a_person_reaches_incidents_they_asked_for_or_worked_on(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int]
) -> None:
    """A resident's contact on their request, and a technician's name in its history."""
    tech = add_user(conn, tenant_id=towns["annecy"], email="tech@annecy.fr",
                    roles=["technician"])  # fmt: skip
    incident = opened(
        conn, towns["annecy"], datetime.now(UTC), source="request",
        requester={"name": "Jeanne Martin", "email": "Jeanne.Martin@mail.fr",
                   "phone": "+33 6 12 34 56 78"},
    )  # fmt: skip
    actor = audit.Actor("user", "tech@annecy.fr", tech["id"], towns["annecy"])
    incidents.transition(conn, actor, towns["annecy"], incident, "acknowledge")
    conn.commit()

    found = _found(_privacy(settings, "find", "--tenant", "annecy", "--user",
                            "jeanne.martin@mail.fr").output)  # fmt: skip
    assert found == {"incidents.requester": 1}
    _privacy(settings, "erase", "--tenant", "annecy", "--user", "jeanne.martin@mail.fr", "--yes")
    _privacy(settings, "erase", "--tenant", "annecy", "--user", "tech@annecy.fr", "--yes")

    requester = conn.execute("SELECT requester FROM incidents WHERE id = %s", (incident,))
    assert requester.fetchone() == ({"name": "erased", "kind": "resident"},)
    assert _in_any_column(conn, "jeanne.martin@mail.fr") == {}
    assert _in_any_column(conn, "tech@annecy.fr") == {}
    history = conn.execute(
        "SELECT actor FROM incident_events WHERE incident_id = %s AND kind = 'transition'",
        (incident,),
    ).fetchall()
    assert history == [(f"erased-user-{tech['id']}@erased.invalid",)]
