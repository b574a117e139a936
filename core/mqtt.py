"""MQTT connection settings and clients (paho-mqtt 2), shared by ingest and the packages
that publish (downlinks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class MqttUnavailable(ConnectionError):
    """The broker did not take the message in time."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    mqtt5: bool = True


def parse_mqtt_url(url: str) -> BrokerAddress:
    """`mqtt://user:pass@host:1883` or `mqtts://...` → BrokerAddress.

    `?protocol=3.1.1` selects MQTT 3.1.1 for brokers without MQTT 5 (amqtt).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    protocol = parse_qs(parts.query).get("protocol", ["5"])[-1]
    if protocol not in ("5", "3.1.1"):
        raise ValueError(f"MQTT protocol must be 5 or 3.1.1, got {protocol!r}")
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        mqtt5=protocol == "5",
    )


def new_client(
    url: str, client_id: str, *, persistent: bool = False, manual_ack: bool = False
) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho client configured for `url` (not yet connected).

    `persistent` keeps the session on an MQTT 3.1.1 broker (MQTT 5 sets it at connect).
    """
    address = parse_mqtt_url(url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if address.mqtt5 else mqtt.MQTTv311,
        clean_session=None if address.mqtt5 else not persistent,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    return client, address


def publish_once(url: str, topic: str, payload: bytes, *, timeout: float = 10.0) -> None:
    """Publish one QoS 1 message and wait for the broker's PUBACK (a short-lived client:
    for occasional messages such as downlinks)."""
    client, address = new_client(url, f"civicsense-publish-{uuid.uuid4().hex[:12]}")
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        raise MqttUnavailable(f"cannot reach the broker: {exc}") from None
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise MqttUnavailable("the broker did not acknowledge the message in time")
    finally:
        client.disconnect()
        client.loop_stop()
