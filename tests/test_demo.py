"""Acceptance: `civicsense demo` on embedded defaults shows readings of every device kind
through the API within a minute, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalog import seed
from core.embedded import free_port
from ingest.simulator import demo_fleet
from tests.kit.folders import service_dir
from tests.kit.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """The demo's data folder (its PostgreSQL runs as another user)."""
    with service_dir("demo") as folder:
        yield folder


def test_demo_shows_readings_of_every_kind_within_a_minute(tmp_path: Path, demo_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICSENSE_")}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp_path / "demo.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "core",
        "demo",
        "--devices",
        "12",
        "--rate",
        "30",
        "--port",
        str(port),
        "--data-dir",
        str(demo_dir),
    ]
    started = time.monotonic()
    demo = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        token_file = demo_dir / "api_token"
        wait_until(token_file.exists, timeout=60)
        headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        wait_until(lambda: _get(f"{base}/health", {}) is not None, timeout=60)
        one_per_kind = {d.kind: d for d in demo_fleet(12)}
        assert set(one_per_kind) == {"parking", "air", "leak"}
        for kind, device in one_per_kind.items():
            readings = wait_until(
                lambda d=device: _get(f"{base}/devices/{d.dev_eui}/readings", headers),
                timeout=max(1.0, 60 - (time.monotonic() - started)),
            )
            quantities = {r["quantity"] for r in readings}
            expected = {"parking": "occupied", "air": "co2", "leak": "leak"}[kind]
            assert expected in quantities, (kind, quantities)
        assert time.monotonic() - started < 60
        feed = _get(f"{base}/parking/bays/status", headers)  # the key printed can read it
        assert isinstance(feed, dict)
        assert one_per_kind["parking"].place in {f["id"] for f in feed["features"]}
        on_sale = {
            s.slug
            for s in seed.read_file(seed.SHIPPED).solutions
            if s.status in ("available", "deprecated")
        }  # what a town may see
        assert {s["slug"] for s in _get(f"{base}/catalog/solutions", headers)} == on_sale
        rules = {r["template"] for r in _get(f"{base}/alerts/rules", headers)}
        assert {"leak", "co2-confinement", "device-silent"} <= rules  # the default rules
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(60)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not (demo_dir / "postgres" / "postmaster.pid").exists()
    assert "agent@ville-de-demo.fr" in output and "/parking/map" in output


def _get(url: str, headers: dict[str, str]) -> list | dict | None:
    try:
        response = httpx.get(url, headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return response.json() or None
