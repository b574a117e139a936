"""A lean QoS 1 publisher standing in for ChirpStack (a Go process) in the throughput phases.

paho costs about as much CPU per message as the worker does to ingest it, so with it on
the same two cores the benchmark partly measures its own publisher. This one sends
MQTT 3.1.1 PUBLISH packets encoded before the clock starts, in large writes, and counts
the broker's PUBACKs in a reader thread: it uses a few hundredths of a core. The broker
still receives, acknowledges and routes one QoS 1 PUBLISH per event, as from ChirpStack.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

from core.mqtt import parse_mqtt_url
from ingest.simulator import SimEvent

from .publisher import Published

_CONNECT, _CONNACK, _PUBLISH_QOS1, _PUBACK, _DISCONNECT = 0x10, 0x20, 0x32, 0x40, 0xE0
_MAX_PACKET_ID = 0xFFFF


def _remaining_length(length: int) -> bytes:
    """MQTT's variable-length integer (1 to 4 bytes, 7 bits each)."""
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, *, keepalive: int = 60) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, no credentials."""
    body = _text("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _text(client_id)
    return bytes([_CONNECT]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH with QoS 1 and packet id `packet_id` (1..65535)."""
    head = _text(topic) + struct.pack("!H", packet_id)
    return bytes([_PUBLISH_QOS1]) + _remaining_length(len(head) + len(payload)) + head + payload


def packets(data: bytes) -> Iterator[tuple[int, int]]:
    """(packet type, end offset) of each whole packet at the start of `data`."""
    pos = 0
    while pos + 2 <= len(data):
        length, shift, at = 0, 0, pos + 1
        while at < len(data):
            byte = data[at]
            length |= (byte & 0x7F) << shift
            shift, at = shift + 7, at + 1
            if not byte & 0x80:
                break
        else:
            return
        end = at + length
        if end > len(data):
            return
        yield data[pos] & 0xF0, end
        pos = end


class _AckCounter(threading.Thread):
    """Reads the broker's packets and counts PUBACKs."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(name="lean-publisher-acks", daemon=True)
        self.sock = sock
        self.acked = 0
        self.changed = threading.Condition()

    def run(self) -> None:
        pending = b""
        while chunk := self._receive():
            pending += chunk
            used = 0
            acks = 0
            for kind, end in packets(pending):
                acks += kind == _PUBACK
                used = end
            pending = pending[used:]
            if acks:
                with self.changed:
                    self.acked += acks
                    self.changed.notify_all()

    def _receive(self) -> bytes:
        try:
            return self.sock.recv(1 << 16)
        except OSError:  # closed under us at the end
            return b""

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.acked >= count, timeout)


def publish_lean(
    url: str,
    events: Sequence[SimEvent],
    *,
    window: int = 16_384,
    chunk: int = 256,
    timeout: float = 120.0,
) -> Published:
    """Publish every event with QoS 1 as fast as the broker acknowledges them, at most
    `window` unacknowledged; wait for all PUBACKs."""
    address = parse_mqtt_url(url)
    if address.tls or address.username:
        raise ValueError("the lean publisher speaks plain MQTT without credentials only")
    encoded = [
        publish_packet(event.topic, event.payload, n % _MAX_PACKET_ID + 1)
        for n, event in enumerate(events)
    ]
    writes = [b"".join(encoded[at : at + chunk]) for at in range(0, len(encoded), chunk)]
    sock = socket.create_connection((address.host, address.port), timeout=10)
    try:
        sock.sendall(connect_packet(f"bench-lean-{uuid.uuid4().hex[:8]}"))
        connack = sock.recv(4)
        if len(connack) < 4 or connack[0] != _CONNACK or connack[3] != 0:
            raise ConnectionError(f"the broker at {url} refused the publisher: {connack!r}")
        sock.settimeout(None)
        acks = _AckCounter(sock)
        acks.start()
        started = time.time()
        for n, data in enumerate(writes):
            if not acks.wait_for(n * chunk - window + chunk, timeout):
                break
            sock.sendall(data)
        sent = time.time()
        acks.wait_for(len(events), timeout)
        acked_at = time.time()
        sock.sendall(bytes([_DISCONNECT, 0]))
        return Published(len(events), started, sent, acked_at, len(events) - acks.acked)
    finally:
        sock.close()
