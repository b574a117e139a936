"""Draining the notification outbox: e-mail through SMTP, signed webhooks through httpx.

A row is claimed by one short statement (`FOR UPDATE SKIP LOCKED`) that counts the attempt
and moves its next_attempt_at a lease ahead: other deliverers, in this process or another,
skip it while it is being sent, and no transaction stays open during the network call.
The send's outcome is then written by a second statement: `sent`, or a retry after an
exponential backoff with jitter (kept in next_attempt_at, so it survives restarts and is
shared by every deliverer), or `failed` after MAX_ATTEMPTS. A deliverer that dies mid-send
leaves the row to be retried when its lease ends: a message may then go twice, never zero
times. The lease is far longer than a send can take (its timeouts), so a live deliverer's
row is never taken over.

`DeliveryWorker` LISTENs on civicsense_notify to send at once after a commit, and polls
every few seconds for retries; the web app runs one (`lifespan`), `deliver_job` is the
scheduler's safety net, and tests or workers can run one standalone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from psycopg.rows import dict_row

from core import crypto, metrics, signatures
from core.listening import StopSignal
from core.mail import Smtp, text_message
from core.settings import Settings

from .notify import CHANNEL

__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryWorker",
    "backoff",
    "configured_smtp",
    "deliver_due",
    "deliver_job",
    "lifespan",
]

log = logging.getLogger("civicsense.alerts.delivery")

MAX_ATTEMPTS = 8
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0
SMTP_TIMEOUT_S = 30.0
WEBHOOK_TIMEOUT_S = 10.0
LEASE = timedelta(minutes=5)  # far above the longest send (SMTP_TIMEOUT_S per step)
_ERROR_CHARS = 500

_warned_unconfigured = False

_CLAIM = """
UPDATE notifications n SET attempts = n.attempts + 1, next_attempt_at = %(lease_until)s
FROM (SELECT id FROM notifications
      WHERE status = 'pending' AND next_attempt_at <= %(now)s AND channel = ANY (%(channels)s)
      ORDER BY next_attempt_at, id
      LIMIT 1
      FOR UPDATE SKIP LOCKED) due
WHERE n.id = due.id
RETURNING n.id, n.channel, n.target, n.event, n.subject, n.body, n.payload, n.attempts,
          n.route_id,
          (SELECT r.secret_encrypted FROM notification_routes r WHERE r.id = n.route_id) AS secret
