"""Publishing pre-generated events as fast as paho and the broker take them (QoS 1)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.mqtt import new_client
from ingest.simulator import SimEvent


@dataclass(frozen=True)
class Published:
    """Wall-clock times (time.time()) of one unpaced publication."""

    count: int
    started: float
    sent: float
    acked: float
    unacked: int

    @property
    def rate(self) -> float:
        """Messages a second, first publish to last PUBACK."""
        return self.count / max(self.acked - self.started, 1e-9)


def publish_paho(
    url: str, events: Sequence[SimEvent], *, inflight: int = 1000, timeout: float = 120.0
) -> Published:
    """Publish every event with QoS 1, back to back; wait for all the broker's PUBACKs."""
    client, address = new_client(url, f"bench-publisher-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)  # unlimited: paho queues beyond the in-flight window
    done = threading.Condition()
    acked = 0
    connected = threading.Event()

    def on_publish(*_: object) -> None:
        nonlocal acked
        with done:
            acked += 1
            if acked >= len(events):
                done.notify_all()

    client.on_publish = on_publish
    client.on_connect = lambda *_: connected.set()
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise ConnectionError(f"the broker at {url} did not accept the publisher")
        started = time.time()
        for event in events:
            client.publish(event.topic, event.payload, qos=1)
        sent = time.time()
        with done:
            done.wait_for(lambda: acked >= len(events), timeout)
        return Published(len(events), started, sent, time.time(), len(events) - acked)
    finally:
        client.disconnect()
        client.loop_stop()


# (broker URL, events) -> Published: publish_paho, or lean_publisher.publish_lean
Publisher = Callable[[str, Sequence[SimEvent]], Published]
