"""Acceptance: 10,000 ChirpStack events through a real broker into PostgreSQL.

Mixed JSON and protobuf, 5 % duplicated deduplicationIds (some re-encoded in the
other format), 1 % malformed, 1 % from unknown devices: exactly the unique valid
uplinks and their readings are stored, and every reject is recorded with its reason.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from core.embedded import EmbeddedBroker
from core.settings import Settings
from ingest.simulator import FleetSimulator, demo_fleet, replay_clock
from ingest.worker import Worker, start_worker
from tests.kit.fleet import Expected, other_format, register_fleet
from tests.kit.mqtt import publish_all
from tests.kit.waiting import wait_until

TOTAL = 10_000


def build_stream(seed: int = 7) -> tuple[list[tuple[str, bytes]], Expected, dict[str, str], list]:
    """10,000 messages with the mix of the acceptance criteria, and what they must give."""
    rng = random.Random(seed)
    fleet = demo_fleet(120, seed=seed)
    registered_devices = [d for i, d in enumerate(fleet) if i % 40 != 0]  # 3 unknown devices
    registered = {d.dev_eui: d.model for d in registered_devices}
    known = FleetSimulator(registered_devices, protobuf=None, seed=seed, malformed_ratio=0,
                           duplicate_gateway_ratio=0)  # fmt: skip
    unknown = FleetSimulator([d for d in fleet if d.dev_eui not in registered], protobuf=None,
                             seed=seed + 1, malformed_ratio=0, duplicate_gateway_ratio=0)  # fmt: skip
    clock = replay_clock(datetime(2026, 11, 16, 6, 0, tzinfo=UTC), 7.0)
    n_dup, n_bad, n_unknown = TOTAL * 5 // 100, TOTAL // 100, TOTAL // 100
    originals = list(known.events(TOTAL - n_dup - n_bad - n_unknown, clock=clock))
    strangers = list(unknown.events(n_unknown, clock=clock))
    stream = [(e.topic, e.payload, e.event, e.dev_eui) for e in originals + strangers]
    rng.shuffle(stream)
    duplicates = []
    for topic, payload, kind, dev_eui in rng.sample(stream, n_dup):
        copy = other_format(kind, payload) if rng.random() < 0.5 else payload
        duplicates.append((topic, copy, kind, dev_eui))
    expected = Expected()
    for _topic, payload, kind, dev_eui in stream:
        expected.add(kind, payload, registered, dev_eui)
    messages = [(t, p) for t, p, _, _ in stream]
    for topic, payload, _, _ in duplicates:
        messages.insert(rng.randrange(len(messages) + 1), (topic, payload))
    garbage = []
    for index in range(n_bad):
        topic = stream[index][0]
        body = b"{" + rng.randbytes(24) if index % 2 else b"\x0a\xff" + rng.randbytes(24)
        garbage.append((topic, body))
        messages.insert(rng.randrange(len(messages) + 1), (topic, body))
    expected.rejects["invalid_json"] += n_bad // 2
    expected.rejects["invalid_protobuf"] += n_bad - n_bad // 2
    assert len(messages) == TOTAL
    return messages, expected, registered, fleet


def stored(database_url: str) -> dict[str, object]:
    """What the database holds now."""
    with psycopg.connect(database_url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("uplinks", "device_events", "readings", "ingest_rejects")
        }
        counts["rejects"] = dict(
            conn.execute("SELECT reason, count(*) FROM ingest_rejects GROUP BY reason").fetchall()
        )
    return counts


def expected_counts(expected: Expected) -> dict[str, object]:
    """The `stored()` shape of an Expected."""
    return {
        "uplinks": expected.uplinks,
        "device_events": expected.events,
        "readings": expected.readings,
        "ingest_rejects": sum(expected.rejects.values()),
        "rejects": dict(expected.rejects),
    }


@pytest.fixture
def worker_settings(settings: Settings, broker: EmbeddedBroker) -> Settings:
    """Settings with this test's database and the session broker, on a private topic tree."""
    return settings.model_copy(
        update={"mqtt_url": broker.url, "batch_max_age_ms": 100, "mqtt_session_expiry": 300}
    )


@pytest.fixture
def worker(worker_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Worker]:
    """A running in-process ingest worker with a fresh persistent session."""
    running = start_worker(worker_settings, client_id=f"test-{os.getpid()}-{request.node.name}"[:60])
    assert running.source.connected.wait(10)
    yield running
    running.stop()


def test_ten_thousand_mixed_events_store_exactly_the_unique_valid_ones(
    conn: psycopg.Connection, worker_settings: Settings, worker: Worker, database_url: str
) -> None:
    messages, expected, registered, fleet = build_stream()
    register_fleet(conn, worker_settings, [d for d in fleet if d.dev_eui in registered])
    publish_all(worker_settings.mqtt_url, messages)
    wait_until(lambda: worker.pipeline.stats.received >= TOTAL, timeout=120, interval=0.2)
    assert worker.pipeline.wait_idle(60)
    assert worker.pipeline.stats.received == TOTAL
    assert stored(database_url) == expected_counts(expected)
