"""Idempotent upsert of posts, batches and quarantine on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from incidents.collect.store import content_hash, get_or_create_batch, quarantine, upsert_posts
from incidents.db.models import Batch, Post, Quarantine
from incidents.schema import NormalizedPost

START = datetime(2025, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
COLLECTED = datetime(2025, 3, 2, 1, tzinfo=UTC)


def make(n: int, text: str | None = None, kind: str = "post") -> NormalizedPost:
    return NormalizedPost(
        network="vk",
        external_id=f"-7_{n}",
        source_id="-7",
        author_pseudonym="p" * 32,
        published_at=START + timedelta(minutes=n),
        text=text if text is not None else f"Яма на улице {n}",
        kind=kind,
        parent_external_id="-7_0" if kind == "comment" else None,
        url=f"https://vk.com/wall-7_{n}",
        geo={"lat": 58.6, "lon": 49.6} if n == 1 else None,
        raw={"id": n, "text": "сырой"},
    )


def test_upsert_is_idempotent_and_chunked(session) -> None:
    batch = get_or_create_batch(session, "vk", START, END, "run-1")
    posts = [make(n) for n in range(1, 26)]
    stats = upsert_posts(
        session, posts, batch_id=batch.id, run_id="run-1", collected_at=COLLECTED, chunk_size=10
    )
    session.commit()
    assert (stats.inserted, stats.updated, stats.unchanged) == (25, 0, 0)
    again = upsert_posts(session, iter(posts), batch_id=batch.id, run_id="run-2", collected_at=COLLECTED,
                         chunk_size=7)  # fmt: skip
    session.commit()
    assert (again.inserted, again.updated, again.unchanged, again.total) == (0, 0, 25, 25)
    assert session.scalar(select(func.count()).select_from(Post)) == 25
    row = session.scalars(select(Post).where(Post.external_id == "-7_1")).one()
    assert row.geo_lat == 58.6 and row.geo_lon == 49.6 and row.raw == {"id": 1, "text": "сырой"}
    assert row.published_at.replace(tzinfo=UTC) == START + timedelta(minutes=1)
    assert row.content_hash == content_hash("Яма на улице 1") and row.collect_run_id == "run-1"
    assert row.batch_id == batch.id


def test_labels_survive_unchanged_text_and_are_cleared_on_change(session) -> None:
    upsert_posts(session, [make(1), make(2)], batch_id=None, run_id="r", collected_at=COLLECTED)
    session.execute(
        update(Post).values(is_incident=True, category="roads", topic="potholes", classifier_version="v1")
    )
    session.commit()
    same = make(1, text="  ЯМА на   улице 1 ")  # same normalised text: the same content hash
    stats = upsert_posts(session, [same, make(2, text="Яму уже заделали")], batch_id=None, run_id="r2",
                         collected_at=COLLECTED)  # fmt: skip
    session.commit()
    assert (stats.updated, stats.unchanged) == (1, 1)
    session.expire_all()
    rows = {p.external_id: p for p in session.scalars(select(Post))}
    assert rows["-7_1"].category == "roads" and rows["-7_1"].is_incident is True
    assert rows["-7_1"].text == "Яма на улице 1"  # an unchanged post is left alone
    changed = rows["-7_2"]
    assert changed.text == "Яму уже заделали" and changed.collect_run_id == "r2"
    assert changed.is_incident is None and changed.category is None and changed.classifier_version is None


def test_upsert_accepts_jsonl_dicts_and_duplicates(session) -> None:
    rows = [make(3).to_json_dict(), make(3).to_json_dict(), make(4, kind="comment").to_json_dict()]
    stats = upsert_posts(session, rows, batch_id=None, run_id="r", collected_at=COLLECTED)
    session.commit()
    assert (stats.inserted, stats.duplicates) == (2, 1)
    comment = session.scalars(select(Post).where(Post.external_id == "-7_4")).one()
    assert comment.kind == "comment" and comment.parent_external_id == "-7_0"


def test_any_text_and_raw_item_are_stored_as_they_came(session) -> None:
    """What COPY's text format escapes (tabs, newlines, backslashes, «\\N») and what JSON must
    keep (nested items, quotes, emoji, a null) arrive as they were, on both dialects."""
    text = 'Яма\tна\nулице\\N «Ленина» \\ "кавычки" 🚧 \r\nконец'
    raw = {"text": text, "attachments": [{"type": "photo", "sizes": [1, 2]}], "geo": None, "likes": 3}
    post = make(7, text=text)
    post.raw = raw
    stats = upsert_posts(session, [post, make(8)], batch_id=None, run_id="r", collected_at=COLLECTED)
    session.commit()
    session.expire_all()
    row = session.scalars(select(Post).where(Post.external_id == "-7_7")).one()
    assert stats.inserted == 2 and row.text == text and row.raw == raw and row.geo_lat is None
    assert row.url == "https://vk.com/wall-7_7" and row.kind == "post" and row.parent_external_id is None


def test_a_failed_load_leaves_nothing_and_the_next_one_works(session) -> None:
    """A chunk written in a transaction that is rolled back leaves no post behind, and the next
    load in the same connection writes again (no leftover temporary rows)."""
    upsert_posts(session, [make(1), make(2)], batch_id=None, run_id="r", collected_at=COLLECTED, chunk_size=1)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Post)) == 0
    stats = upsert_posts(session, [make(2), make(3)], batch_id=None, run_id="r", collected_at=COLLECTED)
    session.commit()
    assert stats.inserted == 2
    assert sorted(session.scalars(select(Post.external_id))) == ["-7_2", "-7_3"]


def test_batch_is_unique_per_window(session) -> None:
    first = get_or_create_batch(session, "vk", START, END, "run-1")
    session.commit()
    second = get_or_create_batch(session, "vk", START, END, "run-2")
    session.commit()
    other = get_or_create_batch(session, "ok", START, END, "run-2")
    session.commit()
    assert first.id == second.id != other.id and second.run_id == "run-2"
    assert session.scalar(select(func.count()).select_from(Batch)) == 2


def test_quarantine_is_idempotent(session) -> None:
    records = [
        {
            "raw": {"id": 9, "deleted": True},
            "reason": "deleted comment",
            "network": "vk",
            "external_id": "-7_1_9",
        },
        {"raw": {"broken": "item"}, "reason": "unusable post: missing 'id'"},
    ]
    assert quarantine(session, "collect", records, run_id="r1") == 2
    session.commit()
    records[1] = {**records[1], "reason": "unusable post: missing or invalid 'id'"}
    quarantine(session, "collect", records, run_id="r2")
    session.commit()
    rows = {q.record_key: q for q in session.scalars(select(Quarantine))}
    assert len(rows) == 2 and "vk:-7_1_9" in rows
    hashed = next(q for k, q in rows.items() if k.startswith("sha256:"))
    assert hashed.reason == "unusable post: missing or invalid 'id'" and hashed.run_id == "r2"
    assert '"broken": "item"' in hashed.raw


def test_batch_records_skipped_sources_and_a_rerun_replaces_them(session) -> None:
    gone = [{"source_id": "-8", "reason": "vk API error 18: User was deleted or banned"}]
    batch = get_or_create_batch(session, "vk", START, END, "run-1", skipped_sources=gone)
    session.commit()
    assert batch.skipped_sources == gone
    kept = get_or_create_batch(session, "vk", START, END, "run-2")  # no list given: left alone
    session.commit()
    assert kept.skipped_sources == gone
    rerun = get_or_create_batch(session, "vk", START, END, "run-3", skipped_sources=[])
    session.commit()
    assert rerun.id == batch.id and rerun.skipped_sources == []
    with pytest.raises(ValueError, match="source_id"):
        get_or_create_batch(session, "vk", START, END, "run-4", skipped_sources=[{"id": "-8"}])


def test_load_window_records_the_skipped_sources_of_the_collection(engine, tmp_path) -> None:
    import json

    from incidents.collect.pipeline import LandingArea
    from incidents.stages import load_window

    landing = LandingArea(tmp_path)
    folder = landing.window_dir("vk", START, END)
    folder.mkdir(parents=True)
    (folder / "posts.jsonl").write_text(make(1).to_json() + "\n", encoding="utf-8")
    skipped = [{"source_id": "-9", "reason": "vk API error 15: Access denied: group is blocked"}]
    manifest = {"complete": True, "landing_uri": str(folder), "skipped": {"-9": skipped[0]["reason"]},
                "skipped_sources": skipped}  # fmt: skip
    (folder / "collect.json").write_text(json.dumps(manifest), encoding="utf-8")
    summary = load_window(engine, "vk", START, END, landing=landing, run_id="r1")
    assert summary["skipped_sources"] == 1
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        batch = session.get(Batch, summary["batch_id"])
        assert batch is not None and batch.skipped_sources == skipped
