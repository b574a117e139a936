"""Observability as an operator sees it: Prometheus metrics that move when traffic flows
(scraped over HTTP), JSON log lines carrying the request id, and the readiness probe.

Metrics are process-wide counters, so each test compares a scrape after the traffic with
one taken before it."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from alerts import delivery, notify
from core import crypto, metrics, scheduler
from core.app import create_app
from core.embedded import EmbeddedBroker
from core.registry import Job
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.worker import start_worker
from tests.kit.mqtt import publish_all
from tests.kit.notifications import add_incident, add_tenant
from tests.kit.parking import PROVIDER, parking_town, post_event
from tests.kit.server import free_port, serve_process
from tests.kit.uplinks import uplink
from tests.kit.waiting import wait_until

TOKEN = "metrics-token-for-tests"
MODEL = "milesight-am103"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when it does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def with_token(settings: Settings) -> Settings:
    """`settings` with the metrics endpoint on."""
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


def scrape_text(client: TestClient) -> str:
    """The app's /metrics, as the scraper holding the token gets it."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def scrape(client: TestClient) -> Samples:
    """The app's metrics, parsed."""
    return parse(scrape_text(client))


@pytest.fixture
def exporter(settings: Settings) -> Iterator[str]:
    """The process's metrics port, as `civicsense ingest` opens it; its URL."""
    port = free_port()
    server = metrics.start_exporter(settings.model_copy(update={"metrics_port": port}))
    assert server is not None
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_ingest_counters_move_by_exactly_what_was_published(
    conn: psycopg.Connection,
    settings: Settings,
    broker: EmbeddedBroker,
    exporter: str,
    request: pytest.FixtureRequest,
) -> None:
    tenant_id = add_tenant(conn)
    known = [f"24e124{index:010x}" for index in range(3)]
    for dev_eui in known:
        device = DeviceCreate(dev_eui=dev_eui, model=MODEL, name=f"Salle {dev_eui[-1]}")
        devices.register(conn, settings, tenant_id=tenant_id, device=device)
    now = datetime.now(UTC)
    readings = {"temperature": 21.5, "humidity": 40}
    valid = [uplink(dev_eui, MODEL, readings, now) for dev_eui in known]
    stranger = uplink("24e124ffffffffff", MODEL, {"temperature": 19}, now)
    messages = [(m.topic, m.payload) for m in valid]
    messages += [(valid[0].topic, valid[0].payload)]  # redelivered: a duplicate
    messages += [(stranger.topic, stranger.payload), (valid[1].topic, b"{not json")]
    assert all(topic is not None for topic, _ in messages)
    worker_settings = settings.model_copy(update={"mqtt_url": broker.url})
    worker = start_worker(worker_settings, client_id=f"obs-{os.getpid()}-{request.node.name}"[:60])
    try:
        assert worker.source.connected.wait(10)
        before = parse(httpx.get(exporter).text)
        publish_all(broker.url, messages)  # type: ignore[arg-type]
        wait_until(lambda: worker.pipeline.stats.received >= len(messages), timeout=30)
        assert worker.pipeline.wait_idle(30)
        after = parse(httpx.get(exporter).text)
    finally:
        worker.stop()
    assert moved(before, after, "civicsense_ingest_received_total") == 6
    assert moved(before, after, "civicsense_ingest_uplinks_stored_total") == 3
    assert moved(before, after, "civicsense_ingest_readings_stored_total") == 6
    assert moved(before, after, "civicsense_ingest_duplicates_total") == 1
    rejected = "civicsense_ingest_rejected_total"
    assert moved(before, after, rejected, reason="unknown_device") == 1
    assert moved(before, after, rejected, reason="invalid_json") == 1
    assert moved(before, after, "civicsense_ingest_batch_size_sum") == 6
    assert moved(before, after, "civicsense_ingest_batch_size_count") >= 1
    assert moved(before, after, "civicsense_ingest_lag_seconds_count") == 3
    assert moved(before, after, "civicsense_ingest_lag_seconds_bucket", le="60.0") == 3
    assert ("civicsense_ingest_queue_depth", frozenset()) in after


