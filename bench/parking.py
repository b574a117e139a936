"""Phase 6, the control map: bay-status feed latency, plate checks/s, and freshness from a
committed sensor event or webhook to the live feed.

Runs in a database of its own (`bench_parking`, migrated) on the benchmark's durable
PostgreSQL, with a town of --parking-bays bays (200 per zone, regulated around the clock so
that statuses do not depend on the hour the benchmark runs at), each with a sensor:

- seeding: sensors registered and bays created the API's way (`devices.service.register`,
  `parking.places.create_bay`); each sensor's state sent through the ingest pipeline (60 %
  occupied, arrived over the last three hours); sessions for 70 % of the occupied bays
  through `parking.sessions.merge` (half by bay, half for the zone, a tenth already run
  out); and 30 days of stopped sessions as history (SQL), so that plate look-ups and the
  feed's session query search a realistic table;
- the API runs as `civicsense serve` in a process of its own (one uvicorn process, the
  scheduler on), called over HTTP on loopback with an agent's API key;
- feed latency: `GET /parking/bays/status` right after a change announced without zones
  (every zone recomputed: what every change cost before the feed was kept zone by zone, the
  baseline), right after a change announced in one zone (that zone recomputed, the feed
  reassembled), when the shared snapshot is reused, and `If-None-Match` → 304; then eight
  agents polling at once with their ETag;
- plate checks: `GET /parking/enforcement/plates/{plate}` from one client and from four
  at once (each check audited and committed); baseline: the look-up query alone, in this
  process, by normalised key (the index) against the naive match that normalises every
  stored plate in the query;
- freshness: an SSE client follows `/parking/bays/events`; a sensor uplink submitted to the
  ingest pipeline (in this process: batching, decoding, storing, occupancy rebuilt, NOTIFY)
  or a signed provider webhook flips one bay, and the time from just before the write to
  the SSE event carrying the bay's new status is recorded. Each figure is thus an upper
  bound of commit → feed: it includes the write itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr

from core import crypto, tenants
from core.audit import cli_actor
from core.events import EventBus
from core.identity import repository as identity
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.pipeline import Pipeline
from parking import places, sessions
from parking.changes import CHANNEL
from parking.models import BayCreate, ZoneCreate
from parking.session_models import SessionFacts
from tests.kit.identity import add_api_key
from tests.kit.parking import ALWAYS, SENSOR_MODEL, signed_headers
from tests.kit.server import free_port
from tests.kit.uplinks import uplink

from .services import Services
from .stats import summarise

DATABASE = "bench_parking"
TENANT = "parking-bench"
PROVIDER = "bench-pay"
BAYS_PER_ZONE = 200
OCCUPIED_SHARE = 0.6
PAID_SHARE = 0.7
HISTORY_DAYS = 30
HISTORY_PER_BAY_DAY = 1  # stopped sessions per bay and day in the history
AGENTS = 8
CHECK_CLIENTS = 4
ARRIVAL_TIMEOUT_S = 10.0
#: what a free bay becomes when a car arrives: grace, or paid when an unplaced zone-level
#: session is matched to it, or unverified when its zone's matching is ambiguous
PARKED = {"grace", "paid", "unverified", "unpaid"}
#: what an occupied bay becomes when its driver pays: paid, or overstay when the car has
#: already been there longer than the zone's maximum stay (3 hours; arrivals go back 3 hours)
PAYING = {"paid", "overstay"}
SECRET = "whsec-bench-" + secrets.token_hex(8)  # the operator's signing secret, this run only

_HISTORY = """
INSERT INTO parking_sessions (tenant_id, source, provider, external_id, plate, plate_key,
    zone_id, started_at, ends_at, stopped_at, amount, last_event_at)
SELECT %(tenant)s, 'provider', %(provider)s, 'h' || g,
       'HX-' || lpad((g %% 1000)::text, 3, '0') || '-' || chr(65 + g %% 26) || chr(65 + g / 26 %% 26),
       'HX' || lpad((g %% 1000)::text, 3, '0') || chr(65 + g %% 26) || chr(65 + g / 26 %% 26),
       z.id, s, s + interval '1 hour', s + interval '50 minutes', 2.40, s + interval '50 minutes'
