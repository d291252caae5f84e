"""The validation gate: each expectation catches its fault, failing rows go to quarantine, the rest go on."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from incidents.validation import ValidationFailed, raise_for_report, validate_batch
from incidents.validation.gate import NOT_JSON_OBJECT, SUITE_PATH, load_suite_config

WS = datetime(2026, 11, 1, 6, tzinfo=UTC)
WE = WS + timedelta(hours=1)
SOURCES = {"-31285017", "-44217689"}


def rec(i: int | str, **changes) -> dict:
    data = {
        "network": "vk",
        "external_id": f"-31285017_{i}",
        "source_id": "-31285017",
        "author_pseudonym": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
        "published_at": "2026-11-01T06:30:00Z",
        "text": f"Во дворе яма номер {i}",
        "kind": "post",
        "parent_external_id": None,
        "url": f"https://vk.com/wall-31285017_{i}",
        "geo": None,
        "raw": {"id": i},
    }
    data.update(changes)
    return data


def validate(records, **kw):
    kw.setdefault("max_failed_share", 1.0)
    return validate_batch(records, network="vk", window_start=WS, window_end=WE, known_sources=SOURCES, **kw)


def good(n: int = 20) -> list[dict]:
    return [rec(i) for i in range(n)]


FAULTS = [
    ("missing text", {"text": None}, "expect_column_values_to_not_be_null(text)"),
    ("text key absent", {"text": "__drop__"}, "expect_column_values_to_not_be_null(text)"),
    ("empty text", {"text": ""}, "expect_column_value_lengths_to_be_between(text)"),
    ("empty id", {"external_id": ""}, "expect_column_value_lengths_to_be_between(external_id)"),
    ("null id", {"external_id": None}, "expect_column_values_to_not_be_null(external_id)"),
    (
        "before window",
        {"published_at": "2026-11-01T05:59:59Z"},
        "expect_column_values_to_be_between(window_epoch)",
    ),
    (
        "at window end",
        {"published_at": "2026-11-01T07:00:00Z"},
        "expect_column_values_to_be_between(window_epoch)",
    ),
    ("bad timestamp", {"published_at": "вчера"}, "expect_column_values_to_not_be_null(published_at_epoch)"),
    ("int id", {"external_id": 12345}, "expect_column_values_to_be_of_type(external_id)"),
    ("dict text", {"text": {"ru": "яма"}}, "expect_column_values_to_be_of_type(text)"),
    ("list geo", {"geo": [58.6, 49.6]}, "expect_column_values_to_be_of_type(geo)"),
    ("unknown source", {"source_id": "-999"}, "expect_column_values_to_be_in_set(source_id)"),
    ("over-long text", {"text": "я" * 20_001}, "expect_column_value_lengths_to_be_between(text)"),
    ("over-long id", {"external_id": "9" * 129}, "expect_column_value_lengths_to_be_between(external_id)"),
    ("wrong network", {"network": "ok"}, "expect_column_values_to_be_in_set(network)"),
    ("unknown kind", {"kind": "story"}, "expect_column_values_to_be_in_set(kind)"),
]


@pytest.mark.parametrize(("label", "change", "expectation"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_expectation_catches_its_fault(label, change, expectation):
    bad = rec("bad", **change)
    if change.get("text") == "__drop__":
        del bad["text"]
    records = good(10) + [bad] + good(20)[10:]
    report = validate(records)
    assert len(report.quarantined) == 1, [q.reason for q in report.quarantined]
    q = report.quarantined[0]
    assert expectation in q.expectation.split(", ")
    assert q.reason and not q.reason.endswith(" failed") and "{" not in q.reason.replace("{lat, lon}", "")
    assert json.loads(q.raw)["raw"] == {"id": "bad"}
    assert [r["external_id"] for r in report.valid_records] == [f"-31285017_{i}" for i in range(20)]
    assert report.stats["per_expectation"][expectation] == 1
    assert report.stats["evaluated"] == 21 and report.stats["failed"] == 1


def test_reasons_are_readable():
    report = validate([rec(1, source_id="-999"), rec(2, published_at="2026-11-02T00:00:00Z"), rec(3, text=5)])
    reasons = {q.external_id: q.reason for q in report.quarantined}
    assert reasons["-31285017_1"] == "source_id '-999' is not a configured vk source"
    assert "outside the batch window [2026-11-01T06:00:00Z, 2026-11-01T07:00:00Z)" in reasons["-31285017_2"]
    assert reasons["-31285017_3"] == "text has type int, expected a string"


def test_duplicates_are_quarantined_with_distinct_keys():
    report = validate(good(5) + [rec(2)])
    dup = [q for q in report.quarantined]
    assert {q.record_key for q in dup} == {"vk:-31285017_2", "vk:-31285017_2#2"}
    assert all(q.expectation == "expect_compound_columns_to_be_unique(network,external_id)" for q in dup)
    assert len(report.valid_records) == 4


def test_record_failing_several_expectations_is_quarantined_once_with_all_reasons():
    report = validate(good(3) + [rec(9, source_id="-999", kind="story", text="")])
    assert len(report.quarantined) == 1
    q = report.quarantined[0]
    names = q.expectation.split(", ")
    assert set(names) == {
        "expect_column_values_to_be_in_set(source_id)",
        "expect_column_values_to_be_in_set(kind)",
        "expect_column_value_lengths_to_be_between(text)",
    }
    assert len(q.reason.split("; ")) == 3
    assert q.record_key == "vk:-31285017_9"


def test_threshold_fails_the_report_and_raises_with_a_summary(tmp_path):
    records = good(18) + [rec(100, source_id="-999"), rec(101, text="")]
    report = validate(records, max_failed_share=0.05)
    assert not report.success and report.stats["failed_share"] == pytest.approx(0.1)
    with pytest.raises(ValidationFailed) as err:
        raise_for_report(report)
    message = str(err.value)
    assert "2 of 20 records failed" in message
    assert "expect_column_values_to_be_in_set(source_id): 1" in message
    assert "vk:-31285017_100" in message  # an example
    assert err.value.report is report
    ok = validate(records, max_failed_share=0.10)
    assert ok.success
    raise_for_report(ok)


def test_garbage_never_crashes_and_never_vanishes():
    garbage = [
        "not json at all",
        b"\xff\xfe\x00binary",
        b'{"network": "vk", "text": "\xff"}',
        42,
        None,
        "[1, 2, 3]",
        '"just a string"',
        "{" * 5000,
        json.dumps(rec("json-text")),  # a JSON object given as text is fine
        rec("huge", text="я" * 1_000_000),
        rec("nested", text=[{"a": [1, {"b": 2}]}], source_id={"x": 1}, network=["vk"], published_at=12345),
        rec("float", external_id=float("nan"), text=3.14, author_pseudonym=True),
        {1: "int key", "network": "vk"},
        {},
    ]
    records = good(5) + garbage
    report = validate(records)
    assert report.stats["evaluated"] == len(records)
    assert len(report.valid_records) + len(report.quarantined) == len(records)
    assert {r["external_id"] for r in report.valid_records} == {f"-31285017_{i}" for i in range(5)} | {
        "-31285017_json-text"
    }
    not_json = [q for q in report.quarantined if q.expectation == NOT_JSON_OBJECT]
    assert len(not_json) == 8
    assert all(q.reason.startswith("not a JSON object") and q.raw for q in not_json)
    keys = [q.record_key for q in report.quarantined]
    assert len(keys) == len(set(keys))
    huge = next(q for q in report.quarantined if q.external_id == "-31285017_huge")
    assert "1000000 characters" in huge.reason


def test_dataframe_input_and_datetime_published_at():
    frame = pd.DataFrame(good(4))
    report = validate(frame)
    assert len(report.valid_records) == 4
    with_dt = rec(7, published_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC) + timedelta(hours=-3))
    report = validate([with_dt])
    assert report.valid_records[0]["published_at"] == "2026-11-01T06:30:00Z"


def test_missing_column_in_the_whole_batch():
    records = [{k: v for k, v in r.items() if k != "source_id"} for r in good(3)]
    report = validate(records)
    assert not report.success
    assert len(report.quarantined) == 3
    assert any("source_id" in f for f in report.stats["table_failures"])


def test_empty_batch_is_a_success():
    report = validate([])
    assert report.success and report.stats["evaluated"] == 0


def test_docs_are_written(tmp_path):
    report = validate(good(3) + [rec(5, text="")], docs_dir=tmp_path / "validation", run_id="manual__1")
    assert report.docs_path == tmp_path / "validation" / "index.html"
    page = report.docs_path.read_text(encoding="utf-8")
    assert "expect_column_value_lengths_to_be_between(text)" in page and "manual__1" in page
    data = json.loads((tmp_path / "validation" / "validation_result.json").read_text(encoding="utf-8"))
    assert data["stats"]["failed"] == 1 and data["quarantined"][0]["record_key"] == "vk:-31285017_5"
    assert any(r["name"] == "expect_column_values_to_be_in_set(source_id)" for r in data["gx_results"])


def test_suite_is_data_and_avoids_in_type_list():
    suite = load_suite_config(str(SUITE_PATH))
    types = {e["type"] for e in suite["expectations"]}
    assert "expect_column_values_to_be_in_type_list" not in types
    assert {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_not_be_null",
        "expect_column_value_lengths_to_be_between",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    } <= types
    assert all(e.get("meta", {}).get("reason") for e in suite["expectations"])


def test_ten_thousand_rows_validate_quickly():
    validate(good(10))  # warm the GX context
    records = [rec(i) for i in range(10_000)]
    records[17]["text"] = ""
    started = time.perf_counter()
    report = validate(records)
    elapsed = time.perf_counter() - started
    assert len(report.quarantined) == 1
    assert elapsed < 5.0, f"10,000 rows took {elapsed:.1f}s"


def test_comments_may_come_after_their_window_but_posts_may_not() -> None:
    """A comment is collected with its post's window: late comments pass, early ones and late posts fail."""
    window_start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    window_end = window_start + timedelta(hours=1)
    base = {
        "network": "vk",
        "source_id": "-31285017",
        "author_pseudonym": "a" * 32,
        "text": "Яма во дворе",
        "url": None,
        "geo": None,
        "raw": {},
    }
    records = [
        {
            **base,
            "external_id": "p1",
            "kind": "post",
            "parent_external_id": None,
            "published_at": "2026-11-01T06:10:00Z",
        },
        {
            **base,
            "external_id": "c1",
            "kind": "comment",
            "parent_external_id": "p1",
            "published_at": "2026-11-03T09:00:00Z",
        },
        {
            **base,
            "external_id": "c2",
            "kind": "comment",
            "parent_external_id": "p1",
            "published_at": "2026-11-01T05:00:00Z",
        },
        {
            **base,
            "external_id": "p2",
            "kind": "post",
            "parent_external_id": None,
            "published_at": "2026-11-01T07:00:00Z",
        },
    ]
    report = validate_batch(
        records,
        network="vk",
        window_start=window_start,
        window_end=window_end,
        known_sources={"-31285017"},
        max_failed_share=1.0,
    )
    assert sorted(r["external_id"] for r in report.valid_records) == ["c1", "p1"]
    assert sorted(q.external_id for q in report.quarantined) == ["c2", "p2"]


