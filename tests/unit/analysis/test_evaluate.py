"""The quality figures and their breakdown, counted on a scripted analyser (every answer known)."""

from __future__ import annotations

from typing import Any, cast

from incidents.analysis import Analyzer
from incidents.analysis.classifier import AnalysisResult
from incidents.analysis.evaluate import evaluate_items


class _Scripted:
    """Answers each text with the result scripted for it."""

    classifier_version = "scripted"

    def __init__(self, answers: dict[str, AnalysisResult]) -> None:
        self.answers = answers

    def analyse(self, text: str) -> AnalysisResult:
        return self.answers[text]


def _result(category: str | None = None, hazard_type: str | None = None) -> AnalysisResult:
    return AnalysisResult(
        is_incident=category is not None,
        category=category,
        topic=None,
        hazard=hazard_type is not None,
        hazard_type=hazard_type,
        municipality=None,
        settlement=None,
    )


def _item(text: str, category: str | None = None, hazard_type: str | None = None) -> dict[str, Any]:
    return {
        "id": text,
        "text": text,
        "is_incident": category is not None,
        "category": category,
        "hazard": hazard_type is not None,
        "hazard_type": hazard_type,
        "municipality": None,
        "other_region": False,
    }


def test_the_breakdown_says_where_the_errors_are() -> None:
    items = [
        _item("яма во дворе", "improvement"),
        _item("двор не чистят", "improvement"),
        _item("люк открыт", "improvement", "open_manhole"),
        _item("дорога разбита", "roads"),
        _item("провал асфальта", "roads", "pit"),
        _item("доброе утро"),
    ]
    answers = {
        "яма во дворе": _result("roads"),  # the wrong category
        "двор не чистят": _result(),  # a missed incident
        "люк открыт": _result("improvement", "open_manhole"),
        "дорога разбита": _result("roads"),
        "провал асфальта": _result("roads"),  # a hazard not flagged
        "доброе утро": _result(),
    }
    metrics = evaluate_items(items, cast(Analyzer, _Scripted(answers)))

    assert metrics["category_accuracy"] == round(3 / 5, 4)
    assert metrics["by_category"] == {
        "improvement": {"incidents": 3, "right": 1, "instead": {"missed": 1, "roads": 1}},
        "roads": {"incidents": 2, "right": 2, "instead": {}},
    }
    assert metrics["by_hazard_type"] == {
        "open_manhole": {"hazards": 1, "flagged": 1},
        "pit": {"hazards": 1, "flagged": 0},
    }
    assert metrics["hazard_recall"] == 0.5
    # the breakdown adds up to the figures
    right = sum(c["right"] for c in metrics["by_category"].values())
    assert right / metrics["counts"]["incidents"] == metrics["category_accuracy"]
    flagged = sum(h["flagged"] for h in metrics["by_hazard_type"].values())
    assert flagged == metrics["counts"]["hazards"] * metrics["hazard_recall"]
