"""Measure the analyser on the sandbox's generated stream (its ground truth).

    python -m incidents_dev.sandbox_eval [--seed 5] [--start 2026-06-01] [--end 2026-07-01] [--errors 5]

Every record of :func:`incidents_dev.sandbox.generator.ground_truth` is analysed the way the
pipeline does it: :func:`~incidents.analysis.classifier.default_analyzer` with the source's
municipality as tie-breaker, then :func:`~incidents.analysis.classifier.with_fallback` to it.
Metrics follow :mod:`incidents.analysis.evaluate`: incident precision/recall/F1, category
accuracy over the true incidents (a missed incident counts as wrong), hazard recall and
precision (a hazard counts when its type is right), municipality accuracy over the true
incidents. The classifier's rules are tuned on other seeds and windows than the report stream
(seed 5, June 2026), so this measures how the rules generalise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from incidents.analysis.classifier import Analyzer, default_analyzer, with_fallback
from incidents.analysis.evaluate import TARGETS
from incidents.sources import source_index

REPORT_SEED = 5
REPORT_START = datetime(2026, 6, 1, tzinfo=UTC)
REPORT_END = datetime(2026, 7, 1, tzinfo=UTC)
REPORT_NOW = datetime(2026, 11, 15, tzinfo=UTC)
REPORT_RATE = 8.0


def report_stream(
    seed: int = REPORT_SEED,
    start: datetime = REPORT_START,
    end: datetime = REPORT_END,
    *,
    now: datetime = REPORT_NOW,
    rate_per_source_per_day: float = REPORT_RATE,
) -> list[dict[str, Any]]:
    """Ground-truth records of the sandbox stream of one seed and window."""
    from incidents_dev.sandbox.generator import ground_truth

    return ground_truth(start, end, seed=seed, now=now, rate_per_source_per_day=rate_per_source_per_day)


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def evaluate_records(
    records: Iterable[dict[str, Any]],
    analyzer: Analyzer | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of the analyser on ground-truth records; ``errors`` (a list) collects the mistakes."""
    analyzer = analyzer or default_analyzer()
    sources = source_index()
    tp = fp = fn = 0
    n_true = cat_ok = cat_ok_detected = muni_ok = 0
    h_tp = h_fp = h_fn = 0
    kinds: Counter[str] = Counter()
    n = 0
    started = time.perf_counter()
    for rec in records:
        n += 1
        source = sources.get((rec["network"], rec["source_id"]))
        source_muni = source.municipality if source else None
        res = with_fallback(
            analyzer.analyse(rec["text"], source_municipality=source_muni), source_muni, analyzer.gazetteer
        )
        wrong: list[str] = []
        if res.is_incident and rec["is_incident"]:
            tp += 1
        elif res.is_incident:
            fp += 1
            wrong.append(f"incident+ {rec.get('genre')}")
        elif rec["is_incident"]:
            fn += 1
            wrong.append(f"incident- {rec.get('genre')}")
        if rec["is_incident"]:
            n_true += 1
            cat_ok += res.category == rec["category"]
            cat_ok_detected += res.is_incident and res.category == rec["category"]
            if res.is_incident and res.category != rec["category"]:
                wrong.append(f"category {res.category}!={rec['category']}")
            muni_ok += res.municipality_code == rec["municipality"]
            if res.municipality_code != rec["municipality"]:
                wrong.append("municipality")
        if rec["hazard"] and res.hazard and res.hazard_type == rec["hazard_type"]:
            h_tp += 1
        else:
            if res.hazard:
                h_fp += 1
            if rec["hazard"]:
                h_fn += 1
            if res.hazard or rec["hazard"]:
                wrong.append(f"hazard {res.hazard_type}!={rec['hazard_type']}")
        kinds.update(wrong)
        if wrong and errors is not None:
            errors.append(
                {
                    "text": rec["text"],
                    "wrong": wrong,
                    "explanation": res.explanation,
                    "municipality": rec["municipality"],
                    "predicted_municipality": res.municipality_code,
                }
            )
    elapsed = time.perf_counter() - started
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    metrics: dict[str, Any] = {
        "incident_precision": precision,
        "incident_recall": recall,
        "incident_f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "category_accuracy": _ratio(cat_ok, n_true),
        "category_accuracy_detected": _ratio(cat_ok_detected, tp),
        "hazard_recall": _ratio(h_tp, h_tp + h_fn),
        "hazard_precision": _ratio(h_tp, h_tp + h_fp),
        "municipality_accuracy": _ratio(muni_ok, n_true),
        "counts": {"items": n, "incidents": n_true, "hazards": h_tp + h_fn},
        "posts_per_s": round(n / elapsed, 1) if elapsed > 0 else float("inf"),
        "error_kinds": dict(kinds.most_common(20)),
    }
    metrics["meets_targets"] = all(metrics[k] >= v for k, v in TARGETS.items())
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=REPORT_SEED)
    parser.add_argument("--start", type=datetime.fromisoformat, default=REPORT_START)
    parser.add_argument("--end", type=datetime.fromisoformat, default=REPORT_END)
    parser.add_argument("--errors", type=int, default=0, help="print up to N mistakes of each kind")
    args = parser.parse_args(argv)
    start = args.start if args.start.tzinfo else args.start.replace(tzinfo=UTC)
    end = args.end if args.end.tzinfo else args.end.replace(tzinfo=UTC)
    errors: list[dict[str, Any]] = []
    metrics = evaluate_records(report_stream(args.seed, start, end), errors=errors)
    sys.stdout.write(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    if args.errors:
        shown: Counter[str] = Counter()
        for err in errors:
            kind = err["wrong"][0]
            if shown[kind] < args.errors:
                shown[kind] += 1
                sys.stdout.write(json.dumps(err, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
