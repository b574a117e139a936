"""The benchmark's lean publisher delivers exactly what paho would, through a real broker."""

from __future__ import annotations

import threading
import uuid

import pytest

from bench.fleet import generate
from bench.lean_publisher import publish_lean
from core.embedded import EmbeddedBroker
from core.mqtt import new_client
from ingest.simulator import demo_fleet
from tests.kit.waiting import wait_until


@pytest.fixture
def received(broker: EmbeddedBroker):
    """A QoS 1 subscriber to every ChirpStack event topic: the (topic, payload) it gets."""
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    client, address = new_client(broker.url, f"test-lean-sub-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, *_: c.subscribe("application/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload)))
    client.connect(address.host, address.port)
    client.loop_start()
    assert subscribed.wait(10), "the broker did not confirm the subscription"
    yield got
    client.disconnect()
    client.loop_stop()


def test_every_event_arrives_once_with_its_topic_and_bytes(broker, received):
    events = generate(demo_fleet(20), 1500, fmt="mix", seed=3)

    published = publish_lean(broker.url, events, window=64, chunk=16)

    assert published.unacked == 0
    wait_until(lambda: len(received) >= len(events), timeout=30)
    assert sorted(received) == sorted((e.topic, e.payload) for e in events)


def test_refuses_credentials_it_cannot_send():
    with pytest.raises(ValueError, match="without credentials"):
        publish_lean("mqtt://user:secret@127.0.0.1:1", [])
