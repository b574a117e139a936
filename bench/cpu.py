"""CPU accounting over a phase: seconds used by each component, and the machine's load."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import psutil

Groups = Mapping[str, Sequence[psutil.Process]]


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def _total(times: psutil._common.scputimes) -> float:
    """All CPU time of the machine (guest time is already part of user time on Linux)."""
    return sum(v for k, v in times._asdict().items() if not k.startswith("guest"))


class CpuMeter:
    """CPU seconds per named group of processes, and busy cores, between start() and stop().

    Processes that exit during the phase are not counted (short-lived backends): the
    figures are lower bounds for a group, exact for long-lived processes.
    """

    def __init__(self) -> None:
        self._before: dict[int, float] = {}
        self._machine: psutil._common.scputimes | None = None
        self._started = 0.0

    def start(self, groups: Groups) -> None:
        """Snapshot the groups' processes and the machine."""
        self._before = {p.pid: _cpu(p) for procs in groups.values() for p in procs}
        self._machine = psutil.cpu_times()
        self._started = time.monotonic()

    def stop(self, groups: Groups) -> dict[str, float]:
        """CPU seconds by group since start(), plus `others` (CPU seconds of every other
        process on the machine), `wall`, `busy_cores` and `iowait_cores`."""
        wall = time.monotonic() - self._started
        used = {
            name: round(sum(_cpu(p) - self._before.get(p.pid, 0.0) for p in procs), 3)
            for name, procs in groups.items()
        }
        now = psutil.cpu_times()
        assert self._machine is not None
        idle = (now.idle - self._machine.idle) + (now.iowait - self._machine.iowait)
        total = _total(now) - _total(self._machine)
        cores = psutil.cpu_count() or 1
        busy = cores * (1 - idle / total) if total else 0.0
        used["others"] = round(max(0.0, busy * wall - sum(used.values())), 3)
        used["wall"] = round(wall, 3)
        used["busy_cores"] = round(busy, 2)
        used["iowait_cores"] = round(cores * (now.iowait - self._machine.iowait) / total, 2)
        return used


def background_load(seconds: float = 1.0) -> float:
    """Cores busy on the machine over `seconds` before the benchmark starts anything."""
    before = psutil.cpu_times()
    time.sleep(seconds)
    after = psutil.cpu_times()
    total = _total(after) - _total(before)
    idle = (after.idle - before.idle) + (after.iowait - before.iowait)
    return round((psutil.cpu_count() or 1) * (1 - idle / total), 2) if total else 0.0
