"""Phase 5, bulk onboarding: a CSV of devices imported, then provisioned in ChirpStack.

Runs in a database of its own (`bench_onboarding`, migrated) on the benchmark's durable
PostgreSQL, so that the ingest phases' fleet (tenant `bench`, no AppKeys) is not in
the provisioning queue, with tenants it creates and a fresh Fernet key for the AppKeys.
A 20-line import first warms the process up, as a running API process is.

- import: `devices.service.import_csv` on the whole file the way the API runs it (role
  `civicsense_app` under row-level security, tenant set for the transaction, one
  transaction for the file with a savepoint per line, one commit), then the same file
  again (the idempotent path: every valid line `unchanged`); and a smaller file of other
  devices the way `civicsense devices import` runs it (owner's connection in autocommit:
  a commit per line);
- provisioning: `devices.provisioning.provision_pending` against a real gRPC server
  implementing ChirpStack's DeviceService on loopback (`tests.kit.chirpstack`, in this
  process), with the throttle set far above what is reached, then a few more devices at
  the default throttle (20 requests/s) to check the rate it implies;
- baseline: the naive import of another file's valid lines, one `INSERT` + `COMMIT` per
  device, no validation, no normalisation, no lookup, no per-line report (AppKeys
  encrypted, as stored), with the API's role and tenant setting.
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import psycopg
from psycopg import sql
from pydantic import SecretStr

from core import crypto, tenants
from core.db import APP_ROLE
from core.settings import Settings
from devices import codecs, service
from devices.provisioning import provision_pending
from ingest.simulator import demo_fleet
from ingest.simulator.fleet import MODEL_BY_KIND
from tests.kit.chirpstack import DeviceStore, chirpstack_server

from .cpu import CpuMeter
from .services import Services

DATABASE = "bench_onboarding"
TENANT = "onboarding"
TOKEN = "bench-chirpstack-api-key"
APPLICATION = "b3a1c0de-0000-4000-8000-00000000b001"
PROFILES = {model: f"profile-{model}" for model in MODEL_BY_KIND.values()}
JOIN_EUIS = {model: f"70b3d57ed000{n:04x}" for n, model in enumerate(sorted(PROFILES), 1)}
UNTHROTTLED_RPS = 1_000_000.0  # a call every µs: far above the ~1,000 calls/s reached
DEFAULT_RPS: float = Settings.model_fields["chirpstack_requests_per_second"].default
CALLS_PER_DEVICE = 2  # Create + CreateKeys
HEADER = ("dev_eui", "model", "name", "join_eui", "app_key", "lat", "lon", "site", "bay")
COLUMNS = ("tenant_id", "dev_eui", "model", "name", "join_eui", "app_key_encrypted",
           "lat", "lon", "site", "bay")  # fmt: skip
_BAD = ("dev_eui", "model", "app_key")  # what an invalid line gets wrong, in turn


@dataclass(frozen=True)
class Expected:
    """What a valid line should become, here and in ChirpStack."""

    model: str
    app_key: str  # normalised: lowercase hex
    join_eui: str
    site: str
    bay: str


@dataclass
class CsvFile:
    """A CSV file of devices as a technician uploads it, and what each line should do."""

    data: bytes
    lines: int
    valid: dict[str, Expected] = field(default_factory=dict)  # DevEUI → expected
    invalid_lines: set[int] = field(default_factory=set)  # file line numbers (header = 1)
    rows: list[dict[str, str]] = field(default_factory=list)  # the valid lines' cells


def build_csv(lines: int, *, seed: int, invalid_every: int = 100) -> CsvFile:
    """`lines` devices of the demo town (its three models, registered codecs), with
    random AppKeys (upper case, as spreadsheets keep them), each model's join EUI, the
    street or building as site and the bay or room; one line in `invalid_every` has a
    malformed DevEUI, an unknown model or a short AppKey (0: none)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    result = CsvFile(data=b"", lines=lines)
    for n, device in enumerate(demo_fleet(lines, seed=seed)):
        assert device.model in codecs.registry()
        app_key = rng.randbytes(16).hex()
        row = {
            "dev_eui": device.dev_eui, "model": device.model, "name": device.name,
            "join_eui": JOIN_EUIS[device.model], "app_key": app_key.upper(),
            "lat": f"{device.lat}", "lon": f"{device.lon}", "site": device.site,
            "bay": device.place,
        }  # fmt: skip
        if invalid_every and n % invalid_every == invalid_every - 1:
            bad = _BAD[(n // invalid_every) % len(_BAD)]
            row[bad] = {"dev_eui": device.dev_eui[:-1] + "z", "model": "unknown-model",
                        "app_key": app_key[:30]}[bad]  # fmt: skip
            result.invalid_lines.add(n + 2)
        else:
            result.valid[device.dev_eui] = Expected(
                device.model, app_key, JOIN_EUIS[device.model], device.site, device.place
            )
            result.rows.append(row)
        writer.writerow(row[column] for column in HEADER)
    result.data = out.getvalue().encode()
    return result


def _counts(results: list[service.LineResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def import_api(
    url: str, settings: Settings, tenant_id: int, data: bytes, *, commit: bool = True
) -> tuple[list[service.LineResult], float]:
    """`import_csv` as `POST /devices/import` runs it (without HTTP, authentication and
    its one audit entry): as the application role, tenant set for the one transaction,
    committed at the end (rolled back with `commit=False`). Returns the line results and
    the seconds to the commit."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.commit()
        started = time.perf_counter()
        conn.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id),))
        results = service.import_csv(conn, settings, tenant_id=tenant_id, data=data)
        if commit:
            conn.commit()
        else:
            conn.rollback()
        return results, time.perf_counter() - started


def import_cli(
    url: str, settings: Settings, tenant_id: int, data: bytes
) -> tuple[list[service.LineResult], float]:
    """`import_csv` as `civicsense devices import` runs it: the owner's connection in
    autocommit, so every line's `register` transaction is a commit of its own."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        results = service.import_csv(conn, settings, tenant_id=tenant_id, data=data)
        return results, time.perf_counter() - started


def naive_insert(url: str, settings: Settings, tenant_id: int, data: bytes) -> float:
    """The baseline: per CSV line, one INSERT of its cells as they are (AppKey encrypted,
    as stored) in a transaction of its own; same role and tenant setting as the API.
    No validation, no normalisation, no check for an existing DevEUI, no report."""
    query = sql.SQL("INSERT INTO devices ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.execute("SELECT set_config('civicsense.tenant_id', %s, false)", (str(tenant_id),))
        started = time.perf_counter()
        for row in csv.DictReader(io.StringIO(data.decode())):
            key = crypto.encrypt(settings, row["app_key"])
            conn.execute(query, (
                tenant_id, row["dev_eui"], row["model"], row["name"], row["join_eui"] or None,
                key, row["lat"] or None, row["lon"] or None, row["site"] or None,
                row["bay"] or None,
            ))  # fmt: skip
        return time.perf_counter() - started


class Meter:
    """CPU of the benchmark process (importer, provisioner and gRPC server) and of
    PostgreSQL, whose backends here live and die within the measure: a thread reads every
    server process's CPU time every 50 ms, so a backend's last < 50 ms are missed."""

    BENCH = "bench (client + gRPC server)"

    def __init__(self, services: Services) -> None:
        pid_file = services.postgres.data_dir / "postmaster.pid"
        self._postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        self._meter = CpuMeter()
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self, *, new_from_zero: bool) -> None:
        for process in [self._postmaster, *self._postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                cpu = times.user + times.system
                self._first.setdefault(process.pid, 0.0 if new_from_zero else cpu)
                self._last[process.pid] = cpu

    def _poll(self) -> None:
        while not self._done.wait(0.05):
            self._sample(new_from_zero=True)

    def start(self) -> None:
        """Snapshot, and start polling PostgreSQL."""
        self._sample(new_from_zero=False)
        self._meter.start({self.BENCH: [psutil.Process()]})
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds by group, `others`, `wall`, `busy_cores`, as `CpuMeter.stop`."""
        self._done.set()
        self._thread.join()
        self._sample(new_from_zero=True)
        cpu = self._meter.stop({self.BENCH: [psutil.Process()]})
        postgres = round(sum(self._last[pid] - self._first[pid] for pid in self._last), 3)
        cpu["others"] = round(max(0.0, cpu["others"] - postgres), 3)
        return {self.BENCH: cpu.pop(self.BENCH), "postgres": postgres, **cpu}


def _provision(services: Services, settings: Settings, store: DeviceStore) -> dict[str, Any]:
    """One `provision_pending` run, timed, with the CPU it used and the calls it made."""
    calls = store.calls
    meter = Meter(services)
    meter.start()
    started = time.perf_counter()
    report = provision_pending(settings)
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    return {
        "requests_per_second_setting": settings.chirpstack_requests_per_second,
        "provisioned": report.provisioned,
        "failed": report.failed,
        "unavailable": report.unavailable,
        "errors": dict(list(report.errors.items())[:5]),
        "grpc_calls": store.calls - calls,
        "elapsed_s": elapsed,
        "devices_per_s": report.provisioned / elapsed,
        "calls_per_s": (store.calls - calls) / elapsed,
        "cpu_s": cpu,
    }


def _import_result(
    results: list[service.LineResult], elapsed: float, csv_file: CsvFile, expect: str
) -> tuple[dict[str, Any], list[str]]:
    """The figures of one import, and what differs from: every valid line `expect`ed
    once, every invalid line reported as an error (nothing else)."""
    counts = _counts(results)
    by_line = {r.line: r for r in results}
    problems = []
    wrong = [r for r in results if (r.status == "error") != (r.line in csv_file.invalid_lines)]
    if wrong:
        problems.append(f"{len(wrong)} line(s) with the wrong outcome, e.g. {wrong[0]}")
    done = {r.dev_eui for r in results if r.status == expect}
    if done != set(csv_file.valid) or counts.get(expect, 0) != len(csv_file.valid):
        problems.append(f"{counts.get(expect, 0):,} lines {expect}, {len(csv_file.valid):,} valid")
    if len(by_line) != csv_file.lines:
        problems.append(f"{len(by_line):,} lines reported of {csv_file.lines:,}")
    return {
        "lines": csv_file.lines,
        "valid": len(csv_file.valid),
        "counts": counts,
        "elapsed_s": elapsed,
        "lines_per_s": csv_file.lines / elapsed,
        "devices_per_s": counts.get(expect, 0) / elapsed,
    }, problems


def _check_server(
    url: str, tenant_id: int, store: DeviceStore, csv_file: CsvFile
) -> tuple[dict[str, Any], list[str]]:
    """The devices table and the ChirpStack server against the file: every valid device
    once, provisioned, and held by the server with its profile, join EUI, tags and AppKey
    (in `nwk_key`, LoRaWAN 1.0.x); nothing else."""
    problems = []
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT dev_eui, status, provisioning_error FROM devices WHERE tenant_id = %s",
            (tenant_id,),
        ).fetchall()
    euis = [row[0] for row in rows]
    if sorted(euis) != sorted(csv_file.valid):
        problems.append(
            f"the tenant holds {len(euis):,} devices, {len(set(euis)):,} distinct, "
            f"for {len(csv_file.valid):,} valid lines"
        )
    not_done = [row for row in rows if row[1] != "provisioned" or row[2] is not None]
    if not_done:
        problems.append(f"{len(not_done):,} devices not provisioned, e.g. {not_done[0]}")
    if set(store.devices) != set(csv_file.valid) or set(store.keys) != set(csv_file.valid):
        problems.append(
            f"ChirpStack holds {len(store.devices):,} devices and "
            f"{len(store.keys):,} keys for {len(csv_file.valid):,} valid lines"
        )
    mismatched = []
    for dev_eui, expected in csv_file.valid.items():
        device, keys = store.devices.get(dev_eui), store.keys.get(dev_eui)
        if (
            device is None or keys is None
            or keys.nwk_key != expected.app_key
            or device.application_id != APPLICATION
            or device.device_profile_id != PROFILES[expected.model]
            or device.join_eui != expected.join_eui
            or device.tags.get("civicsense_tenant") != TENANT
            or device.tags.get("site") != expected.site
            or device.tags.get("bay") != expected.bay
        ):  # fmt: skip
            mismatched.append(dev_eui)
    if mismatched:
        problems.append(f"{len(mismatched):,} devices wrong in ChirpStack, e.g. {mismatched[0]}")
    return {
        "devices_in_tenant": len(euis),
        "devices_in_chirpstack": len(store.devices),
        "keys_in_chirpstack": len(store.keys),
        "keys_checked": len(csv_file.valid) - len(mismatched),
    }, problems


def onboarding(
    services: Services, *, devices: int, throttled: int, cli_lines: int
) -> dict[str, Any]:
    """Phase 5 (see the module's docstring); `devices` lines in the main file, `throttled`
    devices provisioned at the default throttle, `cli_lines` imported the CLI's way."""
    started = time.perf_counter()
    url = services.database(DATABASE)
    settings = services.settings.model_copy(update={
        "database_url": url,
        "secret_key": SecretStr(crypto.new_key()),
        "chirpstack_api_token": SecretStr(TOKEN),
        "chirpstack_applications": {TENANT: APPLICATION},
        "chirpstack_device_profiles": PROFILES,
        "chirpstack_requests_per_second": UNTHROTTLED_RPS,
    })  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_id = tenants.create(conn, tenants.TenantCreate(slug=TENANT, name="Onboarding"))
        other_id = tenants.create(conn, tenants.TenantCreate(slug="onboarding-2", name="Other"))
    # warm-up, as in a running API process (first validation, codec registry, Fernet);
    # rolled back, so that nothing else waits to be provisioned
    import_api(url, settings, other_id, build_csv(20, seed=5).data, commit=False)
    main = build_csv(devices, seed=1)
    problems: list[str] = []
    out: dict[str, Any] = {"devices": devices, "csv_bytes": len(main.data)}

    meter = Meter(services)
    meter.start()
    results, elapsed = import_api(url, settings, tenant_id, main.data)
    out["import"], found = _import_result(results, elapsed, main, "created")
    out["import"]["cpu_s"] = meter.stop()
    problems += [f"import: {p}" for p in found]

    results, elapsed = import_api(url, settings, tenant_id, main.data)
    out["reimport"], found = _import_result(results, elapsed, main, "unchanged")
    problems += [f"re-import: {p}" for p in found]

    store = DeviceStore(token=TOKEN)
    with chirpstack_server(store) as address:
        settings = settings.model_copy(update={"chirpstack_api_url": address})
        out["provision"] = prov = _provision(services, settings, store)
        if prov["grpc_calls"] != CALLS_PER_DEVICE * prov["provisioned"] or prov["failed"]:
            problems.append(
                f"provisioning made {prov['grpc_calls']:,} gRPC calls for "
                f"{prov['provisioned']:,} devices, {prov['failed']:,} failed: {prov['errors']}"
            )
        out["server"], found = _check_server(url, tenant_id, store, main)
        problems += [f"provisioning: {p}" for p in found]

        few = build_csv(throttled, seed=2, invalid_every=0)
        import_api(url, settings, tenant_id, few.data)
        default = settings.model_copy(update={"chirpstack_requests_per_second": DEFAULT_RPS})
        out["provision_default"] = _provision(services, default, store)
        slow = out["provision_default"]
        if (
            slow["provisioned"] != throttled
            or slow["failed"]
            or set(store.keys) != (set(main.valid) | set(few.valid))
        ):
            problems.append(
                f"default throttle: {slow['provisioned']} of {throttled} provisioned, "
                f"{slow['failed']} failed; ChirpStack holds {len(store.keys):,} keys"
            )
    implied = DEFAULT_RPS / CALLS_PER_DEVICE
    out["provision_default"].update(
        implied_devices_per_s=implied, implied_s_for_file=len(main.valid) / implied
    )

    prefix = build_csv(cli_lines, seed=3)
    results, elapsed = import_cli(url, settings, other_id, prefix.data)
    out["import_cli"], found = _import_result(results, elapsed, prefix, "created")
    problems += [f"CLI import: {p}" for p in found]

    baseline = build_csv(devices, seed=4)
    rows = io.StringIO()
    writer = csv.DictWriter(rows, HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(baseline.rows)
    elapsed = naive_insert(url, settings, other_id, rows.getvalue().encode())
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM devices WHERE dev_eui = ANY(%s)", (list(baseline.valid),)
        ).fetchone()
    out["naive_insert"] = {
        "devices": len(baseline.rows),
        "stored": stored[0] if stored else 0,
        "elapsed_s": elapsed,
        "devices_per_s": len(baseline.rows) / elapsed,
        "commits_per_s": len(baseline.rows) / elapsed,
    }
    if out["naive_insert"]["stored"] != len(baseline.rows):
        problems.append(
            f"baseline stored {out['naive_insert']['stored']:,} of {len(baseline.rows):,} devices"
        )
    out["problems"] = problems
    out["phase_s"] = time.perf_counter() - started
    return out
