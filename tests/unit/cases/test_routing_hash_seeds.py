"""Routing and the monthly statistics give the same cases, links, events and figures in every
process: nothing may follow the order of a set of strings, which Python's string hashing varies by
process (a rerun in another worker must join the posts to the same cases)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, sys
from datetime import UTC, datetime

from sqlalchemy import insert, text

from incidents.cases.routing import route_posts
from incidents.db import migrate
from incidents.db.engine import make_engine
from incidents.db.models import Post, table_of
from incidents.reference.seed import load_reference
from incidents.stats.compute import compute_month
from incidents_dev.bench import MONTH, incident_rows

FIXED = datetime(2025, 4, 2, 6, 0, tzinfo=UTC)
engine = make_engine("sqlite:///" + sys.argv[1])
migrate.upgrade(engine)
load_reference(engine)
rows = [{**r, "collected_at": FIXED, "analysed_at": FIXED} for r in incident_rows(int(sys.argv[2]))]
with engine.begin() as conn:
    conn.execute(insert(table_of(Post)), rows)
summary = route_posts(engine, actor="pipeline", now=FIXED)
compute_month(engine, MONTH)
# every column (the times too: routing stamps them with ``now``)
tables = ("cases", "case_posts", "case_events", "monthly_stats")
out = {"opened": summary.opened, "joined": summary.joined}
with engine.connect() as conn:
    for name in tables:
        rows = conn.execute(text(f"SELECT * FROM {name}")).mappings()
        out[name] = sorted(json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False) for row in rows)
engine.dispose()
print(json.dumps(out, ensure_ascii=False))
"""


def test_routing_and_statistics_do_not_depend_on_string_hashing(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path / f"cases_{seed}.db"), "600"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("0", "1", "2")
    ]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()[-3000:]
        outputs.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    first = outputs[0]
    assert first["opened"] > 100 and first["joined"] > 50  # echoes of the same incidents were joined
    assert len(first["case_posts"]) == 600 and first["monthly_stats"]
    for other in outputs[1:]:
        for key in first:
            assert other[key] == first[key], key
