"""Publishing a simulated fleet's events to an MQTT broker, paced, with QoS 1 acknowledgements."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.mqtt import new_client

from .events import Clock, FleetSimulator, SimEvent, wall_clock

_CONNECT_TIMEOUT = 10.0
_ACK_TIMEOUT = 30.0
_ACK_TIMEOUT_INTERRUPTED = 2.0


@dataclass
class PublishStats:
    """What publish() sent, by event kind, and what the broker did not acknowledge."""

    published: int = 0
    by_event: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    duplicates: int = 0
    unacked: int = 0
    refused: int = 0
    elapsed: float = 0.0
    interrupted: bool = False

    def add(self, event: SimEvent) -> None:
        """Count one published event."""
        self.published += 1
        self.by_event[event.event] += 1
        self.malformed += event.malformed
        self.duplicates += event.duplicate


class _Acks:
    """Counts the broker's acknowledgements (paho's on_publish) so publish() can wait for all."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self.acked = 0
        self.refused = 0

    def on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        """paho callback: one more message acknowledged (or refused) by the broker."""
        with self._done:
            self.acked += 1
            self.refused += reason_code.is_failure
            self._done.notify_all()

    def wait(self, sent: int, timeout: float) -> int:
        """Wait until `sent` messages are acknowledged or `timeout` passes; the number missing."""
        with self._done:
            self._done.wait_for(lambda: self.acked >= sent, timeout)
            return max(0, sent - self.acked)


class _TokenBucket:
    """Lets `rate` takes a second through, in bursts of at most a tenth of that, without drift."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate / 10)
        self._tokens = 1.0
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def take(self, stop: threading.Event) -> bool:
        """Wait for a token and use it; False if `stop` is set meanwhile."""
        self._refill()
        if self._tokens < 1:
            if stop.wait((1 - self._tokens) / self._rate):
                return False
            self._refill()
        self._tokens -= 1
        return True


def publish(
    mqtt_url: str,
    simulator: FleetSimulator,
    *,
    rate: float,
    duration: float | None = None,
    count: int | None = None,
    qos: int = 1,
    client_id: str | None = None,
    progress: Callable[[PublishStats], None] | None = None,
    clock: Clock = wall_clock,
    stop: threading.Event | None = None,
    observe: Callable[[SimEvent], None] | None = None,
) -> PublishStats:
    """Publish `simulator`'s events at `rate` a second (math.inf: unpaced) until `duration`
    seconds or `count` events, wait for the broker's acknowledgements, return the counts.

    Ctrl-C, or setting `stop` (from another thread), stops publishing; acknowledgements are then
    awaited briefly and the counts returned.
    `progress` is called with the running counts about once a second, and at the end;
    `observe` with each event once it is published (the simulated drivers watch the bays).
    """
    if not rate > 0:
        raise ValueError("rate must be a positive number of events per second")
    simulator.prepare(clock)
    acks = _Acks()
    client = _connect(mqtt_url, client_id or f"civicsense-sim-{uuid.uuid4().hex[:8]}", acks)
    stats = PublishStats()
    stop = stop or threading.Event()
    started = time.monotonic()
    try:
        last_report = started
        try:
            for event in _paced(simulator.events(count, clock=clock), rate, duration, stop):
                client.publish(event.topic, event.payload, qos=qos)
                stats.add(event)
                if observe is not None:
                    observe(event)
                if progress is not None and time.monotonic() - last_report >= 1.0:
                    last_report = time.monotonic()
                    progress(stats)
        except KeyboardInterrupt:
            stop.set()
        stats.interrupted = stop.is_set()
        timeout = _ACK_TIMEOUT_INTERRUPTED if stats.interrupted else _ACK_TIMEOUT
        stats.unacked = acks.wait(stats.published, timeout)
        stats.refused = acks.refused
    finally:
        client.disconnect()
        client.loop_stop()
    stats.elapsed = time.monotonic() - started
    if progress is not None:
        progress(stats)
    return stats


def _paced(
    events: Iterator[SimEvent], rate: float, duration: float | None, stop: threading.Event
) -> Iterator[SimEvent]:
    """`events` let through at `rate` a second, for at most `duration` s, until `stop` is set."""
    bucket = None if math.isinf(rate) else _TokenBucket(rate)
    deadline = math.inf if duration is None else time.monotonic() + duration
    while bucket is None or bucket.take(stop):
        if stop.is_set() or time.monotonic() >= deadline:
            return
        event = next(events, None)
        if event is None:
            return
        yield event


def _connect(mqtt_url: str, client_id: str, acks: _Acks) -> mqtt.Client:
    """A connected MQTT v5 client running its network loop in a thread."""
    client, address = new_client(mqtt_url, client_id)
    connected = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        outcome.append(reason_code)
        connected.set()

    client.on_connect = on_connect
    client.on_publish = acks.on_publish
    client.connect(address.host, address.port)
    client.loop_start()
    if not connected.wait(_CONNECT_TIMEOUT) or outcome[0].is_failure:
        client.loop_stop()
        reason = outcome[0] if outcome else "no answer"
        raise ConnectionError(f"MQTT broker {address.host}:{address.port} refused us: {reason}")
    return client
