"""Two `civicsense serve` processes behind one (imaginary) load balancer: a browser session
opened on one is honoured and ended on the other, and a payment taken by one shows on the
other's live control-map stream (PostgreSQL LISTEN/NOTIFY between processes)."""

from __future__ import annotations

import time

import httpx
import psycopg

from core.identity.principal import CSRF_HEADER, SESSION_COOKIE
from core.settings import Settings
from ingest.pipeline import Pipeline
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer
from tests.kit.parking import ALWAYS, bay_events, park, parking_town
from tests.kit.server import serve_process

AGENT = "agent@annecy.fr"
EVENTS = "/api/v1/parking/bays/events"


def test_a_payment_on_one_process_reaches_the_map_stream_of_another(
    conn: psycopg.Connection, settings: Settings, pipeline: Pipeline
) -> None:
    town = parking_town(conn, settings, bays=2, zone={"hours": ALWAYS, "grace_minutes": 0})
    add_user(conn, tenant_id=town.tenant_id, email=AGENT, roles=["enforcement_agent"])
    seller = bearer(add_api_key(conn, tenant_id=town.tenant_id, permissions=["parking:sessions"]))
    park(pipeline, town, "B1", 1)
    with serve_process(settings) as first, serve_process(settings) as second:
        login = httpx.post(f"{first.base}/api/v1/auth/session",
                           data={"username": AGENT, "password": PASSWORD})  # fmt: skip
        assert login.status_code == 200, login.text
        cookies = {SESSION_COOKIE: login.cookies[SESSION_COOKIE]}
        csrf = {CSRF_HEADER: login.json()["csrf_token"]}
        me = httpx.get(f"{second.base}/api/v1/auth/me", cookies=cookies)
        assert me.status_code == 200 and me.json()["label"] == AGENT

        with (
            httpx.Client(base_url=first.base, cookies=cookies, timeout=10) as agent,
            agent.stream("GET", EVENTS) as stream,
        ):
            assert stream.status_code == 200
            events = bay_events(stream)
            statuses = {f["id"]: f["properties"]["status"] for f in next(events)["features"]}
            assert statuses["B1"] == "unpaid"
            paid_at = time.monotonic()
            payment = {"plate": "AB-123-CD", "zone": "Z1", "bay": "B1", "duration_minutes": 60}
            started = httpx.post(
                f"{second.base}/api/v1/parking/sessions", headers=seller, json=payment
            )
            assert started.status_code == 201, started.text
            changed = next(events)
            delay = time.monotonic() - paid_at
            assert [(f["id"], f["properties"]["status"]) for f in changed["features"]] == [
                ("B1", "paid")
            ]
            assert delay < 5, f"the other process's map learnt of the payment after {delay:.1f} s"

        ended = httpx.delete(f"{second.base}/api/v1/auth/session", cookies=cookies, headers=csrf)
        assert ended.status_code == 204
        assert httpx.get(f"{first.base}/api/v1/auth/me", cookies=cookies).status_code == 401
