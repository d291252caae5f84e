"""Measure the analyser on the labelled development set, and its throughput.

    python -m incidents.analysis.evaluate [--split heldout|dev|all] [--errors]

Targets on the held-out split: incident F1 ≥ 0.92, category accuracy ≥ 0.88 (over true
incidents), hazard recall ≥ 0.95 with precision ≥ 0.85, municipality accuracy ≥ 0.92
(exact code where labelled, null where the text names no place).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from incidents.analysis.classifier import Analyzer, default_analyzer

DEVSET_PATH = Path(__file__).resolve().parent / "devset" / "devset.jsonl"
TARGETS = {
    "incident_f1": 0.92,
    "category_accuracy": 0.88,
    "hazard_recall": 0.95,
    "hazard_precision": 0.85,
    "municipality_accuracy": 0.92,
}


def load_devset(split: str = "heldout", path: Path | None = None) -> list[dict[str, Any]]:
    """Items of one split (``dev``, ``heldout``) or ``all``."""
    items = []
    with (path or DEVSET_PATH).open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            if split == "all" or item["split"] == split:
                items.append(item)
    return items


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def evaluate(split: str = "heldout", analyzer: Analyzer | None = None, *, errors: list | None = None) -> dict:
    """Metrics of the analyser on a split; ``errors`` (a list) collects the mistakes."""
    analyzer = analyzer or default_analyzer()
    items = load_devset(split)
    tp = fp = fn = 0
    cat_ok = topic_ok = n_true = 0
    h_tp = h_fp = h_fn = 0
    muni_ok = muni_labelled = muni_labelled_ok = 0
    for item in items:
        res = analyzer.analyse(item["text"])
        wrong: list[str] = []
        if res.is_incident and item["is_incident"]:
            tp += 1
        elif res.is_incident:
            fp += 1
            wrong.append("incident+")
        elif item["is_incident"]:
            fn += 1
            wrong.append("incident-")
        if item["is_incident"]:
            n_true += 1
            cat_ok += res.category == item["category"]
            topic_ok += res.topic == item["topic"]
            if res.category != item["category"]:
                wrong.append(f"category {res.category}!={item['category']}")
            elif res.topic != item["topic"]:
                wrong.append(f"topic {res.topic}!={item['topic']}")
        if item["hazard"] and res.hazard and res.hazard_type == item["hazard_type"]:
            h_tp += 1
        else:
            if res.hazard:
                h_fp += 1
            if item["hazard"]:
                h_fn += 1
            if res.hazard or item["hazard"]:
                wrong.append(f"hazard {res.hazard_type}!={item['hazard_type']}")
        predicted = res.municipality_code
        ok = predicted == item["municipality"]
        muni_ok += ok
        if item["municipality"]:
            muni_labelled += 1
            muni_labelled_ok += ok
        if not ok:
            wrong.append(f"municipality {predicted}!={item['municipality']}")
        if wrong and errors is not None:
            errors.append(
                {"id": item["id"], "text": item["text"], "wrong": wrong, "explanation": res.explanation}
            )
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
    metrics = {
        "split": split,
        "classifier": "rules",
        "incident_precision": precision,
        "incident_recall": recall,
        "incident_f1": f1,
        "category_accuracy": _ratio(cat_ok, n_true),
        "topic_accuracy": _ratio(topic_ok, n_true),
        "hazard_recall": _ratio(h_tp, h_tp + h_fn),
        "hazard_precision": _ratio(h_tp, h_tp + h_fp),
        "municipality_accuracy": _ratio(muni_ok, len(items)),
        "municipality_accuracy_labelled": _ratio(muni_labelled_ok, muni_labelled),
        "counts": {
            "items": len(items),
            "incidents": n_true,
            "non_incidents": len(items) - n_true,
            "hazards": h_tp + h_fn,
            "with_municipality": muni_labelled,
        },
    }
    metrics["meets_targets"] = all(metrics[k] >= v for k, v in TARGETS.items())
    return metrics


def _stream(n: int) -> Iterator[str]:
    texts = [item["text"] for item in load_devset("all")]
    for i in range(n):
        yield texts[i % len(texts)]


def throughput(n: int = 20000, analyzer: Analyzer | None = None) -> float:
    """Posts per second on one core over ``n`` development-set posts (after a warm-up pass)."""
    analyzer = analyzer or default_analyzer()
    for text in _stream(min(n, 1000)):
        analyzer.analyse(text)
    start = time.perf_counter()
    for text in _stream(n):
        analyzer.analyse(text)
    elapsed = time.perf_counter() - start
    return round(n / elapsed, 1) if elapsed > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="heldout", choices=["heldout", "dev", "all"])
    parser.add_argument("--errors", action="store_true", help="list the mistakes")
    parser.add_argument("--throughput", type=int, default=0, help="also measure N posts")
    args = parser.parse_args(argv)
    errors: list = []
    metrics = evaluate(args.split, errors=errors if args.errors else None)
    if args.throughput:
        metrics["posts_per_s"] = throughput(args.throughput)
    sys.stdout.write(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    for err in errors:
        sys.stdout.write(json.dumps(err, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
