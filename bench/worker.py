"""The ingest worker under test, in its own process: `python -m bench.worker`.

Configuration comes from the CIVICSENSE_* environment (database and broker URLs,
batch knobs), as for `civicsense ingest`. The worker talks to the benchmark over
stdio, one JSON object per line on stdout:

- `{"ready": true}` once subscribed to the broker;
- with `--progress`, `{"progress": N, "at": T}` after each commit (N uplinks so far, T
  the commit's wall-clock time), so that the benchmark can sum several workers;
- `{"done": true, ...}` once the expected number of uplinks is committed (or on
  `stop`, or when nothing is committed for `--idle-timeout` seconds), with the
  pipeline's counters, commit times, latencies, per-thread CPU and peak RSS.

stdin takes `expect N` (how many uplinks to wait for), `done` (the benchmark saw the
target reached, e.g. summed over several workers: report as completed) and `stop`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import threading
import time

from core.events import bus
from core.settings import Settings
from ingest.events import UplinksStored
from ingest.worker import Worker, start_worker

from .stats import summarise


class Recorder:
    """Subscribes to UplinksStored: counts committed uplinks, their commit times and ages."""

    def __init__(self, *, latency: bool, progress: bool = False) -> None:
        self.latency = latency
        self.progress = progress
        self.count = 0
        self.first_commit: float | None = None
        self.last_commit: float | None = None
        self.ages: list[float] = []
        self.target: int | None = None
        self.stopped = False
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def on_uplinks(self, event: UplinksStored) -> None:
        """Bus handler, run in the writer thread right after the batch committed."""
        now = time.time()
        if self.latency:
            self.ages.extend(now - uplink.time.timestamp() for uplink in event.uplinks)
        with self._lock:
            self.count += len(event.uplinks)
            self.first_commit = self.first_commit or now
            self.last_commit = now
            count = self.count
            self._check()
        if self.progress:
            _emit({"progress": count, "at": now})

    def expect(self, target: int) -> None:
        """Report done once `target` uplinks are committed."""
        with self._lock:
            self.target = target
            self._check()

    def finish(self) -> None:
        """Report done now, as completed (the benchmark counted the uplinks itself)."""
        self.reached.set()

    def stop(self) -> None:
        """Report done now."""
        self.stopped = True
        self.reached.set()

    def _check(self) -> None:
        if self.target is not None and self.count >= self.target:
            self.reached.set()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's threads, by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "mqtt-network" if thread.name.startswith("paho-mqtt") else thread.name
        cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return cpu


def _wait_subscribed(worker: Worker, *, suback: bool = True) -> float:
    """Block until the broker acknowledged the subscription, so no early publish is lost.

    The hook is set right after the connection started, long before a SUBACK can come
    back; if it was missed anyway, five seconds after connecting are taken as enough.
    Returns when the connection was accepted (wall clock): messages flow from then on.
    `suback=False` when resuming a session that already holds the subscription.
    """
    subscribed = threading.Event()
    worker.source.client.on_subscribe = lambda *_: subscribed.set()
    if not worker.source.connected.wait(30):
        raise SystemExit("the worker could not connect to the broker within 30 s")
    connected_at = time.time()
    if suback:
        subscribed.wait(5)
    return connected_at


def _peak_rss_kib() -> int:
    """VmHWM: this process's peak resident set since exec (ru_maxrss is not: after a
    vfork+exec it may carry the parent's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _read_commands(recorder: Recorder) -> None:
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["expect"] and len(words) == 2:
            recorder.expect(int(words[1]))
        elif words[:1] == ["done"]:
            recorder.finish()
        elif words[:1] == ["stop"]:
            recorder.stop()
    recorder.stop()  # the benchmark went away


_EMIT_LOCK = threading.Lock()


def _emit(payload: dict[str, object]) -> None:
    """One JSON line on stdout (from the main thread or, with --progress, the writer)."""
    with _EMIT_LOCK:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()


def _wait(recorder: Recorder, idle_timeout: float) -> bool:
    """Wait for the target; False when nothing was committed for `idle_timeout` seconds."""
    seen, since = -1, time.monotonic()
    while not recorder.reached.wait(0.5):
        if recorder.count != seen:
            seen, since = recorder.count, time.monotonic()
        elif time.monotonic() - since > idle_timeout:
            return False
    return True


def _report(worker: Worker, recorder: Recorder, completed: bool) -> dict[str, object]:
    stats = worker.pipeline.stats
    report: dict[str, object] = {
        "done": True,
        "completed": completed and not recorder.stopped,
        "uplinks_seen": recorder.count,
        "first_commit": recorder.first_commit,
        "last_commit": recorder.last_commit,
        "received": stats.received,
        "uplinks": stats.uplinks,
        "events": stats.events,
        "readings": stats.readings,
        "duplicates": stats.duplicates,
        "rejects": dict(stats.rejects),
        "batches": stats.batches,
        "retries": stats.retries,
        "thread_cpu": _thread_cpu(),
        "process_cpu": sum(os.times()[:2]),
        "peak_rss_kib": _peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if recorder.latency:
        report["publish_to_commit"] = summarise(recorder.ages)
        report["receive_to_commit"] = summarise(stats.latencies)
    return report


def main(argv: list[str] | None = None) -> None:
    """Run the worker until the expected uplinks are committed, then report and exit."""
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("--client-id", required=True, help="MQTT client id (persistent session)")
    parser.add_argument("--expect", type=int, default=None, help="uplinks to wait for")
    parser.add_argument("--latency", action="store_true", help="record commit time - uplink time")
    parser.add_argument("--progress", action="store_true", help="report each commit's count")
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="the broker session exists: ready at CONNACK, not at SUBACK",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    recorder = Recorder(latency=args.latency, progress=args.progress)
    bus.subscribe(UplinksStored, recorder.on_uplinks)
    if args.expect is not None:
        recorder.expect(args.expect)
    worker = start_worker(settings, client_id=args.client_id, keep_latencies=args.latency)
    connected_at = _wait_subscribed(worker, suback=not args.resume)
    threading.Thread(target=_read_commands, args=(recorder,), daemon=True).start()
    _emit({"ready": True, "pid": os.getpid(), "connected_at": connected_at})
    completed = _wait(recorder, args.idle_timeout)
    _emit({**_report(worker, recorder, completed), "connected_at": connected_at})
    worker.stop()


if __name__ == "__main__":
    main()
