"""The MQTT source: ChirpStack's integration topics, QoS 1, persistent session, manual acks.

The session survives restarts (clean start off, session expiry set), and a message
is acknowledged (PUBACK) only after the pipeline committed it, so the broker
redelivers whatever a crashed or disconnected worker had not stored. MQTT 5's
Receive Maximum bounds the unacknowledged messages the broker sends us; the rest
waits in the broker's queue, whose limits must allow it (see README).
"""

from __future__ import annotations

import logging
import socket
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.mqtt import new_client

from .batch import from_topic
from .pipeline import Pipeline

log = logging.getLogger("civicsense.ingest.mqtt")


class MqttSource:
    """Subscribes to ChirpStack events and feeds the pipeline."""

    def __init__(
        self,
        url: str,
        pipeline: Pipeline,
        *,
        topic: str = "application/+/device/+/event/+",
        client_id: str | None = None,
        shared_group: str | None = None,
        receive_maximum: int = 4000,
        session_expiry: int = 86400,
    ) -> None:
        self.pipeline = pipeline
        self.topic = f"$share/{shared_group}/{topic}" if shared_group else topic
        self.client_id = client_id or f"civicsense-ingest-{socket.gethostname()}"
        self.receive_maximum = receive_maximum
        self.session_expiry = session_expiry
        self.client, self.address = new_client(
            url, self.client_id, persistent=True, manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._generation = 0
        self._stopping = False
        self._lock = threading.Lock()
        self.connected = threading.Event()

    def start(self) -> None:
        """Connect (with a persistent session) and run the network loop in a thread."""
        if self.address.mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry
            properties.ReceiveMaximum = self.receive_maximum
            self.client.connect_async(
                self.address.host,
                self.address.port,
                keepalive=30,
                clean_start=False,
                properties=properties,
            )
        else:
            self.client.max_inflight_messages_set(self.receive_maximum)
            self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay with the broker for the next start."""
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        client.subscribe(self.topic, qos=1)
        log.info("subscribed to %s as %s", self.topic, self.client_id)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        with self._lock:
            self._generation += 1  # packet ids of the old connection are void
        self.connected.clear()
        if self._stopping:
            log.info("disconnected from broker")
        else:
            log.warning("disconnected from broker (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        generation = self._generation
        mid, qos = message.mid, message.qos

        def ack() -> None:
            with self._lock:
                if qos and generation == self._generation:
                    self.client.ack(mid, qos)

        self.pipeline.submit(from_topic(message.topic, bytes(message.payload), ack=ack))
