"""Helpers of the case tests: insert labelled posts directly into the case database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert

from incidents.db.models import Post

_counter = itertools.count(1)

BASE_TIME = datetime(2025, 3, 12, 8, 0, tzinfo=UTC)  # Wednesday 11:00 in Kirov


def post_row(**overrides: Any) -> dict[str, Any]:
    """A labelled incident post row; every field can be overridden."""
    n = next(_counter)
    row: dict[str, Any] = {
        "network": "vk",
        "external_id": f"-1_{n}",
        "kind": "post",
        "parent_external_id": None,
        "source_id": "vk:-1",
        "author_pseudonym": f"a{n}",
        "published_at": BASE_TIME,
        "collected_at": BASE_TIME,
        "text": f"Яма на дороге номер {n}",
        "url": f"https://vk.com/wall-1_{n}",
        "content_hash": None,
        "is_incident": True,
        "category": "roads",
        "topic": None,
        "hazard": False,
        "hazard_type": None,
        "municipality_code": "33602",
        "settlement_oktmo": None,
        "classifier_version": "v1",
        "analysed_at": BASE_TIME,
    }
    row.update(overrides)
    return row


def add_posts(engine: Engine, rows: list[dict[str, Any]]) -> list[int]:
    """Insert post rows, return their ids in order."""
    with engine.begin() as conn:
        result = conn.execute(insert(Post).returning(Post.id, sort_by_parameter_order=True), rows)
        return list(result.scalars())


DYNAMIC_TABLES = ("notifications", "case_events", "case_posts", "cases", "quarantine", "posts", "batches")


def clear(engine: Engine) -> None:
    """Empty the pipeline tables (for tests that use ``pg_engine`` directly)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        for table in DYNAMIC_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


def run_concurrently(n: int, fn) -> list:
    """Run ``fn()`` in ``n`` threads released together by a barrier; return results, raise the first error."""
    import threading

    barrier = threading.Barrier(n)
    results: list = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            barrier.wait()
            results.append(fn())
        except BaseException as exc:  # handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
