"""Measure the analyser: on the blind test set (the only figures the project reports), or on the
development set (which is training data now: a sanity check, not a quality figure).

    python -m incidents evaluate --blind [--errors] [--results .bench/results.json]
    python -m incidents evaluate --split all

The blind set (``data/blind/blind_set.jsonl``, see its README) is read only here: nothing is
trained, tuned or thresholded on it. Figures:

* ``incident_f1`` (and precision/recall) of ``is_incident``;
* ``category_accuracy`` over the true incidents (a missed incident counts as wrong);
* ``hazard_recall`` / ``hazard_precision`` of the hazard flag, ``hazard_type_accuracy`` over the
  true hazards that were flagged;
* ``municipality_accuracy`` over the posts about the Kirov region (exact code; null when the
  text names no Kirov place); ``false_kirov_place_rate``: the share of posts about another
  region's city that got a Kirov municipality.

Beside the figures, ``by_category`` (per true category: its incidents, how many got it, and what
the others got instead, ``missed`` for an incident not called one) and ``by_hazard_type`` (per
true hazard type: its hazards and how many were flagged) say where the errors are.

``--results PATH`` merges these as ``quality_*`` into a bench results file (``.bench/results.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from incidents.analysis.classifier import AnalysisResult, Analyzer, default_analyzer

ANALYSIS_DIR = Path(__file__).resolve().parent
DEVSET_PATH = ANALYSIS_DIR / "devset" / "devset.jsonl"
BLIND_PATH = ANALYSIS_DIR / "data" / "blind" / "blind_set.jsonl"
TARGETS = {
    "incident_f1": 0.95,
    "category_accuracy": 0.92,
    "hazard_recall": 0.95,
    "hazard_precision": 0.85,
    "municipality_accuracy": 0.95,
}
"""Acceptance targets of issue 10 on the blind set (``false_kirov_place_rate`` <= 0.01 too)."""
MAX_FALSE_KIROV = 0.01
QUALITY_KEYS = (
    "incident_f1",
    "incident_precision",
    "incident_recall",
    "category_accuracy",
    "hazard_recall",
    "hazard_precision",
    "hazard_type_accuracy",
    "municipality_accuracy",
    "false_kirov_place_rate",
)


def load_devset(split: str = "heldout", path: Path | None = None) -> list[dict[str, Any]]:
    """Development-set items of one split (``dev``, ``heldout``) or ``all``."""
    items = []
    with (path or DEVSET_PATH).open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            if split == "all" or item["split"] == split:
                items.append(item)
    return items


def load_blind(path: Path | None = None) -> list[dict[str, Any]]:
    """The blind test set's rows (for measuring only)."""
    with (path or BLIND_PATH).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def evaluate_items(
    items: Sequence[dict[str, Any]],
    analyzer: Analyzer | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Quality figures of the analyser on labelled items (keys as in the blind set)."""
    analyzer = analyzer or default_analyzer()
    tp = fp = fn = 0
    h_tp = h_fp = h_fn = h_type_ok = 0
    muni_ok = muni_n = other_n = other_kirov = review = 0
    results: list[AnalysisResult] = []
    for item in items:
        res = analyzer.analyse(item["text"])
        results.append(res)
        review += res.needs_review
        wrong: list[str] = []
        truth_inc = bool(item["is_incident"])
        if res.is_incident and truth_inc:
            tp += 1
        elif res.is_incident:
            fp += 1
            wrong.append("incident+")
        elif truth_inc:
            fn += 1
            wrong.append("incident-")
        if truth_inc:
            if res.category != item["category"]:
                wrong.append(f"category {res.category}!={item['category']}")
        if item["hazard"] and res.hazard:
            h_tp += 1
            h_type_ok += res.hazard_type == item["hazard_type"]
            if res.hazard_type != item["hazard_type"]:
                wrong.append(f"hazard_type {res.hazard_type}!={item['hazard_type']}")
        elif res.hazard:
            h_fp += 1
            wrong.append(f"hazard+ {res.hazard_type}")
        elif item["hazard"]:
            h_fn += 1
            wrong.append(f"hazard- {item['hazard_type']}")
        predicted = res.municipality_code
        if item.get("other_region"):
            other_n += 1
            if predicted is not None:
                other_kirov += 1
                wrong.append(f"kirov place for another region: {predicted}")
        else:
            muni_n += 1
            ok = predicted == item["municipality"]
            muni_ok += ok
            if not ok:
                wrong.append(f"municipality {predicted}!={item['municipality']}")
        if wrong and errors is not None:
            errors.append(
                {"id": item["id"], "text": item["text"], "wrong": wrong, "explanation": res.explanation}
            )
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
    parts = breakdown(items, results)
    n_true = sum(c["incidents"] for c in parts["by_category"].values())
    cat_ok = sum(c["right"] for c in parts["by_category"].values())
    metrics: dict[str, Any] = {
        "classifier_version": getattr(analyzer, "classifier_version", "?"),
        "incident_precision": precision,
        "incident_recall": recall,
        "incident_f1": f1,
        "category_accuracy": _ratio(cat_ok, n_true),
        "hazard_recall": _ratio(h_tp, h_tp + h_fn),
        "hazard_precision": _ratio(h_tp, h_tp + h_fp),
        "hazard_type_accuracy": _ratio(h_type_ok, h_tp),
        "municipality_accuracy": _ratio(muni_ok, muni_n),
        "false_kirov_place_rate": _ratio(other_kirov, other_n),
        "needs_review_share": _ratio(review, len(items)),
        "counts": {
            "items": len(items),
            "incidents": n_true,
            "non_incidents": len(items) - n_true,
            "hazards": h_tp + h_fn,
            "kirov_region": muni_n,
            "other_region": other_n,
        },
    }
    metrics.update(parts)
    metrics["meets_targets"] = (
        all(metrics[k] >= v for k, v in TARGETS.items())
        and metrics["false_kirov_place_rate"] <= MAX_FALSE_KIROV
    )
    return metrics


def breakdown(items: Sequence[dict[str, Any]], results: Sequence[AnalysisResult]) -> dict[str, Any]:
    """Where the errors are: per true category, its incidents, how many got it and what the others
    got instead (``missed``: not called an incident); per true hazard type, its hazards and how
    many were flagged."""
    categories: dict[str, Counter[str]] = {}
    hazard_types: dict[str, list[bool]] = {}
    for item, res in zip(items, results, strict=True):
        if item["is_incident"]:
            categories.setdefault(item["category"], Counter())[res.category or "missed"] += 1
        if item["hazard"]:
            hazard_types.setdefault(item["hazard_type"], []).append(res.hazard)
    return {
        "by_category": {
            category: {
                "incidents": sum(given.values()),
                "right": given[category],
                "instead": dict(sorted((c, k) for c, k in given.items() if c != category)),
            }
            for category, given in sorted(categories.items())
        },
        "by_hazard_type": {
            kind: {"hazards": len(flags), "flagged": sum(flags)}
            for kind, flags in sorted(hazard_types.items())
        },
    }


def evaluate_blind(
    analyzer: Analyzer | None = None, *, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The analyser's figures on the blind test set."""
    return {"set": "blind", **evaluate_items(load_blind(), analyzer, errors=errors)}


def evaluate(
    split: str = "heldout", analyzer: Analyzer | None = None, *, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Figures on a development-set split (training data: not a quality figure)."""
    items = [{**i, "other_region": False} for i in load_devset(split)]
    return {"set": f"devset:{split}", **evaluate_items(items, analyzer, errors=errors)}


def quality_results(metrics: dict[str, Any]) -> dict[str, float]:
    """``quality_*`` entries of the bench results from blind-set metrics."""
    return {f"quality_{k}": float(metrics[k]) for k in QUALITY_KEYS}


def merge_results(path: Path, values: dict[str, float]) -> None:
    """Merge ``values`` into the JSON object at ``path`` (created when missing)."""
    data: dict[str, float] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    data.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n", encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blind", action="store_true", help="measure on the blind test set")
    parser.add_argument("--split", default="heldout", choices=["heldout", "dev", "all"], help="devset split")
    parser.add_argument("--errors", action="store_true", help="list the mistakes")
    parser.add_argument("--results", type=Path, default=None, help="merge quality_* into this JSON file")


def run(args: argparse.Namespace) -> int:
    errors: list[dict[str, Any]] = []
    if args.blind:
        metrics = evaluate_blind(errors=errors if args.errors else None)
    else:
        metrics = evaluate(args.split, errors=errors if args.errors else None)
    sys.stdout.write(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    for err in errors:
        sys.stdout.write(json.dumps(err, ensure_ascii=False) + "\n")
    if args.results:
        if not args.blind:
            raise SystemExit("--results takes the blind-set figures only (add --blind)")
        merge_results(args.results, quality_results(metrics))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
