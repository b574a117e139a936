"""`make soak` in miniature: its accounting finds every uplink, and a lost one fails it."""

from __future__ import annotations

import json
from pathlib import Path

from bench import soak


def test_a_short_soak_stores_every_uplink_once_and_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    status = soak.main(
        ["--sensors", "300", "--interval", "3", "--duration", "8", "--max-lag", "30",
         "--rss-growth", "500", "--json", str(out)]
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert status == 0, result["failed"]
    assert result["published_uplinks"] > 400
    assert result["stored"]["distinct_uplinks"] == result["published_uplinks"]
    assert result["missing_uplinks"] == 0
    assert result["lag_s"]["count"] == result["stored"]["uplinks"]
    assert result["disk_bytes"]["uplinks"] > 0


def test_the_checks_name_a_lost_uplink_a_duplicate_and_a_growing_worker() -> None:
    args = soak.argparse.Namespace(max_lag=1.0, rss_growth=20.0)
    result = {
        "stored": {"uplinks": 11, "distinct_uplinks": 10, "device_events": 5},
        "published_uplinks": 11, "missing_uplinks": 1, "published_other_events": 5,
        "lag_s": {"max": 0.4}, "memory": [{"growth_mb": 3.0}, {"growth_mb": 25.0}],
    }  # fmt: skip
    failed = soak.checks(result, args)
    assert any("lost: 1" in f for f in failed)
    assert any("duplicated: 1" in f for f in failed)
    assert any("worker 1 RSS grew" in f for f in failed)
    assert len(failed) == 3
