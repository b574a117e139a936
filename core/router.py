"""core's routes: health (liveness) and ready (the database, the broker, the scheduler)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import psycopg_pool
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .mqtt import new_client
from .scheduler import installed_jobs
from .settings import Settings

router = APIRouter(tags=["health"])
log = logging.getLogger("civicsense.ready")

DATABASE_TIMEOUT_S = 2.0
BROKER_TIMEOUT_S = 2.0
#: Probes within this many seconds share one round of checks: an unauthenticated route
#: must not let anyone make the app open broker connections at will.
READY_CACHE_S = 2.0
_OK = "ok"
_checking = threading.Lock()

_RECENT_SUCCESS = """
SELECT EXISTS (SELECT FROM scheduler_runs
               WHERE outcome = 'ok' AND finished_at > clock_timestamp() - make_interval(secs => %s))
"""


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/ready",
    responses={503: {"description": "Not ready: `detail` names the failing checks"}},
)
def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers a query, the broker accepts a connection (when one
    is configured), and some process ran a scheduled job successfully recently (twice the
    shortest job interval). 200 with each check's status, or 503 naming the failing ones."""
    state = request.app.state
    with _checking:
        cached: tuple[float, dict[str, str]] | None = getattr(state, "readiness", None)
        if cached is None or time.monotonic() - cached[0] > READY_CACHE_S:
            cached = (time.monotonic(), _checks(state.settings, state.pool, state.privileged_pool))
            state.readiness = cached
    checks = cached[1]
    failing = [name for name, status in checks.items() if status not in (_OK, "not configured")]
    body: dict[str, Any] = {"checks": checks}
    if failing:
        return JSONResponse({"detail": f"not ready: {', '.join(failing)}", **body}, 503)
    return JSONResponse({"status": "ready", **body})


def _checks(
    settings: Settings, pool: psycopg_pool.ConnectionPool, privileged: psycopg_pool.ConnectionPool
) -> dict[str, str]:
    """Each check's status; failures say what failed, never where (no URL, no error text)."""
    database = _database(pool)
    return {
        "database": database,
        "broker": _broker(settings.mqtt_url),
        "scheduler": _scheduler(privileged) if database == _OK else "not checked",
    }


def _database(pool: psycopg_pool.ConnectionPool) -> str:
    try:
        with pool.connection(timeout=DATABASE_TIMEOUT_S) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {int(DATABASE_TIMEOUT_S * 1000)}")
            conn.execute("SELECT 1")
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        log.warning("ready: database check failed: %s", type(exc).__name__)
        return "unreachable"
    return _OK


def _scheduler(pool: psycopg_pool.ConnectionPool) -> str:
    """A job ran successfully within twice the shortest interval, in any process."""
    window = 2 * min(job.every_seconds for job in installed_jobs())
    try:
        with pool.connection(timeout=DATABASE_TIMEOUT_S) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {int(DATABASE_TIMEOUT_S * 1000)}")
            row = conn.execute(_RECENT_SUCCESS, (window,)).fetchone()
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        log.warning("ready: scheduler check failed: %s", type(exc).__name__)
        return "not checked"
    return _OK if row and row[0] else f"no successful job run in the last {window} s"


def _broker(url: str) -> str:
    """An MQTT connection accepted (CONNACK) within BROKER_TIMEOUT_S."""
    if not url:
        return "not configured"
    try:
        client, address = new_client(url, f"civicsense-ready-{uuid.uuid4().hex[:12]}")
    except ValueError:
        return "misconfigured"
    accepted: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: accepted.append(not reason.is_failure)
    client.connect_timeout = BROKER_TIMEOUT_S
    deadline = time.monotonic() + BROKER_TIMEOUT_S
    try:
        client.connect(address.host, address.port, keepalive=10)
        while not accepted and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    except OSError as exc:  # refused, timed out, TLS handshake
        log.warning("ready: broker check failed: %s", type(exc).__name__)
        return "unreachable"
    finally:
        client.disconnect()
        client.loop(timeout=0.01)  # sends the DISCONNECT and closes the socket
    if accepted == [True]:
        return _OK
    return "refused the connection" if accepted else "unreachable"
