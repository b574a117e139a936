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