def test_http_latency_is_counted_under_the_route_template(settings: Settings) -> None:
    dev_eui = "a840410000abcdef"
    route = {"method": "GET", "route": "/api/v1/devices/{dev_eui}", "status": "401"}
    with TestClient(create_app(with_token(settings))) as client:
        before = scrape(client)
        assert client.get(f"/api/v1/devices/{dev_eui}").status_code == 401
        assert client.get(f"/api/v1/devices/{dev_eui}x").status_code == 401
        assert client.get("/no/such/page").status_code == 404
        after = scrape(client)
    name = "civicsense_http_request_duration_seconds_count"
    assert moved(before, after, name, **route) == 2
    assert moved(before, after, name, method="GET", route="unmatched", status="404") == 1
    assert not any(dev_eui in str(labels) for _, labels in after)


def test_metrics_endpoint_is_off_without_a_token_and_refuses_a_wrong_one(
    settings: Settings,
) -> None:
    off = TestClient(create_app(settings))
    assert off.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    on = TestClient(create_app(with_token(settings)))
    wrong = on.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert on.get("/metrics").status_code == 401
    assert TOKEN not in wrong.text
    assert "civicsense_ingest_received_total" in scrape_text(on)


def passing_job(settings: Settings) -> None:
    """A job that does nothing, successfully."""


def failing_job(settings: Settings) -> None:
    """A job that always fails."""
    raise RuntimeError("the job's own failure")


def test_scheduler_runs_and_failures_are_exposed_per_job(settings: Settings) -> None:
    app = create_app(with_token(settings))
    client = TestClient(app)
    ok = Job(f"obs.ok.{uuid.uuid4().hex[:6]}", f"{__name__}:passing_job", 60)
    bad = Job(f"obs.bad.{uuid.uuid4().hex[:6]}", f"{__name__}:failing_job", 60)
    before = scrape(client)
    assert scheduler.run_job(settings, ok) == "ok"
    assert scheduler.run_job(settings, bad) == "failed"
    assert scheduler.run_job(settings, bad) == "skipped"  # this slot ran already
    after = scrape(client)
    assert moved(before, after, "civicsense_scheduler_job_runs_total", job=ok.name) == 1
    assert moved(before, after, "civicsense_scheduler_job_failures_total", job=ok.name) == 0
    assert moved(before, after, "civicsense_scheduler_job_runs_total", job=bad.name) == 1
    assert moved(before, after, "civicsense_scheduler_job_failures_total", job=bad.name) == 1
    assert moved(before, after, "civicsense_scheduler_job_skipped_total", job=bad.name) == 1
    last_success = "civicsense_scheduler_job_last_success_timestamp_seconds"
    assert value(after, last_success, job=ok.name) > 0
    assert value(after, last_success, job=bad.name) == 0