def test_only_failing_expectations_are_validated_again_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every expectation is first asked for success only; those that fail are validated again
    for their rows, and nothing else is (GX's cost per validation is mostly fixed)."""
    from great_expectations.datasource.fluent.interfaces import Batch

    from incidents.validation import gate

    calls: list[tuple[str, list[str]]] = []
    original = Batch.validate

    def counting(self, expect, *args, **kwargs):  # type: ignore[no-untyped-def]
        names = [gate.expectation_name(e.configuration.to_json_dict()) for e in expect.expectations]
        calls.append((kwargs["result_format"]["result_format"], names))
        return original(self, expect, *args, **kwargs)

    monkeypatch.setattr(Batch, "validate", counting)
    clean = validate(good(5))
    assert clean.success and [f for f, _ in calls] == ["BOOLEAN_ONLY", "BOOLEAN_ONLY"]

    calls.clear()
    report = validate(good(5) + [rec("bad", kind="story")])
    assert [f for f, _ in calls] == ["BOOLEAN_ONLY", "BOOLEAN_ONLY", "COMPLETE"]
    assert calls[-1][1] == ["expect_column_values_to_be_in_set(kind)"]
    assert [q.expectation for q in report.quarantined] == ["expect_column_values_to_be_in_set(kind)"]
    assert len(report.valid_records) == 5
