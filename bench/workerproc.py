"""The benchmark's side of `bench.worker`: spawn it, talk to it, sample its memory."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from core.settings import Settings

_KNOBS = ("database_url", "mqtt_url", "batch_size", "batch_max_age_ms", "mqtt_receive_maximum")


class WorkerProcess:
    """`python -m bench.worker` in a child process, with its JSON lines read in a thread."""

    def __init__(
        self, settings: Settings, *, client_id: str, log_path: Path, latency: bool = False,
        expect: int | None = None, resume: bool = False, shared_group: str | None = None,
        progress: bool = False,
    ) -> None:  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICSENSE_")}
        env.update({f"CIVICSENSE_{k.upper()}": str(getattr(settings, k)) for k in _KNOBS})
        if shared_group:
            env["CIVICSENSE_MQTT_SHARED_GROUP"] = shared_group
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "bench.worker", "--client-id", client_id]
        command += ["--latency"] if latency else []
        command += ["--expect", str(expect)] if expect is not None else []
        command += ["--resume"] if resume else []
        command += ["--progress"] if progress else []
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, bufsize=1,
        )  # fmt: skip
        self.ps = psutil.Process(self.process.pid)
        self.peak_rss = 0
        self.committed = 0  # uplinks committed so far, with progress=True
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        """Queue the worker's JSON lines; anything else it prints is not ours and skipped."""
        for line in stream:
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if "progress" in message:
                    self.committed = message["progress"]
                else:
                    self._lines.put(message)
        self._lines.put(None)

    def sample_rss(self) -> None:
        """Record the worker's RSS if it is the highest seen."""
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def _next(self, timeout: float) -> dict[str, Any]:
        """The worker's next message; samples RSS every 50 ms while waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sample_rss()
            try:
                message = self._lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if message is None:
                raise RuntimeError(f"the worker exited early; see {self.log_path}")
            return message
        raise TimeoutError(f"no word from the worker in {timeout:.0f}s; see {self.log_path}")

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the worker is subscribed; its `ready` message."""
        return self._next(timeout)

    def _send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        """Ask the worker to report and exit now."""
        self._send("stop")

    def done(self) -> None:
        """Tell the worker the run is complete (counted by the benchmark): report and exit."""
        self._send("done")

    def expect(self, uplinks: int) -> None:
        """Tell the worker how many uplinks make the run complete."""
        self._send(f"expect {uplinks}")

    def wait_done(self, timeout: float = 300.0) -> dict[str, Any]:
        """The worker's final report (it exits after sending it: call close())."""
        report = self._next(timeout)
        report["sampled_peak_rss_bytes"] = self.peak_rss
        return report

    def close(self, timeout: float = 60.0) -> None:
        """Wait for the worker to exit (it flushes and disconnects first)."""
        try:
            self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Stop the worker if it is still running (error paths)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


def wait_committed(
    workers: Sequence[WorkerProcess], uplinks: int, *, timeout: float = 300.0, idle: float = 60.0
) -> bool:
    """Poll (20 Hz) the progress=True workers until they committed `uplinks` between them.

    False if nothing was committed for `idle` seconds or after `timeout`; RSS is sampled.
    """
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(w.committed for w in workers)
        if total >= uplinks:
            return True
        if total != seen:
            seen, since = total, time.monotonic()
        elif time.monotonic() - since > idle:
            return False
        for worker in workers:
            worker.sample_rss()
            if worker.process.poll() is not None:
                raise RuntimeError(f"a worker exited early; see {worker.log_path}")
        time.sleep(0.05)
    return False
