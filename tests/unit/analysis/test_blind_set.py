"""The blind test set is frozen: its hash, its composition and its labels' consistency."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from incidents import CATEGORIES, HAZARD_TYPES

BLIND = Path(__file__).resolve().parents[3] / "include/incidents/analysis/data/blind/blind_set.jsonl"
FROZEN_SHA256 = "56f031cb86a39fe4df062662118ff344b7186c395c539383aa743ee7b759f244"


def _rows() -> list[dict]:
    return [json.loads(line) for line in BLIND.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_blind_set_is_frozen() -> None:
    assert hashlib.sha256(BLIND.read_bytes()).hexdigest() == FROZEN_SHA256


def test_composition_meets_the_issue() -> None:
    rows = _rows()
    assert len(rows) >= 600
    hazards = Counter(r["hazard_type"] for r in rows if r["hazard"])
    assert sum(hazards.values()) >= 150
    assert set(hazards) == set(HAZARD_TYPES) and min(hazards.values()) >= 8
    categories = Counter(r["category"] for r in rows if r["is_incident"])
    assert set(categories) == set(CATEGORIES) and min(categories.values()) >= 25
    assert sum(not r["is_incident"] for r in rows) >= 150
    assert len({r["text"] for r in rows}) == len(rows)


def test_labels_are_consistent() -> None:
    for r in _rows():
        if r["hazard"]:
            assert r["is_incident"] and r["hazard_type"], r["id"]
        if not r["is_incident"]:
            assert r["category"] is None and not r["hazard"], r["id"]
        if r["other_region"]:
            assert r["municipality"] is None, r["id"]
