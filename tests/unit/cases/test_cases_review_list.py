"""``case list --review``: the cases with a post the analyser was unsure about (posts.needs_review)."""

from __future__ import annotations

import json

from cases_helpers import BASE_TIME
from sqlalchemy import Engine, update

from incidents.cli import main
from incidents.db.models import Post


def test_review_lists_cases_with_an_unsure_post(engine: Engine, make_posts, capsys) -> None:
    url = engine.url.render_as_string(hide_password=False)
    sure, unsure = make_posts(
        {"text": "Яма на Ленина у дома 3", "municipality_code": "33602"},
        {"text": "Не вывозят мусор во дворе", "category": "waste", "municipality_code": "33603"},
    )
    with engine.begin() as conn:
        conn.execute(update(Post).where(Post.id == unsure).values(needs_review=True))
        conn.execute(update(Post).where(Post.id == sure).values(needs_review=False))
    assert main(["route", "--url", url, "--now", BASE_TIME.isoformat(), "--json"]) == 0
    capsys.readouterr()
    assert main(["case", "list", "--url", url, "--review", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["summary"] for r in rows] == ["Не вывозят мусор во дворе"]
    assert main(["case", "list", "--url", url, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
