"""Publishing prepared events to the test broker with QoS 1."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from core.mqtt import new_client


def publish_all(
    url: str, messages: Iterable[tuple[str, bytes]], *, rate: float | None = None
) -> int:
    """Publish (topic, payload) pairs, paced at `rate` per second; wait for every PUBACK."""
    client, address = new_client(url, f"test-publisher-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.connect(address.host, address.port)
    client.loop_start()
    infos = []
    started = time.monotonic()
    try:
        for index, (topic, payload) in enumerate(messages):
            if rate:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=60)
            if not info.is_published():
                raise AssertionError("broker did not acknowledge a publish")
    finally:
        client.disconnect()
        client.loop_stop()
    return len(infos)