@pytest.fixture
def receiver() -> Iterator[str]:
    """A webhook receiver answering 204 to everything; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_notification_webhook_outcomes_are_counted(
    conn: psycopg.Connection, settings: Settings, receiver: str
) -> None:
    town = add_tenant(conn)
    for name, target in (("GMAO", receiver), ("Panne", f"http://127.0.0.1:{free_port()}/hook")):
        route = {"name": name, "channel": "webhook", "target": target, "categories": [],
                 "events": [], "min_priority": "P2"}  # fmt: skip
        notify.create_route(conn, tenant_id=town, route=route, created_by=None,
                            secret_encrypted=crypto.encrypt(settings, "hook-secret"))  # fmt: skip
    notify.incident_event(conn, add_incident(conn, town), "opened")
    client = TestClient(create_app(with_token(settings)))
    before = scrape(client)
    assert delivery.deliver_due(settings) == 1
    after = scrape(client)
    name = "civicsense_notification_deliveries_total"
    assert moved(before, after, name, channel="webhook", outcome="delivered") == 1
    assert moved(before, after, name, channel="webhook", outcome="retried") == 1
    assert moved(before, after, name, channel="webhook", outcome="failed") == 0


def test_payment_webhooks_are_counted_accepted_or_rejected_by_reason(
    conn: psycopg.Connection, settings: Settings
) -> None:
    parking_town(conn, settings, bays=1)
    event = {"event_id": "e1", "type": "session.started", "tenant": "annecy",
             "occurred_at": "2026-11-23T10:00:00+01:00",
             "session": {"id": "pm-1", "plate": "ab 123 cd", "zone": "Z1",
                         "started_at": "2026-11-23T10:00:00+01:00"}}  # fmt: skip
    with TestClient(create_app(with_token(settings))) as client:
        before = scrape(client)
        assert post_event(client, event).status_code == 200
        assert post_event(client, event, secret="forged").status_code == 401
        unknown = client.post("/api/v1/parking/providers/nobody/events", json=event)
        assert unknown.status_code == 401
        after = scrape(client)
    assert moved(before, after, "civicsense_payment_webhooks_accepted_total") == 1
    rejected = "civicsense_payment_webhooks_rejected_total"
    assert moved(before, after, rejected, reason="bad_signature") == 1
    assert moved(before, after, rejected, reason="unknown_provider") == 1
    assert PROVIDER != "nobody"


def test_served_app_writes_json_lines_with_the_request_id(settings: Settings) -> None:
    metrics_port = free_port()
    with serve_process(settings, log_format="json", metrics_port=str(metrics_port)) as app:
        sent = httpx.get(f"{app.base}/api/v1/health", headers={"X-Request-ID": "obs-req-42"})
        assert sent.headers["X-Request-ID"] == "obs-req-42"
        odd = httpx.get(f"{app.base}/api/v1/health", headers={"X-Request-ID": "a b\tc"})
        assert odd.headers["X-Request-ID"] != "a b\tc"  # not a sane token: replaced
        exported = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'route="/api/v1/health"' in exported
    records = [json.loads(line) for line in app.stderr.splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("request_id") == "obs-req-42"]
    assert mine, app.stderr[-2000:]
    assert {"time", "level", "logger", "message"} <= mine[0].keys()
    assert "GET /api/v1/health" in mine[0]["message"]
    assert any(r.get("request_id") == odd.headers["X-Request-ID"] for r in records)
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() not in app.stderr


def _ready(settings: Settings) -> httpx.Response:
    with TestClient(create_app(settings)) as client:
        return client.get("/api/v1/ready")


def test_ready_when_database_broker_and_scheduler_are_fine(
    settings: Settings, broker: EmbeddedBroker
) -> None:
    assert scheduler.run_job(settings, Job("obs.ready", f"{__name__}:passing_job", 60)) == "ok"
    response = _ready(settings.model_copy(update={"mqtt_url": broker.url}))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "scheduler": "ok"},
    }


def test_not_ready_names_the_broker_it_cannot_reach_without_saying_where(
    settings: Settings,
) -> None:
    assert scheduler.run_job(settings, Job("obs.ready", f"{__name__}:passing_job", 60)) == "ok"
    port = free_port()  # nobody listens there
    closed = f"mqtt://civicsense:broker-password@127.0.0.1:{port}"
    response = _ready(settings.model_copy(update={"mqtt_url": closed}))
    assert response.status_code == 503
    assert response.json()["detail"] == "not ready: broker"
    assert response.json()["checks"]["broker"] == "unreachable"
    assert "broker-password" not in response.text and str(port) not in response.text


def test_not_ready_names_the_scheduler_when_no_job_ran_recently(
    conn: psycopg.Connection, settings: Settings, broker: EmbeddedBroker
) -> None:
    assert scheduler.run_job(settings, Job("obs.ready", f"{__name__}:passing_job", 60)) == "ok"
    conn.execute("UPDATE scheduler_runs SET finished_at = finished_at - interval '1 hour'")
    response = _ready(settings.model_copy(update={"mqtt_url": broker.url}))
    assert response.status_code == 503
    assert response.json()["detail"] == "not ready: scheduler"
    assert response.json()["checks"]["broker"] == "ok"
