"""The generated stream: determinism, window additivity, the content mix and its ground truth."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from incidents import CATEGORIES
from incidents.config import REFERENCE_DIR
from incidents.sources import load_sources
from incidents_dev.sandbox.generator import HAZARD_TYPES, GeneratorConfig, SandboxItem, generate, ground_truth

START = datetime(2025, 1, 13, tzinfo=UTC)


def _keys(items: list[SandboxItem]) -> list[tuple]:
    return [(i.network, i.native_id, i.kind, i.text, i.published_at, i.incident_key) for i in items]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    end = START + timedelta(hours=12)
    a = _keys(list(generate(START, end, seed=7)))
    b = _keys(list(generate(START, end, seed=7)))
    c = _keys(list(generate(START, end, seed=8)))
    assert a == b and len(a) > 100
    assert a != c


def test_a_window_is_the_concatenation_of_its_parts() -> None:
    end = START + timedelta(days=2)
    whole = _keys(list(generate(START, end, seed=3)))
    parts = []
    cuts = [START, START + timedelta(hours=5, minutes=30), START + timedelta(days=1), end]
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        parts += _keys(list(generate(lo, hi, seed=3)))
    assert sorted(whole, key=repr) == sorted(parts, key=repr)
    assert len(set(whole)) == len(whole)


def test_the_content_of_an_hour_does_not_depend_on_the_window() -> None:
    hour = START + timedelta(days=1, hours=10)
    alone = _keys(list(generate(hour, hour + timedelta(hours=1), seed=3)))
    within = [k for k in _keys(list(generate(START, START + timedelta(days=2), seed=3)))]
    inside = [k for k in within if k in set(alone)]
    assert alone and inside == [k for k in alone]


@pytest.fixture(scope="module")
def month() -> list[SandboxItem]:
    return [i for i in generate(START, START + timedelta(days=30), seed=11) if not i.deleted]


def test_mix_over_30_days(month: list[SandboxItem]) -> None:
    incidents = [i for i in month if i.is_incident]
    share = len(incidents) / len(month)
    assert 0.025 <= share <= 0.05, share
    assert 0.002 <= sum(i.hazard for i in month) / len(month) <= 0.01
    assert set(Counter(i.category for i in incidents)) == set(CATEGORIES)
    assert set(i.hazard_type for i in incidents if i.hazard) == set(HAZARD_TYPES)
    assert set(i.network for i in month) == {"vk", "ok", "twitter", "facebook", "instagram"}
    genres = Counter(i.genre for i in month)
    for genre in ("chatter", "ad", "news", "planned", "thanks", "question", "greeting", "reply"):
        assert genres[genre] > 100, genre
    assert any(i.kind == "comment" and i.is_incident for i in month)
    assert any("люк" in i.text.lower() and not i.is_incident for i in month)  # hard negatives


def test_the_same_incident_appears_in_several_networks(month: list[SandboxItem]) -> None:
    by_key: dict[str, list[SandboxItem]] = {}
    for item in month:
        if item.incident_key:
            by_key.setdefault(item.incident_key, []).append(item)
    multi = [v for v in by_key.values() if len({i.network for i in v}) >= 2]
    assert len(multi) > 50
    for items in multi:
        assert (
            len({(i.category, i.topic, i.hazard_type, i.municipality, i.settlement_oktmo) for i in items})
            == 1
        )
        span = max(i.published_at for i in items) - min(i.published_at for i in items)
        assert span < timedelta(days=3)
        assert len({i.text for i in items}) > 1 or len(items) == 1


def test_ground_truth_is_consistent_with_the_reference(month: list[SandboxItem]) -> None:
    rubricator = yaml.safe_load((REFERENCE_DIR / "rubricator.yaml").read_text(encoding="utf-8"))
    topics = {
        t["slug"]: (c["slug"], t.get("hazard_type")) for c in rubricator["categories"] for t in c["topics"]
    }
    municipalities = {row["code"] for row in csv.DictReader((REFERENCE_DIR / "municipalities.csv").open())}
    settlements = {row["oktmo"] for row in csv.DictReader((REFERENCE_DIR / "settlements.csv").open())}
    for item in month:
        if not item.is_incident:
            assert item.category is None and not item.hazard and item.incident_key is None
            continue
        assert topics[item.topic][0] == item.category
        assert topics[item.topic][1] == item.hazard_type
        assert item.municipality in municipalities
        if item.settlement_oktmo:
            assert item.settlement_oktmo in settlements
            assert item.municipality.split("-")[0] == item.settlement_oktmo[:5]


def test_texts_are_varied_and_noisy(month: list[SandboxItem]) -> None:
    complaints = [i.text for i in month if i.is_incident]
    assert len(set(complaints)) > 0.95 * len(complaints)
    assert any(any("a" <= ch <= "z" for ch in t) and any("а" <= ch <= "я" for ch in t) for t in complaints)
    assert any(t.isupper() for t in complaints)
    assert any(p in " ".join(complaints) for p in ("на Филейке", "в Нововятске", "в Лянгасово"))
    assert any("района" in t and ("в деревне" in t or "в д." in t) for t in complaints)


def test_ground_truth_ids_are_unique_and_excludes_deleted() -> None:
    truth = ground_truth(START, START + timedelta(days=1), seed=2)
    keys = [(r["network"], r["external_id"]) for r in truth]
    assert len(keys) == len(set(keys))
    assert not any(r["deleted"] for r in truth)
    deleted = [i for i in generate(START, START + timedelta(days=1), seed=2) if i.deleted]
    assert deleted and all(i.network in ("vk", "ok") for i in deleted)
    comments = [r for r in truth if r["kind"] == "comment"]
    posts = {(r["network"], r["external_id"]) for r in truth if r["kind"] == "post"}
    assert all((c["network"], c["post_external_id"]) in posts for c in comments if c["network"] != "twitter")


def test_a_thread_reply_points_to_the_comment_it_answers() -> None:
    items = [i for i in generate(START, START + timedelta(days=2), seed=2) if i.kind == "comment"]
    by_native = {(i.network, i.source_id, i.parent_native_id, i.native_id): i for i in items}

    def answered_by(i: SandboxItem) -> SandboxItem | None:
        return by_native.get((i.network, i.source_id, i.parent_native_id, i.reply_to_native_id))

    replies = [i for i in items if i.reply_to_native_id]
    assert {i.network for i in replies} == {"vk", "ok", "twitter", "facebook", "instagram"}
    assert sum(answered_by(i) is not None for i in replies) > 0.9 * len(replies)
    for reply in replies:
        truth = reply.truth()
        answered = answered_by(reply)
        assert truth["parent_external_id"] != truth["post_external_id"]
        if answered is not None:
            assert truth["parent_external_id"] == answered.truth()["external_id"]
            assert answered.parent_native_id == reply.parent_native_id
            if reply.network in ("facebook", "instagram"):  # one-level threads
                assert answered.reply_to_native_id is None
    top = next(i for i in items if i.network == "vk" and not i.reply_to_native_id)
    assert top.truth()["parent_external_id"] == top.truth()["post_external_id"]
    nested = [i for i in replies if answered_by(i) is not None and answered_by(i).reply_to_native_id]
    assert nested and {i.network for i in nested} <= {"vk", "ok", "twitter"}


def test_now_hides_future_items() -> None:
    now = START + timedelta(hours=30)
    items = list(generate(START, START + timedelta(days=1), seed=2, now=now))
    assert items and all(i.published_at <= now for i in items)


def test_generation_is_fast_enough() -> None:
    import time

    config = GeneratorConfig.build(seed=99)
    t0 = time.perf_counter()
    count = sum(1 for _ in generate(START, START + timedelta(days=10), config=config))
    assert count > 20000
    assert time.perf_counter() - t0 < 10


def test_bad_windows_and_sources_are_rejected() -> None:
    with pytest.raises(ValueError):
        list(generate(START, START - timedelta(hours=1)))
    with pytest.raises(ValueError):
        list(generate(START.replace(tzinfo=None), START.replace(tzinfo=None) + timedelta(hours=1)))
    with pytest.raises(ValueError):
        GeneratorConfig.build(sources=[])
    assert len(load_sources()) >= 40


def test_truth_command_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "truth.jsonl"
    subprocess.run(
        [sys.executable, "-m", "incidents_dev", "sandbox", "truth", "--start", "2025-01-13T00:00:00Z",
         "--end", "2025-01-13T03:00:00Z", "--seed", "4", "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = ground_truth(START, START + timedelta(hours=3), seed=4)
    assert [r["external_id"] for r in records] == [r["external_id"] for r in expected]
