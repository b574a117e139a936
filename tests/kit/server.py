"""The app served for real: by uvicorn on a loopback port in a thread (streams, browsers),
or as a `civicsense serve` process of its own (logs, several web processes)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from core.app import create_app
from core.settings import Settings
from tests.kit.waiting import wait_until

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[str]:
    """Serve the app until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class ServeProcess:
    """A running `civicsense serve`: its base URL; its standard error once it has stopped."""

    base: str
    stderr: str = ""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def serve_process(settings: Settings, **environment: str) -> Iterator[ServeProcess]:
    """`civicsense serve --no-scheduler` in its own process on this test's database, with
    no CIVICSENSE_* variable of the caller's but `environment` (names without the prefix);
    stopped (SIGTERM) when the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICSENSE_")}
    assert settings.secret_key is not None
    env["CIVICSENSE_DATABASE_URL"] = settings.database_url
    env["CIVICSENSE_SECRET_KEY"] = settings.secret_key.get_secret_value()
    env.update({f"CIVICSENSE_{name.upper()}": value for name, value in environment.items()})
    command = [sys.executable, "-m", "core", "serve", "--port", str(port), "--no-scheduler"]
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe nobody reads while it runs
        app = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log, text=True)
        running = ServeProcess(f"http://127.0.0.1:{port}")
        try:
            wait_until(
                lambda: app.poll() is not None or _answers(f"{running.base}/api/v1/health"),
                timeout=60, interval=0.2,
            )  # fmt: skip
            if app.poll() is not None:
                log.seek(0)
                raise AssertionError(f"civicsense serve stopped at start:\n{log.read()[-3000:]}")
            yield running
        finally:
            app.terminate()
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
            log.seek(0)
            running.stderr = log.read()