FROM generate_series(1, %(count)s) g
CROSS JOIN LATERAL (SELECT now() - interval '2 days' - (g %% (%(days)s * 1440)) * interval '1 minute' AS s) t
JOIN LATERAL (SELECT id FROM parking_zones WHERE tenant_id = %(tenant)s
              ORDER BY id OFFSET g %% %(zones)s LIMIT 1) z ON true
"""  # noqa: E501
_BY_KEY = "SELECT count(*) FROM parking_sessions WHERE tenant_id = %s AND plate_key = %s"
_NAIVE = (
    "SELECT count(*) FROM parking_sessions WHERE tenant_id = %s"
    " AND upper(regexp_replace(plate, '[^A-Za-z0-9]', '', 'g')) = %s"
)


def _plate(n: int) -> str:
    letters = "ABCDEFGHJKLMNPRSTVWXYZ"
    return f"{letters[n % 22]}{letters[n // 22 % 22]}-{100 + n % 900}-{letters[n // 7 % 22]}B"


class Town:
    """The seeded town: bay codes, their sensors, and what each bay holds now."""

    def __init__(self, tenant_id: int, bays: int) -> None:
        self.tenant_id = tenant_id
        self.codes = [f"Z{n // BAYS_PER_ZONE:02d}-{n % BAYS_PER_ZONE:03d}" for n in range(bays)]
        self.sensors = {code: f"70b3d5bb{n:08x}" for n, code in enumerate(self.codes)}
        self.occupied: set[str] = set()
        self.paid: dict[str, str] = {}  # bay → plate

    @staticmethod
    def zone_of(code: str) -> str:
        return code.split("-")[0]


def _seed(url: str, settings: Settings, bays: int, step: Callable[[str], float]) -> Town:
    """Zones, bays and sensors; sensor states through the pipeline; sessions; history."""
    actor = cli_actor()
    rng = random.Random(6)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        tenant_id = tenants.create(conn, tenants.TenantCreate(slug=TENANT, name="Bench"))
        town = Town(tenant_id, bays)
        for zone in sorted({town.zone_of(code) for code in town.codes}):
            places.create_zone(
                conn, actor, tenant_id, ZoneCreate(code=zone, name=zone, hours=ALWAYS)
            )  # type: ignore[arg-type]
        for n, code in enumerate(town.codes):
            dev_eui = town.sensors[code]
            device = DeviceCreate(dev_eui=dev_eui, model=SENSOR_MODEL, name=f"Capteur {code}")
            devices.register(conn, settings, tenant_id=tenant_id, device=device)
            lat, lon = 45.89 + (n // 100) * 2e-4, 6.12 + (n % 100) * 2e-4
            bay = BayCreate(code=code, zone=town.zone_of(code), lat=lat, lon=lon, sensor=dev_eui)
            places.create_bay(conn, actor, tenant_id, bay)
        secret = crypto.encrypt(settings, SECRET)
        identity.insert_provider(conn, tenant_id=tenant_id, provider=PROVIDER,
                                 secret_encrypted=secret, created_by=None)  # fmt: skip
    step(f"   {bays:,} bays created; sensor states through the ingest pipeline")
    arrivals: dict[str, datetime] = {}
    with _pipeline(settings.model_copy(update={"database_url": url})) as pipeline:
        for code in town.codes:
            at = now - timedelta(minutes=rng.uniform(1, 180))
            occupied = rng.random() < OCCUPIED_SHARE
            pipeline.submit(uplink(town.sensors[code], SENSOR_MODEL, {"occupied": occupied}, at))
            if occupied:
                town.occupied.add(code)
                arrivals[code] = at
        if not pipeline.wait_idle(300):
            raise RuntimeError("the ingest pipeline did not store the sensor states")
    step("   sessions for the occupied bays, and 30 days of history")
    with psycopg.connect(url) as conn:
        for n, code in enumerate(sorted(town.occupied)):
            if rng.random() >= PAID_SHARE:
                continue
            started = arrivals[code] + timedelta(minutes=rng.uniform(0, 5))
            minutes = 10 if rng.random() < 0.1 else 240  # a tenth already run out
            by_bay = rng.random() < 0.5
            facts = SessionFacts(
                id=f"s{n}", plate=_plate(n), zone=town.zone_of(code),
                bay=code if by_bay else None, started_at=started,
                ends_at=started + timedelta(minutes=minutes),
            )  # fmt: skip
            sessions.merge(conn, tenant_id=tenant_id, source="provider", provider=PROVIDER,
                           facts=facts, occurred_at=started)  # fmt: skip
            town.paid[code] = facts.plate
        zones = len({town.zone_of(code) for code in town.codes})
        count = HISTORY_DAYS * HISTORY_PER_BAY_DAY * bays
        conn.execute(_HISTORY, {"tenant": tenant_id, "provider": PROVIDER, "count": count,
                                "days": HISTORY_DAYS, "zones": zones})  # fmt: skip
        conn.execute("ANALYZE")
    return town


@contextlib.contextmanager
def _pipeline(settings: Settings) -> Iterator[Pipeline]:
    pipeline = Pipeline.from_settings(settings, EventBus())
    pipeline.start()
    try:
        yield pipeline
    finally:
        pipeline.stop()


@contextlib.contextmanager
def _api(url: str, settings: Settings, log_path: str) -> Iterator[str]:
    """`civicsense serve` in a process of its own; yields its API base URL."""
    port = free_port()
    env = {**os.environ, "CIVICSENSE_DATABASE_URL": url, "CIVICSENSE_MQTT_URL": settings.mqtt_url,
           "CIVICSENSE_SECRET_KEY": settings.secret_key.get_secret_value(),  # type: ignore[union-attr]
           "CIVICSENSE_LOG_LEVEL": "WARNING", "CIVICSENSE_DATA_DIR": settings.data_dir}  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"civicsense serve did not start; see {log_path}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def _timed_get(client: httpx.Client, url: str, **options: Any) -> tuple[float, httpx.Response]:
    """A GET and how long it took, in seconds."""
    started = time.perf_counter()
    response = client.get(url, **options)
    return time.perf_counter() - started, response


def _after_change(
    client: httpx.Client, feed: str, samples: int, announce: Callable[[], None]
) -> tuple[list[float], int, httpx.Response]:
    """Feed latencies right after `announce`d changes; the reads skipped because the server
    had not heard of the change yet, and the last response."""
    times: list[float] = []
    stale = 0
    while len(times) < samples:
        changed_at = datetime.now(UTC)
        announce()
        seconds, response = _timed_get(client, feed)
        response.raise_for_status()
        if datetime.fromisoformat(response.json()["computed_at"]) < changed_at:
            stale += 1  # not a read after the change
            continue
        times.append(seconds)
    return times, stale, response


def _feed_latency(
    client: httpx.Client, url: str, samples: int, announce: Callable[[str], None],
    zone_id: int,
) -> dict[str, Any]:  # fmt: skip
    """Latencies of the feed after a change of every zone (the baseline: the whole town
    recomputed) and of one zone, then warm (shared snapshot) and 304."""
    feed = f"{url}/parking/bays/status"
    every_zone, stale, response = _after_change(client, feed, samples, lambda: announce(""))
    one_zone, stale_one, _ = _after_change(client, feed, samples, lambda: announce(f":{zone_id}"))
    features = len(response.json()["features"])
    size = len(response.content)
    warm = [_timed_get(client, feed)[0] for _ in range(samples)]
    etag = client.get(feed).headers["ETag"]
    not_modified = []
    for _ in range(samples):
        seconds, response = _timed_get(client, feed, headers={"If-None-Match": etag})
        if response.status_code == 200:  # a zone fell due and was recomputed: new ETag
            etag = response.headers["ETag"]
            continue
        not_modified.append(seconds)
    return {
        "features": features, "body_bytes": size, "stale_reads_skipped": stale + stale_one,
        "after_change_s": summarise(every_zone), "after_zone_change_s": summarise(one_zone),
        "shared_snapshot_s": summarise(warm), "not_modified_s": summarise(not_modified),
    }  # fmt: skip


def _polling(headers: dict[str, str], url: str, seconds: float) -> dict[str, Any]:
    """AGENTS clients polling with their ETag as fast as answered, for `seconds`."""
    stop = time.monotonic() + seconds

    def agent(_: int) -> list[float]:
        times: list[float] = []
        etag = ""
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.monotonic() < stop:
                took, response = _timed_get(
                    client, f"{url}/parking/bays/status", headers={"If-None-Match": etag}
                )
                etag = response.headers.get("ETag", etag)
                times.append(took)
        return times

    with ThreadPoolExecutor(AGENTS) as pool:
        times = [t for each in pool.map(agent, range(AGENTS)) for t in each]
    return {"agents": AGENTS, "polls_per_s": len(times) / seconds, "latency_s": summarise(times)}


def _plate_checks(
    headers: dict[str, str], url: str, plates: list[str], seconds: float, clients: int
) -> dict[str, Any]:
    """Plate checks over HTTP from `clients` clients for `seconds`."""
    stop = time.monotonic() + seconds

    def client_run(offset: int) -> list[float]:
        times: list[float] = []
        with httpx.Client(headers=headers, timeout=30) as client:
            n = offset
            while time.monotonic() < stop:
                plate = plates[n % len(plates)]
                took, response = _timed_get(client, f"{url}/parking/enforcement/plates/{plate}")
                response.raise_for_status()
                times.append(took)
                n += clients
        return times

    with ThreadPoolExecutor(clients) as pool:
        times = [t for each in pool.map(client_run, range(clients)) for t in each]
    return {"clients": clients, "checks_per_s": len(times) / seconds, "latency_s": summarise(times)}


def _lookups(url: str, tenant_id: int, plates: list[str], budget_s: float) -> dict[str, Any]:
    """The look-up query alone: by normalised key against normalising in the query."""
    keys = [p.replace("-", "") for p in plates]
    result: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, query in (("by_key", _BY_KEY), ("naive", _NAIVE)):
            times: list[float] = []
            stop = time.monotonic() + budget_s
            while time.monotonic() < stop and len(times) < 2000:
                key = keys[len(times) % len(keys)]
                started = time.perf_counter()
                conn.execute(query, (tenant_id, key))
                times.append(time.perf_counter() - started)
            result[name] = {"lookups_per_s": len(times) / sum(times), "latency_s": summarise(times)}
        result["sessions"] = conn.execute("SELECT count(*) FROM parking_sessions").fetchone()[0]  # type: ignore[index]
    return result


class _Watcher:
    """An SSE client of the bay feed: when each (bay, status) was last seen arriving."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.ready = threading.Event()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)

    def __enter__(self) -> _Watcher:
        self._thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the SSE stream sent no first event")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx.Timeout(30, read=60)
        with httpx.stream("GET", f"{url}/parking/bays/events", headers=headers,
                          timeout=timeout) as response:  # fmt: skip
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if not line.startswith("data: "):
                    continue
                arrived = time.perf_counter()
                features = json.loads(line[6:])["features"]
                with self._changed:
                    for feature in features:
                        p = feature["properties"]
                        self.seen[(p["bay"], p["status"])] = arrived
                    self._changed.notify_all()
                self.ready.set()

    def wait_for(self, bay: str, statuses: set[str], after: float) -> float | None:
        """When `bay` was first seen in one of `statuses` after `after`; None on timeout."""
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S

        def arrived() -> float | None:
            times = [self.seen.get((bay, s), 0.0) for s in statuses]
            return next((t for t in times if t > after), None)

        with self._changed:
            while (found := arrived()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
        return found


def _record(times: list[float], seen: float | None, started: float) -> None:
    if seen is not None:
        times.append(seen - started)


def _started_event(event_id: str, zone: str, bay: str, n: int) -> dict[str, Any]:
    """A provider's `session.started` for `bay`, paid for an hour from now."""
    now = datetime.now(UTC)
    session = {
        "id": event_id,
        "plate": _plate(100_000 + n),
        "zone": zone,
        "bay": bay,
        "started_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    return {"event_id": event_id, "type": "session.started", "occurred_at": now.isoformat(),
            "tenant": TENANT, "session": session}  # fmt: skip


def _freshness(
    town: Town, url: str, headers: dict[str, str], settings: Settings, trials: int
) -> dict[str, Any]:
    """Sensor uplinks and webhooks that flip a bay, each timed to its SSE event."""
    rng = random.Random(7)
    sensor: list[float] = []
    webhook: list[float] = []
    unpaid = sorted(town.occupied - set(town.paid))
    free = sorted(set(town.codes) - town.occupied)
    rng.shuffle(unpaid)
    rng.shuffle(free)
    with _pipeline(settings) as pipeline, _Watcher(url, headers) as watcher, httpx.Client() as http:
        for n in range(trials):
            bay = free[n]
            started = time.perf_counter()
            pipeline.submit(uplink(town.sensors[bay], SENSOR_MODEL, {"occupied": 1},
                                   datetime.now(UTC)))  # fmt: skip
            _record(sensor, watcher.wait_for(bay, PARKED, started), started)
            bay = unpaid[n]
            body = json.dumps(_started_event(f"fresh-{n}", town.zone_of(bay), bay, n)).encode()
            started = time.perf_counter()
            response = http.post(f"{url}/parking/providers/{PROVIDER}/events", content=body,
                                 headers=signed_headers(body, secret=SECRET))  # fmt: skip
            response.raise_for_status()
            _record(webhook, watcher.wait_for(bay, PAYING, started), started)
    missed = {"sensor": trials - len(sensor), "webhook": trials - len(webhook)}
    return {"trials": trials, "sensor_s": summarise(sensor), "webhook_s": summarise(webhook),
            "missed": missed}  # fmt: skip


def run(services: Services, *, bays: int, seconds: float, trials: int,
        step: Callable[[str], float]) -> dict[str, Any]:  # fmt: skip
    """The whole phase; returns its results."""
    url = services.database(DATABASE)
    secret_key = services.settings.secret_key or SecretStr(crypto.new_key())
    settings = services.settings.model_copy(update={"database_url": url, "secret_key": secret_key})
    started = time.perf_counter()
    town = _seed(url, settings, bays, step)
    results: dict[str, Any] = {"bays": bays, "seed_s": time.perf_counter() - started}
    with psycopg.connect(url) as conn:
        key = add_api_key(conn, tenant_id=town.tenant_id,
                          permissions=["parking:read", "parking:enforce"])  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    with _api(url, settings, f"{settings.data_dir}/bench-parking-serve.log") as api:

        def announce(zones: str) -> None:
            """A change announced as the writers do; `zones`: "" (any zone) or ":<id>"."""
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{town.tenant_id}{zones}"))

        with psycopg.connect(url) as conn:
            zone_id = conn.execute("SELECT min(id) FROM parking_zones").fetchone()[0]  # type: ignore[index]
        with httpx.Client(headers=headers, timeout=60) as client:
            step("   feed latency: after a change (every zone, one zone), shared snapshot, 304")
            results["feed"] = _feed_latency(client, api, 30, announce, zone_id)
            results["feed"]["statuses"] = _statuses(client.get(f"{api}/parking/bays/status").json())
        step(f"   {AGENTS} agents polling for {seconds:.0f} s")
        results["polling"] = _polling(headers, api, seconds)
        plates = list(town.paid.values()) + [_plate(200_000 + n) for n in range(200)]
        step(f"   plate checks for {seconds:.0f} s: 1 client, then {CHECK_CLIENTS}")
        results["plates_1"] = _plate_checks(headers, api, plates, seconds, 1)
        results["plates_n"] = _plate_checks(headers, api, plates, seconds, CHECK_CLIENTS)
        results["lookups"] = _lookups(url, town.tenant_id, plates, seconds)
        step(f"   freshness: {trials} sensor events and {trials} webhooks → SSE")
        results["freshness"] = _freshness(town, api, headers, settings, trials)
    return results


def _statuses(collection: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feature in collection["features"]:
        status = feature["properties"]["status"]
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))
