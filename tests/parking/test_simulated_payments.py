"""`civicsense simulate --payments-url`: the simulated town's drivers pay through the real
payment webhook, signed as an operator signs, and their sessions land in the database."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from core import crypto, tenants
from core.cli import cli
from core.demo import seed_all
from core.embedded import EmbeddedBroker
from core.identity import repository as identity
from core.settings import Settings
from core.signatures import verify
from ingest.simulator import PaymentEvent, ZoneFacts
from ingest.simulator.drivers import PaidSession
from ingest.simulator.payments import SECRET_ENV, WebhookSender, WebhookTarget
from parking.models import ZoneCreate
from parking.tariffs import Tariff
from tests.kit.parking import PROVIDER, SECRET
from tests.kit.server import served

DEVICES = 20  # 12 parking bays in 10 streets' zones
STARTED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EVENT = PaymentEvent(
    "ROY-001-1.0",
    "session.started",
    STARTED_AT,
    PaidSession("ROY-001-1", "AB-123-CD", "ROY", None, STARTED_AT, STARTED_AT.replace(hour=10)),
)


def _simulate(base: str, broker: EmbeddedBroker, *extra: str) -> tuple[int, str]:
    """Run `civicsense simulate` with payments, the operator's secret in the environment."""
    args = [
        "--mqtt-url", broker.url, "simulate", "--devices", str(DEVICES),
        "--count", "800", "--rate", "100000", "--start", "2026-11-23T10:00", "--step", "20",
        "--payments-url", f"{base}/api/v1", "--provider", PROVIDER, "--tenant", "demo",
        "--paying-share", "1", "--by-bay-share", "0.5", "--late-share", "0.5",
        "--overstay-share", "0.5", *extra,
    ]  # fmt: skip
    result = CliRunner(env={SECRET_ENV: SECRET}).invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def _payment_counts(output: str) -> dict[str, int]:
    found = re.search(r"payments: (.*)$", output, re.MULTILINE)
    assert found, output
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", found.group(1))}


def test_simulated_drivers_pay_through_the_operator_webhook(
    conn: psycopg.Connection, settings: Settings, broker: EmbeddedBroker
) -> None:
    seed_all(settings, DEVICES)
    tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
    secret = crypto.encrypt(settings, SECRET)
    identity.insert_provider(conn, tenant_id=tenant_id, provider=PROVIDER,
                             secret_encrypted=secret, created_by=None)  # fmt: skip
    with served(settings) as base:
        exit_code, output = _simulate(base, broker)
    assert exit_code == 0, output
    assert SECRET not in output
    counts = _payment_counts(output)
    assert counts["refused"] == counts["failed"] == 0
    assert counts["started"] > 0 and counts["extended"] > 0 and counts["stopped"] > 0

    sessions, by_zone, stopped, ended = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE bay_id IS NULL), count(stopped_at),"
        " count(ends_at) FROM parking_sessions WHERE source = 'provider' AND provider = %s",
        (PROVIDER,),
    ).fetchone()  # type: ignore[misc]
    assert sessions == counts["started"] == ended
    assert 0 < by_zone < sessions  # some drivers paid for the zone, the others named their bay
    assert stopped == counts["stopped"]
    kinds = dict(
        conn.execute(
            "SELECT kind, count(session_id) FROM parking_provider_events WHERE provider = %s"
            " GROUP BY kind",
            (PROVIDER,),
        ).fetchall()
    )
    assert kinds == {f"session.{k}": counts[k] for k in ("started", "extended", "stopped")}


def test_a_wrong_secret_is_refused_counted_and_fails_the_run(
    conn: psycopg.Connection, settings: Settings, broker: EmbeddedBroker
) -> None:
    seed_all(settings, DEVICES)
    tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
    other = crypto.encrypt(settings, "not the secret the simulator has")
    identity.insert_provider(conn, tenant_id=tenant_id, provider=PROVIDER,
                             secret_encrypted=other, created_by=None)  # fmt: skip
    with served(settings) as base:
        exit_code, output = _simulate(base, broker, "--count", "100")
    counts = _payment_counts(output)
    assert exit_code == 1
    assert counts["refused"] > 0 and counts["started"] == 0
    assert conn.execute("SELECT count(*) FROM parking_sessions").fetchone() == (0,)


def test_the_simulators_zone_is_the_one_the_demo_seeds() -> None:
    seeded = ZoneCreate(code="ROY", name="Rue Royale")
    assert ZoneFacts().grace_minutes == seeded.grace_minutes
    assert ZoneFacts().max_minutes == Tariff.example().max_minutes == seeded.tariff.max_minutes


def _sender(*answers: int | Exception) -> tuple[WebhookSender, list[httpx.Request]]:
    """A sender whose HTTP answers are `answers`, in turn; the requests it made."""
    requests: list[httpx.Request] = []
    replies = iter(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return httpx.Response(reply, json={"detail": "nope"} if reply >= 400 else {})

    target = WebhookTarget("http://civicsense.test/api/v1", PROVIDER, "demo", SECRET)
    client = httpx.Client(transport=httpx.MockTransport(answer))
    return WebhookSender(target, client=client, attempts=3, backoff=0), requests


def test_a_webhook_is_signed_and_retried_after_network_errors_and_5xx() -> None:
    sender, requests = _sender(httpx.ConnectError("down"), 503, 200)
    assert sender.send(EVENT) == "sent"
    assert len(requests) == 3
    last = requests[-1]
    assert str(last.url) == f"http://civicsense.test/api/v1/parking/providers/{PROVIDER}/events"
    verify(SECRET, last.headers["X-Civicsense-Timestamp"],
           last.headers["X-Civicsense-Signature"], last.content, time.time())  # fmt: skip
    body = json.loads(last.content)
    assert (body["type"], body["tenant"], body["session"]["bay"]) == (
        "session.started",
        "demo",
        None,
    )


@pytest.mark.parametrize(
    ("answers", "delivery", "attempts"),
    [((422,), "refused", 1), ((503, 503, 503), "failed", 3), ((503, 409), "sent", 2)],
    ids=["4xx not retried", "5xx given up", "replay refusal of a retry"],
)
def test_what_becomes_of_a_webhook(answers: tuple[int, ...], delivery: str, attempts: int) -> None:
    sender, requests = _sender(*answers)
    assert sender.send(EVENT) == delivery
    assert len(requests) == attempts