"""

_SENT = """
UPDATE notifications SET status = 'sent', sent_at = clock_timestamp(), last_error = NULL
WHERE id = %s AND attempts = %s AND status = 'pending'
"""

_FAILED = """
UPDATE notifications SET status = %s, next_attempt_at = %s, last_error = %s
WHERE id = %s AND attempts = %s AND status = 'pending'
"""


class _Refused(Exception):
    """The receiver answered, but not with success."""


class _Permanent(_Refused):
    """A send that no retry can fix (its route is gone, its secret unreadable)."""


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from 30 s up to an hour, with
    "equal jitter" (half fixed, half random) so failed rows do not all retry at once."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempts - 1))
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))


def configured_smtp(settings: Settings) -> Smtp | None:
    """The SMTP server, or None (said once in the log) when `smtp_url` is unset."""
    global _warned_unconfigured
    url = settings.smtp_url.get_secret_value() if settings.smtp_url else ""
    if url:
        return Smtp.from_url(url)
    if not _warned_unconfigured:
        log.warning("incident notifications wait: smtp_url is not configured")
        _warned_unconfigured = True
    return None


@dataclass
class _Senders:
    """What one drain sends through, opened once for all its rows."""

    settings: Settings
    smtp: Smtp | None
    http: httpx.Client

    def send(self, row: dict[str, Any]) -> None:
        """Send one claimed row; raises on failure."""
        if row["channel"] == "email":
            assert self.smtp is not None
            message = text_message(sender=self.settings.smtp_from, to=row["target"],
                                   subject=row["subject"], body=row["body"])  # fmt: skip
            self.smtp.send(message, timeout=SMTP_TIMEOUT_S)
            return
        if row["secret"] is None:
            raise _Permanent("its webhook route was deleted")
        try:
            secret = crypto.decrypt(self.settings, bytes(row["secret"]))
        except (ValueError, crypto.SecretKeyMissing) as exc:
            raise _Permanent(f"webhook secret unreadable: {exc}") from None
        body = json.dumps(row["payload"], ensure_ascii=False).encode()
        timestamp = int(time.time())
        response = self.http.post(
            row["target"],
            content=body,
            headers={
                "Content-Type": "application/json",
                signatures.TIMESTAMP_HEADER: str(timestamp),
                signatures.SIGNATURE_HEADER: signatures.sign(secret, timestamp, body),
                "X-Civicsense-Event": row["event"],
                "X-Civicsense-Delivery": str(row["id"]),
            },
        )
        if not response.is_success:
            raise _Refused(f"HTTP {response.status_code} from the webhook")


def _deliver(conn: psycopg.Connection, settings: Settings, limit: int, now: datetime | None) -> int:
    """Claim, send and settle up to `limit` due rows, one at a time; how many were sent."""
    smtp = configured_smtp(settings)
    channels = ["email", "webhook"] if smtp else ["webhook"]
    sent = 0
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as http:
        senders = _Senders(settings, smtp, http)
        for _ in range(limit):
            moment = now or datetime.now(UTC)
            params = {"now": moment, "lease_until": moment + LEASE, "channels": channels}
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(_CLAIM, params).fetchone()
            if row is None:
                break
            try:
                senders.send(row)
            except (_Refused, OSError, httpx.HTTPError) as exc:  # smtplib's errors are OSErrors
                _settle_failure(conn, row, exc, moment)
            else:
                conn.execute(_SENT, (row["id"], row["attempts"]))
                metrics.NOTIFICATION_DELIVERIES.labels(row["channel"], "delivered").inc()
                sent += 1
    return sent


def _settle_failure(
    conn: psycopg.Connection, row: dict[str, Any], exc: Exception, moment: datetime
) -> None:
    """Schedule the row's retry, or give it up; the error kept names no secret."""
    error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    final = isinstance(exc, _Permanent) or row["attempts"] >= MAX_ATTEMPTS
    status = "failed" if final else "pending"
    retry_at = moment if final else moment + backoff(row["attempts"])
    conn.execute(_FAILED, (status, retry_at, error, row["id"], row["attempts"]))
    outcome = "failed" if final else "retried"
    metrics.NOTIFICATION_DELIVERIES.labels(row["channel"], outcome).inc()
    log.warning("notification %s (%s) attempt %d: %s%s", row["id"], row["channel"],
                row["attempts"], error, "; given up" if final else "")  # fmt: skip


def deliver_due(settings: Settings, *, limit: int = 100, now: datetime | None = None) -> int:
    """Send up to `limit` due pending notifications; how many were sent. Safe to run in
    several processes at once: each row is claimed by one of them."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return _deliver(conn, settings, limit, now)


def deliver_job(settings: Settings) -> None:
    """Scheduled safety net: whatever is due, when no worker woke up for it."""
    deliver_due(settings)


class DeliveryWorker:
    """A thread sending notifications as soon as they are committed, retrying the due ones
    every `poll_seconds`; reconnects when the database goes away."""

    def __init__(self, settings: Settings, *, poll_seconds: float = 5.0, limit: int = 100):
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.limit = limit
        self._stop = StopSignal()
        self._thread = threading.Thread(target=self._run, name="notification-delivery",
                                        daemon=True)  # fmt: skip

    def start(self) -> DeliveryWorker:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end and wait for it (after the send under way)."""
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._stop.close()

    def __enter__(self) -> DeliveryWorker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        url = self.settings.database_url
        while not self._stop.is_set():
            try:
                with (
                    psycopg.connect(url, autocommit=True) as listener,
                    psycopg.connect(url, autocommit=True) as conn,
                ):
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._serve(listener, conn)
            except psycopg.OperationalError as exc:
                log.warning("notification delivery lost its database connection: %s", exc)
                self._stop.wait(1.0)
            except Exception:  # a bug or a bad setting must not end delivery for good
                log.exception("notification delivery failed; starting again in 5 s")
                self._stop.wait(5.0)

    def _serve(self, listener: psycopg.Connection, conn: psycopg.Connection) -> None:
        """Drain, then wait for a notification or the poll interval, until stopped."""
        while not self._stop.is_set():
            while _deliver(conn, self.settings, self.limit, None) == self.limit:
                if self._stop.is_set():
                    return
            wake_at = time.monotonic() + self.poll_seconds
            while not self._stop.is_set() and (left := wake_at - time.monotonic()) > 0:
                if self._stop.notifies(listener, left):
                    break


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run a delivery worker while the web app runs."""
    worker = DeliveryWorker(app.state.settings).start()
    try:
        yield
    finally:
        await asyncio.to_thread(worker.stop)
