"""Delivery of the outbox for real: aiosmtpd for e-mail, an HTTP server checking the
signatures for webhooks, retries with backoff, and deliverers racing for the same rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from alerts import delivery, notify
from core import crypto, signatures
from core.settings import Settings
from tests.kit.identity import add_user
from tests.kit.notifications import add_incident, add_tenant
from tests.kit.smtp import smtp_server
from tests.kit.waiting import wait_until

SECRET = "webhook-shared-secret-0123"


@dataclass
class Receiver:
    """A webhook receiver: answers `status`, keeps the verified payloads."""

    status: int = 200
    payloads: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                signatures.verify(SECRET, self.headers.get(signatures.TIMESTAMP_HEADER),
                                  self.headers.get(signatures.SIGNATURE_HEADER), body,
                                  time.time())  # fmt: skip
            except signatures.SignatureError as exc:
                state.refused.append(str(exc))
                self.send_response(401)
            else:
                if state.status == 200:
                    state.payloads.append(json.loads(body))
                self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def with_smtp(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"smtp_url": SecretStr(url)})


def rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """(target, status, attempts, next_attempt_at, last_error), by id."""
    return conn.execute(
        "SELECT target, status, attempts, next_attempt_at, last_error FROM notifications"
        " ORDER BY id"
    ).fetchall()


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    tenant_id = add_tenant(conn)
    add_user(conn, tenant_id=tenant_id, email="fm@lyon.fr", roles=["facility_manager"])
    return tenant_id


def add_webhook(conn: psycopg.Connection, settings: Settings, tenant_id: int, url: str) -> None:
    route = {"name": "GMAO", "channel": "webhook", "target": url, "categories": [],
             "events": [], "min_priority": "P2"}  # fmt: skip
    notify.create_route(conn, tenant_id=tenant_id, route=route, created_by=None,
                        secret_encrypted=crypto.encrypt(settings, SECRET))  # fmt: skip


def test_email_is_delivered_with_its_bilingual_text(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident_id = add_incident(conn, town)
    notify.incident_event(conn, incident_id, "opened")
    with smtp_server() as server:
        assert delivery.deliver_due(with_smtp(settings, server.url)) == 1
        (received,) = server.messages
    assert received.rcpt_tos == ["fm@lyon.fr"]
    assert received.message["Subject"] == (
        "[civicsense] P0 bloquant — Fuite d'eau détectée : Gymnase Jean Moulin"
    )
    assert "02/03/2026 11:00 (Europe/Paris)" in received.message.get_content()  # GTI, Paris
    ((_, status, attempts, _, error),) = rows(conn)
    assert (status, attempts, error) == ("sent", 1, None)


def test_without_smtp_rows_wait(conn: psycopg.Connection, settings: Settings, town: int) -> None:
    notify.incident_event(conn, add_incident(conn, town), "opened")
    assert delivery.deliver_due(settings) == 0
    assert [(status, attempts) for _, status, attempts, _, _ in rows(conn)] == [("pending", 0)]


def test_smtp_down_is_retried_with_backoff_then_sent(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    notify.incident_event(conn, add_incident(conn, town), "opened")
    now = datetime.now(UTC)
    with smtp_server() as server:
        url = server.url
    down = with_smtp(settings, url)  # the server is stopped: nobody listens there
    assert delivery.deliver_due(down, now=now) == 0
    ((_, status, attempts, retry_at, error),) = rows(conn)
    assert (status, attempts) == ("pending", 1)
    assert now + timedelta(seconds=15) <= retry_at <= now + timedelta(seconds=30)
    assert "Connection refused" in error or "ConnectionRefused" in error
    assert delivery.deliver_due(down, now=now + timedelta(seconds=5)) == 0  # not due yet
    assert rows(conn)[0][2] == 1
    with smtp_server() as server:
        back = with_smtp(settings, server.url)
        assert delivery.deliver_due(back, now=retry_at) == 1
        assert len(server.messages) == 1
    assert rows(conn)[0][1:3] == ("sent", 2)


def test_gives_up_after_the_last_attempt(
    conn: psycopg.Connection, settings: Settings, town: int, receiver: Receiver
) -> None:
    add_webhook(conn, settings, town, receiver.url)
    notify.incident_event(conn, add_incident(conn, town), "opened")
    receiver.status = 500
    conn.execute("UPDATE notifications SET attempts = %s", (delivery.MAX_ATTEMPTS - 1,))
    assert delivery.deliver_due(settings) == 0
    webhook = next(r for r in rows(conn) if r[0] == receiver.url)
    assert webhook[1:3] == ("failed", delivery.MAX_ATTEMPTS)
    assert webhook[4] == "_Refused: HTTP 500 from the webhook"


def test_webhook_500_is_retried_and_200_marks_sent(
    conn: psycopg.Connection, settings: Settings, town: int, receiver: Receiver
) -> None:
    add_webhook(conn, settings, town, receiver.url)
    incident_id = add_incident(conn, town)
    notify.incident_event(conn, incident_id, "opened")
    receiver.status = 500
    now = datetime.now(UTC)
    assert delivery.deliver_due(settings, now=now) == 0
    (webhook,) = [r for r in rows(conn) if r[0] == receiver.url]
    assert webhook[1:3] == ("pending", 1) and webhook[3] > now
    receiver.status = 200
    assert delivery.deliver_due(settings, now=webhook[3]) == 1
    assert [r[1] for r in rows(conn) if r[0] == receiver.url] == ["sent"]
    (payload,) = receiver.payloads
    assert payload["event"] == "opened" and payload["incident_id"] == incident_id
    assert (payload["class"], payload["priority"], payload["category"]) == (
        "bloquant",
        "P0",
        "leak",
    )
    assert payload["gti_due_at"] == "2026-03-02T10:00:00+00:00"
    assert receiver.refused == []
    assert SECRET not in str(rows(conn))


def test_two_deliverers_never_send_a_row_twice(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    for index in range(40):
        add_user(conn, tenant_id=town, email=f"tech{index}@lyon.fr", roles=["technician"])
    for _ in range(3):
        notify.incident_event(conn, add_incident(conn, town), "opened")
    queued = conn.execute("SELECT count(*) FROM notifications").fetchone()
    assert queued is not None and queued[0] == 123
    with smtp_server() as server:
        mailed = with_smtp(settings, server.url)
        counts: list[int] = []
        start = threading.Barrier(3)

        def deliverer() -> None:
            start.wait()
            counts.append(delivery.deliver_due(mailed, limit=200))

        threads = [threading.Thread(target=deliverer) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        messages = server.messages
    assert sum(counts) == 123 and len(messages) == 123
    assert all(count > 0 for count in counts), counts  # they really ran side by side
    keys = [(m.rcpt_tos[0], m.message.get_content()) for m in messages]
    assert len(set(keys)) == 123


_LISTENING = (
    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
)


def test_worker_sends_as_soon_as_the_change_commits(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident_id = add_incident(conn, town)
    with smtp_server() as server:
        mailed = with_smtp(settings, server.url)
        with delivery.DeliveryWorker(mailed, poll_seconds=3600):
            wait_until(lambda: conn.execute(_LISTENING).fetchone(), timeout=10)
            notify.incident_event(conn, incident_id, "opened")  # autocommit: commits now
            wait_until(lambda: server.messages, timeout=10)
        assert [m.rcpt_tos for m in server.messages] == [["fm@lyon.fr"]]
