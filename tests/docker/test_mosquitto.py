"""docker/mosquitto/ is a working broker configuration: the machine's mosquitto runs the
very mosquitto.conf, ACL and password-file script that compose deploys, with only the
paths and the port rewritten."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.embedded import find_mosquitto, free_port
from tests.kit.folders import service_dir
from tests.kit.mqtt import publish_all
from tests.kit.waiting import wait_until

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"
PASSWORDS = {
    "MQTT_CIVICSENSE_PASSWORD": "civicsense-test-password",
    "MQTT_CHIRPSTACK_PASSWORD": "chirpstack-test-password",
    "MQTT_GATEWAY_BRIDGE_PASSWORD": "bridge-test-password",
}
INGEST_TOPIC = "$share/civicsense/application/+/device/+/event/+"
UPLINK_TOPIC = "application/7/device/0004a30b001c0530/event/up"


def _rewritten_config(folder: Path, port: int) -> str:
    """docker/mosquitto/mosquitto.conf with its paths and port moved into `folder`."""
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    replacements = {
        r"^listener 1883$": f"listener {port} 127.0.0.1",
        r"^password_file .*$": f"password_file {folder / 'passwd'}",
        r"^acl_file .*$": f"acl_file {folder / 'acl'}",
        r"^persistence_location .*$": f"persistence_location {folder / 'data'}/",
        r"^log_dest .*$": f"log_dest file {folder / 'mosquitto.log'}",
    }
    for pattern, line in replacements.items():
        text, count = re.subn(pattern, line, text, flags=re.MULTILINE)
        assert count == 1, f"mosquitto.conf has no single line matching {pattern}"
    return text


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class DeployedBroker:
    """The deployment's mosquitto configuration, run from a temporary folder."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        (self.folder / "data").mkdir(parents=True)
        (self.folder / "mosquitto.conf").write_text(_rewritten_config(self.folder, self.port))
        shutil.copy(MOSQUITTO_DIR / "acl", self.folder / "acl")
        # The compose entrypoint itself writes the password file (it runs no command here).
        env = {
            "PATH": os.environ["PATH"] + ":/usr/bin:/usr/sbin",
            "MOSQUITTO_PASSWORD_FILE": str(self.folder / "passwd"),
            **PASSWORDS,
        }
        subprocess.run(["sh", str(MOSQUITTO_DIR / "entrypoint.sh")], env=env, check=True)
        if os.geteuid() == 0:  # mosquitto drops root privileges to its own user
            for path in (self.folder, *self.folder.rglob("*")):
                shutil.chown(path, "mosquitto", "mosquitto")

    def start(self) -> None:
        mosquitto = find_mosquitto()
        assert mosquitto is not None
        self.process = subprocess.Popen(
            [mosquitto, "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                log = (self.folder / "mosquitto.log").read_text(errors="replace")
                raise AssertionError(f"mosquitto exited:\n{log}")
            return _accepts(self.port)

        wait_until(listening, timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM): mosquitto saves its persistent store."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def url(self, user: str) -> str:
        password = PASSWORDS[f"MQTT_{user.upper().replace('-', '_')}_PASSWORD"]
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}"


@pytest.fixture
def deployed_broker() -> Iterator[DeployedBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (make system-deps)")
    if shutil.which("mosquitto_passwd", path=os.environ["PATH"] + ":/usr/bin") is None:
        pytest.skip("mosquitto_passwd is not installed")
    with service_dir("deployed-mqtt") as folder:
        broker = DeployedBroker(folder / "mosquitto")
        broker.prepare()
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


class Client:
    """A paho MQTT 5 client that records what the broker answered."""

    def __init__(
        self, port: int, user: str | None, password: str | None, client_id: str = ""
    ) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.connack: ReasonCode | None = None
        self.granted: list[ReasonCode] = []
        self.pubacks: dict[int, ReasonCode] = {}
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.connack = reason_code

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # type: ignore[no-untyped-def]
        self.granted = list(reason_codes)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.pubacks[mid] = reason_code

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self.received.append(message.payload)

    def connect(self, *, persistent: bool = False) -> ReasonCode:
        """Connect (a persistent session: clean start off, kept for an hour)."""
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = 3600
        self.client.connect(
            "127.0.0.1", self.port, clean_start=not persistent, properties=properties
        )
        self.client.loop_start()
        connack = wait_until(lambda: self.connack, timeout=10)
        assert connack is not None
        return connack

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _connack(broker: DeployedBroker, user: str | None, password: str | None) -> ReasonCode:
    client = Client(broker.port, user, password)
    try:
        return client.connect()
    finally:
        client.close()


def test_only_known_users_connect(deployed_broker: DeployedBroker) -> None:
    password = PASSWORDS["MQTT_CIVICSENSE_PASSWORD"]
    assert _connack(deployed_broker, None, None).is_failure
    assert _connack(deployed_broker, "civicsense", "not-the-password").is_failure
    assert not _connack(deployed_broker, "civicsense", password).is_failure


def test_civicsense_cannot_forge_chirpstack_events(deployed_broker: DeployedBroker) -> None:
    client = Client(deployed_broker.port, "civicsense", PASSWORDS["MQTT_CIVICSENSE_PASSWORD"])
    client.connect()
    try:
        forged = client.client.publish(UPLINK_TOPIC, b"{}", qos=1).mid
        downlink = client.client.publish(
            "application/7/device/0004a30b001c0530/command/down", b"{}", qos=1
        ).mid
        wait_until(lambda: len(client.pubacks) == 2, timeout=10)
    finally:
        client.close()
    assert client.pubacks[forged].getName() == "Not authorized"
    assert not client.pubacks[downlink].is_failure


def test_offline_ingest_worker_gets_every_queued_message_after_a_broker_restart(
    deployed_broker: DeployedBroker,
) -> None:
    """5,000 events published while the only worker is away, the broker restarted in
    between: the worker's persistent session gets all of them (mosquitto's default limit
    of 1,000 queued messages per client would drop most)."""
    count = 5000
    password = PASSWORDS["MQTT_CIVICSENSE_PASSWORD"]
    worker = Client(deployed_broker.port, "civicsense", password, "civicsense-ingest-1")
    worker.connect(persistent=True)
    worker.client.subscribe(INGEST_TOPIC, qos=1)
    wait_until(lambda: worker.granted, timeout=10)
    worker.close()
    assert worker.granted[0].value == 1, f"subscription refused: {worker.granted[0]}"

    messages = ((UPLINK_TOPIC, str(index).encode()) for index in range(count))
    publish_all(deployed_broker.url("chirpstack"), messages)
    deployed_broker.stop()
    deployed_broker.start()

    back = Client(deployed_broker.port, "civicsense", password, "civicsense-ingest-1")
    back.connect(persistent=True)
    try:
        wait_until(lambda: len(set(back.received)) >= count, timeout=60)
    finally:
        back.close()
    assert {int(payload) for payload in back.received} == set(range(count))
