"""Event streams with a known mix of duplicates, bad frames and unknown devices."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import psycopg

from ingest.simulator import FleetSimulator, SimDevice, demo_fleet, replay_clock

from .fleet import Expected, other_format


def build_stream(
    total: int, *, seed: int = 7
) -> tuple[list[tuple[str, bytes]], Expected, dict[str, str], list[SimDevice]]:
    """`total` messages: 5 % duplicates, 1 % malformed, 1 % unknown devices; and their outcome."""
    rng = random.Random(seed)
    fleet = demo_fleet(120, seed=seed)
    registered_devices = [d for i, d in enumerate(fleet) if i % 40 != 0]  # 3 unknown devices
    registered = {d.dev_eui: d.model for d in registered_devices}
    known = FleetSimulator(
        registered_devices, protobuf=None, seed=seed, malformed_ratio=0, duplicate_gateway_ratio=0
    )
    unknown = FleetSimulator(
        [d for d in fleet if d.dev_eui not in registered],
        protobuf=None,
        seed=seed + 1,
        malformed_ratio=0,
        duplicate_gateway_ratio=0,
    )
    clock = replay_clock(datetime(2026, 11, 16, 6, 0, tzinfo=UTC), 7.0)
    n_dup, n_bad, n_unknown = total * 5 // 100, total // 100, total // 100
    originals = list(known.events(total - n_dup - n_bad - n_unknown, clock=clock))
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
    for index in range(n_bad):
        topic = stream[index][0]
        body = b"{" + rng.randbytes(24) if index % 2 else b"\x0a\xff" + rng.randbytes(24)
        messages.insert(rng.randrange(len(messages) + 1), (topic, body))
    expected.rejects["invalid_json"] += n_bad // 2
    expected.rejects["invalid_protobuf"] += n_bad - n_bad // 2
    assert len(messages) == total
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
