"""No secret appears in any API response after the one that creates it, nor in the logs.

A realistic flow runs through the API and the CLI with every logger at DEBUG: a
TOTP-verified tenant administrator creates a technician with a password, the technician
logs in and enrols a TOTP second factor, the administrator refreshes its token, creates
an API key (used right away) and registers a payment provider; an operator imports a
device with its LoRaWAN AppKey from a CSV file; someone types a wrong password. Each
secret may appear in the one response that hands it out (login, enrolment, key and
provider creation); nowhere else: not in any other response of the flow or in the reads
that follow (users, keys, providers, audit trail, me...), not in any log record, not in
the CLI's output, not in the stored audit trail.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pyotp
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from httpx import Response
from psycopg.rows import dict_row

from core import tenants
from core.app import create_app
from core.cli import cli
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_user, bearer, enable_totp

ADMIN = "admin@lyon.fr"
TECH = "camille.tech@lyon.fr"
TECH_PASSWORD = "velo'v rouge place Bellecour 69"
WRONG_PASSWORD = "Tr0mpette-Fourviere-1983"
DEV_EUI = "24e1241300000003"
APP_KEY = "8F3A61C2D4E5B6A7980C1D2E3F4A5B6C"
# as a technician copies it from a vendor's sheet
APP_KEY_IN_CSV = "8F:3A:61:C2:D4:E5:B6:A7:98:0C:1D:2E:3F:4A:5B:6C"
NOWHERE: frozenset[str] = frozenset()  # what a response, log record or row may hand out
LOGGERS = (None, "civicsense", "core", "devices", "ingest", "uvicorn", "httpx", "psycopg")


@dataclass
class Flow:
    """What the flow produced: secrets, every response, the logs, the CLI's output."""

    secrets: dict[str, str] = field(default_factory=dict)
    # (what, body, names of the secrets this response hands out)
    responses: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    log_records: list[logging.LogRecord] = field(default_factory=list)
    cli_output: str = ""
    admin_id: int = 0
    tech_id: int = 0
    key_prefix: str = ""
    csv_name: str = ""

    def call(
        self, client: TestClient, method: str, url: str, *, hands_out: tuple[str, ...] = (),
        expect: int = 200, **kwargs: Any,
    ) -> Response:  # fmt: skip
        """Send a request, check its status, keep its body for the search."""
        response = client.request(method, url, **kwargs)
        assert response.status_code == expect, f"{method} {url}: {response.text}"
        self.responses.append((f"{method} {url} ({expect})", response.text, frozenset(hands_out)))
        return response


