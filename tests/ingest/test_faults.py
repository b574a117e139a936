"""Fault tests: a worker killed mid-stream (alone, or one of two sharing a subscription),
the database unreachable mid-stream.

Both must end with every event stored once: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.db import with_port
from core.embedded import EmbeddedBroker
from core.settings import Settings
from ingest.worker import start_worker
from tests.kit.fleet import register_fleet
from tests.kit.mqtt import publish_all
from tests.kit.proxy import CuttableProxy
from tests.kit.streams import build_stream, expected_counts, stored
from tests.kit.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = float(os.environ.get("CIVICSENSE_TEST_OUTAGE_SECONDS", "30"))


def uplink_count(database_url: str) -> int:
    """Uplinks stored so far."""
    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM uplinks").fetchone()[0])  # type: ignore[index]


class Publisher(threading.Thread):
    """Publishes a stream at a steady rate in the background."""

    def __init__(self, url: str, messages: list[tuple[str, bytes]], rate: float) -> None:
        super().__init__(daemon=True)
        self.args_ = (url, messages, rate)
        self.error: BaseException | None = None

    def run(self) -> None:
        url, messages, rate = self.args_
        try:
            publish_all(url, messages, rate=rate)
        except BaseException as exc:
            self.error = exc


class WorkerProcess:
    """`civicsense ingest` as a real process."""

    def __init__(
        self, settings: Settings, client_id: str, log: Path, shared_group: str = ""
    ) -> None:
        env = {
            **os.environ,
            "CIVICSENSE_DATABASE_URL": settings.database_url,
            "CIVICSENSE_MQTT_URL": settings.mqtt_url,
            "CIVICSENSE_MQTT_SESSION_EXPIRY": "300",
            "CIVICSENSE_BATCH_MAX_AGE_MS": "100",
            "PYTHONPATH": str(ROOT),
        }
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "core", "ingest", "--client-id", client_id),
                    *(("--shared-group", shared_group) if shared_group else ()),
                ],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )

    def wait_subscribed(self, times: int = 1) -> None:
        """Until the log shows its `times`-th subscription."""
        wait_until(lambda: self.log.read_text().count("subscribed to") >= times, timeout=30)

    def kill(self) -> None:
        """SIGKILL: no flush, no disconnect, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def fault_settings(settings: Settings, broker: EmbeddedBroker) -> Settings:
    """Settings on the session broker (mosquitto: amqtt does not redeliver a crashed
    client's in-flight messages, so it cannot give these guarantees)."""
    if broker.kind != "mosquitto":
        pytest.skip("fault tests need mosquitto (amqtt loses a killed client's in-flight messages)")
    return settings.model_copy(
        update={"mqtt_url": broker.url, "batch_max_age_ms": 100, "mqtt_session_expiry": 300}
    )


@pytest.fixture
def stream(conn: psycopg.Connection, fault_settings: Settings) -> Iterator[tuple]:
    """6,000 events of the acceptance mix, their devices registered."""
    messages, expected, registered, fleet = build_stream(6000, seed=11)
    register_fleet(conn, fault_settings, [d for d in fleet if d.dev_eui in registered])
    yield messages, expected


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(
    fault_settings: Settings, stream: tuple, database_url: str, tmp_path: Path
) -> None:
    messages, expected = stream
    client_id = f"kill-test-{os.getpid()}"
    log = tmp_path / "worker.log"
    worker = WorkerProcess(fault_settings, client_id, log)
    try:
        worker.wait_subscribed()
        publisher = Publisher(fault_settings.mqtt_url, messages, rate=800)
        publisher.start()
        wait_until(lambda: uplink_count(database_url) > 1000, timeout=60)
        worker.kill()
        worker = WorkerProcess(fault_settings, client_id, log)
        worker.wait_subscribed(times=2)
        publisher.join(120)
        assert publisher.error is None
        target = expected_counts(expected)
        wait_until(lambda: stored(database_url)["uplinks"] >= target["uplinks"], timeout=120)
        # the last uplinks are in; let the worker finish what it holds, then compare exactly
        worker.stop()
        assert stored(database_url) == target
    finally:
        worker.stop()


def test_one_of_two_shared_workers_killed_mid_stream_loses_and_duplicates_nothing(
    fault_settings: Settings, stream: tuple, database_url: str, tmp_path: Path
) -> None:
    """Two `civicsense ingest` processes on one MQTT 5 shared subscription, as docker/ runs
    them; one is SIGKILLed mid-stream: the other keeps storing, and the killed one, restarted
    under its client id, gets back its session's unacknowledged messages."""
    messages, expected = stream
    group = f"kill-{uuid.uuid4().hex[:8]}"  # a group of its own: earlier tests' sessions stay
    ids = [f"{group}-{i}" for i in range(2)]
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [WorkerProcess(fault_settings, ids[i], logs[i], group) for i in range(2)]
    try:
        for worker in workers:
            worker.wait_subscribed()
        publisher = Publisher(fault_settings.mqtt_url, messages, rate=800)
        publisher.start()
        wait_until(lambda: uplink_count(database_url) > 1000, timeout=60)
        workers[1].kill()
        at_kill = uplink_count(database_url)
        wait_until(lambda: uplink_count(database_url) > at_kill + 500, timeout=60)
        workers[1] = WorkerProcess(fault_settings, ids[1], logs[1], group)
        workers[1].wait_subscribed(times=2)
        publisher.join(120)
        assert publisher.error is None
        target = expected_counts(expected)
        wait_until(lambda: stored(database_url)["uplinks"] >= target["uplinks"], timeout=120)
        for worker in workers:
            worker.stop()
        assert stored(database_url) == target
        shares = [re.findall(r"ingest stopped: uplinks=(\d+)", log.read_text()) for log in logs]
        assert all(int(share[-1]) > 0 for share in shares), f"both took a share: {shares}"
    finally:
        for worker in workers:
            worker.stop()


def test_database_unreachable_for_30s_loses_and_duplicates_nothing(
    fault_settings: Settings, stream: tuple, database_url: str
) -> None:
    messages, expected = stream
    port = int(psycopg.conninfo.conninfo_to_dict(database_url)["port"])  # type: ignore[arg-type]
    proxy = CuttableProxy(port)
    through_proxy = fault_settings.model_copy(
        update={"database_url": with_port(database_url, proxy.port)}
    )
    worker = start_worker(through_proxy, client_id=f"outage-test-{os.getpid()}")
    try:
        assert worker.source.connected.wait(10)
        rate = 6000 / (OUTAGE_SECONDS + 15)
        publisher = Publisher(fault_settings.mqtt_url, messages, rate=rate)
        publisher.start()
        wait_until(lambda: uplink_count(database_url) > 500, timeout=60)
        proxy.cut()
        cut_at = worker.pipeline.stats.received
        outage = threading.Event()
        outage.wait(OUTAGE_SECONDS)  # the outage itself, not a race
        assert worker.pipeline.stats.received > cut_at, "messages kept arriving during the outage"
        proxy.restore()
        publisher.join(OUTAGE_SECONDS + 120)
        assert publisher.error is None
        wait_until(lambda: worker.pipeline.stats.received >= len(messages), timeout=120)
        assert worker.pipeline.wait_idle(120)
        assert worker.pipeline.stats.retries > 0
        assert stored(database_url) == expected_counts(expected)
    finally:
        worker.stop()
        proxy.close()
