"""Acceptance: 10,000 ChirpStack events through a real broker into PostgreSQL.

Mixed JSON and protobuf, 5 % duplicated deduplicationIds (some re-encoded in the
other format), 1 % malformed, 1 % from unknown devices: exactly the unique valid
uplinks and their readings are stored, and every reject is recorded with its reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from core.embedded import EmbeddedBroker
from core.settings import Settings
from ingest.worker import Worker, start_worker
from tests.kit.fleet import register_fleet
from tests.kit.mqtt import publish_all
from tests.kit.streams import build_stream, expected_counts, stored
from tests.kit.waiting import wait_until

TOTAL = 10_000


@pytest.fixture
def worker_settings(settings: Settings, broker: EmbeddedBroker) -> Settings:
    """Settings with this test's database and the session broker, on a private topic tree."""
    return settings.model_copy(
        update={"mqtt_url": broker.url, "batch_max_age_ms": 100, "mqtt_session_expiry": 300}
    )


@pytest.fixture
def worker(worker_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Worker]:
    """A running in-process ingest worker with a fresh persistent session."""
    running = start_worker(
        worker_settings, client_id=f"test-{os.getpid()}-{request.node.name}"[:60]
    )
    assert running.source.connected.wait(10)
    yield running
    running.stop()


def test_ten_thousand_mixed_events_store_exactly_the_unique_valid_ones(
    conn: psycopg.Connection, worker_settings: Settings, worker: Worker, database_url: str
) -> None:
    messages, expected, registered, fleet = build_stream(TOTAL)
    register_fleet(conn, worker_settings, [d for d in fleet if d.dev_eui in registered])
    publish_all(worker_settings.mqtt_url, messages)
    wait_until(lambda: worker.pipeline.stats.received >= TOTAL, timeout=120, interval=0.2)
    assert worker.pipeline.wait_idle(60)
    assert worker.pipeline.stats.received == TOTAL
    assert stored(database_url) == expected_counts(expected)


def test_two_workers_of_one_shared_group_split_the_load_without_loss_or_duplicate(
    conn: psycopg.Connection,
    worker_settings: Settings,
    database_url: str,
    broker: EmbeddedBroker,
) -> None:
    if broker.kind != "mosquitto":
        pytest.skip("shared subscriptions are an MQTT 5 feature (mosquitto)")
    messages, expected, registered, fleet = build_stream(4000, seed=3)
    register_fleet(conn, worker_settings, [d for d in fleet if d.dev_eui in registered])
    group = worker_settings.model_copy(update={"mqtt_shared_group": f"g{os.getpid()}"})
    workers = [start_worker(group, client_id=f"shared-{os.getpid()}-{i}") for i in range(2)]
    try:
        assert all(w.source.connected.wait(10) for w in workers)
        publish_all(worker_settings.mqtt_url, messages)
        received = lambda: sum(w.pipeline.stats.received for w in workers)  # noqa: E731
        wait_until(lambda: received() >= len(messages), timeout=120, interval=0.2)
        assert all(w.pipeline.wait_idle(60) for w in workers)
        assert received() == len(messages)
        assert all(w.pipeline.stats.received > len(messages) // 4 for w in workers)
        assert stored(database_url) == expected_counts(expected)
    finally:
        for w in workers:
            w.stop()