def _patterns(name: str, value: str) -> re.Pattern[str]:
    """`value` in any case, also as it looks URL- or form-encoded."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    if name == "AppKey":  # hex digits with or without separators, or its bytes in base64
        forms.add(base64.b64encode(bytes.fromhex(value)).decode())
        return re.compile(
            "|".join(["[-:_. ]?".join(value), *map(re.escape, forms - {value})]), re.IGNORECASE
        )
    return re.compile("|".join(map(re.escape, sorted(forms))), re.IGNORECASE)


def _leaks(flow: Flow, texts: list[tuple[str, str, frozenset[str]]]) -> list[str]:
    """'<secret> in <where>' for every secret found where it must not be."""
    patterns = {name: _patterns(name, value) for name, value in flow.secrets.items()}
    return [
        f"{name} in {where}"
        for where, text, allowed in texts
        for name, pattern in patterns.items()
        if name not in allowed and pattern.search(text)
    ]


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _log_text(record: logging.LogRecord) -> str:
    """The message, its traceback, and whatever extra fields the record carries."""
    parts = [record.getMessage()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD]
    return "\n".join(parts)


@pytest.fixture
def flow(
    conn: psycopg.Connection,
    settings: Settings,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flow]:
    """The flow, run with every log record captured at DEBUG."""
    monkeypatch.chdir(tmp_path)  # no stray .env for the CLI's settings
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    done = Flow()
    lyon = tenants.create(conn, tenants.TenantCreate(slug="lyon", name="Ville de Lyon"))
    admin = add_user(conn, tenant_id=lyon, email=ADMIN, roles=["tenant_admin"])
    done.admin_id = admin["id"]
    admin_totp = enable_totp(conn, settings, admin["id"])
    done.secrets |= {"admin password": PASSWORD, "admin TOTP secret": admin_totp.secret}
    done.secrets |= {"technician password": TECH_PASSWORD, "wrong password": WRONG_PASSWORD}

    with TestClient(create_app(settings)) as client:
        login = done.call(
            client, "POST", "/api/v1/auth/token",
            data={"username": ADMIN, "password": PASSWORD, "otp": admin_totp.now()},
            hands_out=("admin access token", "admin refresh token"),
        ).json()  # fmt: skip
        assert login["scope"] == "full"
        done.secrets |= {
            "admin access token": login["access_token"],
            "admin refresh token": login["refresh_token"],
        }
        as_admin = bearer(login["access_token"])

        created = done.call(
            client, "POST", "/api/v1/users", headers=as_admin, expect=201,
            json={"email": TECH, "display_name": "Camille", "password": TECH_PASSWORD,
                  "roles": ["technician"]},
        ).json()  # fmt: skip
        done.tech_id = created["id"]

        tech = done.call(
            client, "POST", "/api/v1/auth/token",
            data={"username": TECH, "password": TECH_PASSWORD},
            hands_out=("technician access token", "technician refresh token"),
        ).json()  # fmt: skip
        done.secrets |= {
            "technician access token": tech["access_token"],
            "technician refresh token": tech["refresh_token"],
        }
        as_tech = bearer(tech["access_token"])
        enrolment = done.call(
            client, "POST", "/api/v1/auth/totp/enrol", headers=as_tech,
            hands_out=("technician TOTP secret",),
        ).json()  # fmt: skip
        done.secrets["technician TOTP secret"] = enrolment["secret"]
        codes = done.call(
            client, "POST", "/api/v1/auth/totp/confirm", headers=as_tech,
            json={"code": pyotp.TOTP(enrolment["secret"]).now()},
            hands_out=("technician recovery code",),
        ).json()["recovery_codes"]  # fmt: skip
        done.secrets["technician recovery code"] = codes[0]

        refreshed = done.call(
            client, "POST", "/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]},
            hands_out=("admin access token (refreshed)", "admin refresh token (refreshed)"),
        ).json()  # fmt: skip
        done.secrets |= {
            "admin access token (refreshed)": refreshed["access_token"],
            "admin refresh token (refreshed)": refreshed["refresh_token"],
        }
        as_admin = bearer(refreshed["access_token"])

        key = done.call(
            client, "POST", "/api/v1/api-keys", headers=as_admin, expect=201,
            json={"name": "Export SIG", "permissions": ["devices:read", "readings:read"]},
            hands_out=("API key", "API key's secret part"),
        ).json()  # fmt: skip
        done.key_prefix = key["prefix"]
        _csk, _prefix, secret_part = key["key"].split("_", 2)
        done.secrets |= {"API key": key["key"], "API key's secret part": secret_part}
        as_key = bearer(key["key"])
        me = done.call(client, "GET", "/api/v1/auth/me", headers=as_key).json()
        assert me["kind"] == "api_key"

        provider = done.call(
            client, "POST", "/api/v1/payment-providers", headers=as_admin, expect=201,
            json={"provider": "payfip"}, hands_out=("signing secret",),
        ).json()  # fmt: skip
        done.secrets["signing secret"] = provider["signing_secret"]

        csv = tmp_path / "parc.csv"
        csv.write_text(f"dev_eui,model,name,app_key\n{DEV_EUI},bosch-tps110,A17,{APP_KEY_IN_CSV}\n")
        done.csv_name = csv.name
        done.secrets["AppKey"] = APP_KEY
        assert settings.secret_key is not None
        runner = CliRunner(env={"CIVICSENSE_SECRET_KEY": settings.secret_key.get_secret_value()})
        result = runner.invoke(
            cli,
            ["--database-url", database_url, "--log-level", "DEBUG",
             "devices", "import", str(csv), "--tenant", "lyon"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "1 created" in result.output
        done.cli_output = result.output + (result.stderr or "")
        readings = done.call(client, "GET", f"/api/v1/devices/{DEV_EUI}/readings", headers=as_key)
        assert readings.json() == []

        done.call(
            client, "POST", "/api/v1/auth/token", expect=401,
            data={"username": TECH, "password": WRONG_PASSWORD},
        )  # fmt: skip

        # what an administrator, the technician and the integration read afterwards
        for url in (
            "/api/v1/users", f"/api/v1/users/{done.admin_id}", f"/api/v1/users/{done.tech_id}",
            "/api/v1/api-keys", "/api/v1/payment-providers", "/api/v1/audit?limit=1000",
            "/api/v1/auth/me", "/api/v1/tenants", "/api/v1/tenants/lyon",
        ):  # fmt: skip
            done.call(client, "GET", url, headers=as_admin)
        done.call(client, "GET", "/api/v1/auth/me", headers=as_tech)
        done.call(client, "GET", "/api/v1/tenants/lyon", headers=as_tech)

    done.log_records = list(caplog.records)
    yield done


def test_no_secret_in_any_response_but_the_one_that_hands_it_out(flow: Flow) -> None:
    assert len(flow.responses) >= 20
    leaks = _leaks(flow, flow.responses)
    assert not leaks, "\n".join(leaks)


def test_no_secret_in_the_logs_or_the_cli_output(flow: Flow) -> None:
    logged = [
        (f"log record {r.name} {r.levelname}: {r.getMessage()[:80]!r}", _log_text(r), NOWHERE)
        for r in flow.log_records
    ]
    # the capture did see the flow: the test client's request lines, DEBUG records
    assert any("/api/v1/payment-providers" in text for _, text, _ in logged)
    assert any(r.levelno == logging.DEBUG for r in flow.log_records)
    cli = [("the CLI's output", flow.cli_output, NOWHERE)]
    leaks = _leaks(flow, logged + cli)
    assert not leaks, "\n".join(leaks)


def test_each_creation_is_in_the_audit_trail_without_its_secret(
    flow: Flow, conn: psycopg.Connection
) -> None:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT a.*, row_to_json(a)::text AS stored FROM audit_log a ORDER BY id"
        ).fetchall()
    entries = {(r["action"], r["actor"], r["target"], r["outcome"]) for r in rows}
    key_target = f"Export SIG ({flow.key_prefix})"
    expected = {
        ("auth.login", ADMIN, ADMIN, "success"),
        ("user.create", ADMIN, TECH, "success"),
        ("auth.login", TECH, TECH, "success"),
        ("auth.totp.enrol", TECH, TECH, "success"),
        ("apikey.create", ADMIN, key_target, "success"),
        ("provider.create", ADMIN, "payfip", "success"),
        ("auth.login", TECH, TECH, "failure"),
    }
    assert expected <= entries, sorted(expected - entries)
    by_action = {r["action"]: r for r in rows}
    assert by_action["user.create"]["details"]["roles"] == ["technician"]
    assert by_action["apikey.create"]["details"]["permissions"] == ["devices:read", "readings:read"]
    imported = by_action["device.import"]
    assert imported["actor_kind"] == "cli" and imported["target"] == flow.csv_name
    assert imported["details"] == {"created": 1}
    failure = next(r for r in rows if r["outcome"] == "failure")
    assert failure["details"] == {"reason": "bad_credentials"}
    # the administrator sees them through the API too
    trail = next(body for what, body, _ in flow.responses if what.startswith("GET /api/v1/audit"))
    for action in ("user.create", "apikey.create", "provider.create", "device.import"):
        assert f'"action":"{action}"' in trail, action
    stored = [(f"audit row {r['id']} ({r['action']})", r["stored"], NOWHERE) for r in rows]
    leaks = _leaks(flow, stored)
    assert not leaks, "\n".join(leaks)
