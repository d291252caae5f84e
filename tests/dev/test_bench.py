"""``python -m incidents_dev bench --scale 1000``: every required measure is written, finite and positive."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incidents_dev.bench import FULL, QUICK, REQUIRED_KEYS, Sizes, rate_for, table

SCALE = 1000
"""1/1000 of the bench's sizes: every measure runs end to end in about a minute (the real figures
come from `make bench`; timings are never asserted)."""


def test_quick_sizes_are_about_ten_times_smaller() -> None:
    full = Sizes()
    assert QUICK.e2e_posts == full.e2e_posts // 10
    assert QUICK.routing_posts == full.routing_posts // 10


def test_rate_calibration_and_table() -> None:
    assert rate_for(2350, 10, 1.0) == pytest.approx(100.0)
    text = table({"a_posts_per_s": 1234.5, "b_ratio": 0.5})
    assert "a_posts_per_s" in text and "1,234.5" in text


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_bench_writes_every_measure(tmp_path: Path, pg_admin_url: str) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "incidents_dev", "bench", "--scale", str(SCALE), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "INCIDENTS_BENCH_PG_URL": pg_admin_url},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    missing = [k for k in REQUIRED_KEYS if k not in results]
    assert missing == []
    bad = {
        k: results[k]
        for k in REQUIRED_KEYS
        if not (isinstance(results[k], int | float) and math.isfinite(results[k]) and results[k] > 0)
    }
    assert bad == {}
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in results.values())
    assert results["e2e_posts"] == FULL.scaled(SCALE).e2e_posts
    assert (out / "results.png").stat().st_size > 1000
    assert "classify_posts_per_s" in proc.stdout
