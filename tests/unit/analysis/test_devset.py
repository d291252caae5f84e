from __future__ import annotations

from collections import Counter

from incidents import CATEGORIES
from incidents.analysis.classifier import load_rubricator
from incidents.analysis.devset import build
from incidents.analysis.evaluate import load_devset


def test_devset_file_is_up_to_date() -> None:
    assert build.main(["--check"]) == 0


def test_devset_coverage_and_split() -> None:
    items = load_devset("all")
    topics = load_rubricator()
    assert len(items) >= 600
    assert len({i["id"] for i in items}) == len(items)
    assert {i["category"] for i in items if i["is_incident"]} == set(CATEGORIES)
    hazards = Counter(i["hazard_type"] for i in items if i["hazard"])
    # the 12 original hazard types (the six added by issue 10 come with the hand-written training data)
    assert len(hazards) >= 12 and set(hazards) <= {t["hazard_type"] for t in topics.values() if t["hazard"]}
    assert min(hazards.values()) >= 5
    assert len({i["municipality"] for i in items if i["municipality"]}) >= 30
    assert sum(not i["is_incident"] for i in items) >= 120
    held = sum(i["split"] == "heldout" for i in items) / len(items)
    assert 0.2 <= held <= 0.35
    for item in items:
        if item["topic"]:
            assert topics[item["topic"]]["category"] == item["category"]
    # a base text never straddles the split
    splits: dict[str, set[str]] = {}
    for item in items:
        splits.setdefault(item["base"], set()).add(item["split"])
    assert all(len(s) == 1 for s in splits.values())
