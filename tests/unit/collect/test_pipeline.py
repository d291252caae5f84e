"""collect_window: landing files, streaming, reruns, skipped sources, daily limits, auth failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incidents.collect import vk
from incidents.collect.base import Page
from incidents.collect.errors import AuthError, DailyLimitReached, SourceUnavailable
from incidents.collect.pipeline import LandingArea, client_for, collect_window, pseudonym_key_for, read_posts
from incidents.config import ConnectionInfo
from incidents.schema import NormalizedPost
from incidents.sources import Source

from .conftest import KEY

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 2, tzinfo=UTC)
CONN = ConnectionInfo("vk_default", "http", host="http://127.0.0.1:1/method", password="tok",
                      extra={"pseudonym_key": KEY})  # fmt: skip
SOURCES = [Source("vk", s, f"Группа {s}", "33701") for s in ("-1", "-2", "-3")]


def post(source: str, n: int, kind: str = "post") -> NormalizedPost:
    return NormalizedPost(
        network="vk",
        external_id=f"{source}_{n}",
        source_id=source,
        author_pseudonym="a" * 32,
        published_at=START + timedelta(hours=n),
        text=f"текст {n}",
        kind=kind,
        parent_external_id=f"{source}_0" if kind == "comment" else None,
    )


class FakeClient:
    """Yields two pages per source; ``errors`` maps a source id to the error raised after its first page."""

    def __init__(self, errors: dict[str, Exception] | None = None) -> None:
        self.errors = errors or {}

    def iter_pages(self, source, start, end):
        yield Page("vk", "wall.get", {"owner_id": source.id}, {"items": [1]}, [post(source.id, 1)],
                   [({"id": 9}, "unusable post: missing or invalid 'date'")], source.id)  # fmt: skip
        if source.id in self.errors:
            raise self.errors[source.id]
        yield Page("vk", "wall.getComments", {"owner_id": source.id}, {"items": [2]},
                   [post(source.id, 2, "comment"), post(source.id, 1)], [], source.id)  # fmt: skip


def test_landing_layout_posts_and_rerun_is_identical(tmp_path) -> None:
    landing = LandingArea(tmp_path)
    result = collect_window("vk", START, END, conn=CONN, sources=SOURCES, landing=landing, run_id="r1",
                            client=FakeClient())  # fmt: skip
    folder = tmp_path / "vk" / "20250301T000000Z_20250302T000000Z"
    assert result.landing_uri == str(folder) and result.posts_path == str(folder / "posts.jsonl")
    assert sorted(p.name for p in (folder / "-1").iterdir()) == ["00001.json", "00002.json"]
    page = json.loads((folder / "-1" / "00001.json").read_text())
    assert page == {"endpoint": "wall.get", "network": "vk", "params": {"owner_id": "-1"}, "raw": {"items": [1]},
                    "source_id": "-1"}  # fmt: skip
    rows = list(read_posts(result.posts_path))
    assert [r["external_id"] for r in rows] == ["-1_1", "-1_2", "-2_1", "-2_2", "-3_1", "-3_2"]
    assert result.counts["-1"] == {"pages": 2, "posts": 1, "comments": 1, "rejects": 1, "duplicates": 1}
    assert result.total_posts == 6 and result.complete and not result.skipped
    assert len(result.rejects) == 3 and result.rejects[0]["item_id"] == "9"
    assert len({r["record_key"] for r in result.rejects}) == 3  # keyed by source + raw item
    summary = result.summary()
    assert summary["rejects_by_reason"] == {"unusable post: missing or invalid 'date'": 3}
    assert summary["complete"] and summary["total_posts"] == 6 and json.dumps(summary)
    assert len((folder / "rejects.jsonl").read_text().splitlines()) == 3
    assert json.loads((folder / "collect.json").read_text())["complete"] is True
    assert not list(folder.rglob("*.tmp"))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "collect.json"}
    collect_window(
        "vk", START, END, conn=CONN, sources=SOURCES, landing=landing, run_id="r1", client=FakeClient()
    )
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "collect.json"}
    assert before == after


def test_stale_pages_of_a_longer_earlier_run_are_removed(tmp_path) -> None:
    folder = tmp_path / "vk" / "20250301T000000Z_20250302T000000Z" / "-1"
    folder.mkdir(parents=True)
    for n in (3, 4):
        (folder / f"0000{n}.json").write_text("{}")
    collect_window("vk", START, END, conn=CONN, sources=SOURCES[:1], landing=LandingArea(tmp_path), run_id="r",
                   client=FakeClient())  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["00001.json", "00002.json"]


def test_unavailable_source_is_skipped(tmp_path) -> None:
    client = FakeClient({"-2": SourceUnavailable("vk", 15, "Access denied: wall is disabled")})
    result = collect_window("vk", START, END, conn=CONN, sources=SOURCES, landing=LandingArea(tmp_path),
                            run_id="r", client=client)  # fmt: skip
    assert list(result.skipped) == ["-2"] and "wall is disabled" in result.skipped["-2"]
    assert result.complete and result.counts["-3"]["posts"] == 1
    assert [r["external_id"] for r in read_posts(result.posts_path)] == [
        "-1_1",
        "-1_2",
        "-2_1",
        "-3_1",
        "-3_2",
    ]


def test_daily_limit_stops_cleanly_and_lists_remaining_sources(tmp_path) -> None:
    client = FakeClient({"-2": DailyLimitReached("vk", 29, "Rate limit reached")})
    result = collect_window("vk", START, END, conn=CONN, sources=SOURCES, landing=LandingArea(tmp_path),
                            run_id="r", client=client)  # fmt: skip
    assert not result.complete and "29" in result.stopped
    assert result.remaining == ["-2", "-3"] == result.remaining_sources and "-3" not in result.counts
    assert json.loads((tmp_path / "vk" / LandingArea.window_name(START, END) / "collect.json").read_text())[
        "remaining"
    ] == ["-2", "-3"]


def test_auth_error_raises_and_leaves_no_posts_file(tmp_path) -> None:
    client = FakeClient({"-2": AuthError("vk", 5, "User authorization failed", conn_id="vk_default")})
    with pytest.raises(AuthError, match="vk_default"):
        collect_window("vk", START, END, conn=CONN, sources=SOURCES, landing=LandingArea(tmp_path), run_id="r",
                       client=client)  # fmt: skip
    folder = tmp_path / "vk" / LandingArea.window_name(START, END)
    assert not (folder / "posts.jsonl").exists() and not list(folder.rglob("*.tmp"))
    assert (folder / "-1" / "00001.json").exists()  # raw pages already landed stay for audit


def test_window_and_sources_are_checked(tmp_path) -> None:
    landing = LandingArea(tmp_path)
    with pytest.raises(ValueError, match="timezone"):
        collect_window(
            "vk", START.replace(tzinfo=None), END, conn=CONN, sources=[], landing=landing, run_id="r"
        )
    with pytest.raises(ValueError, match="empty window"):
        collect_window("vk", END, START, conn=CONN, sources=[], landing=landing, run_id="r")
    with pytest.raises(ValueError, match="not vk sources"):
        collect_window("vk", START, END, conn=CONN, sources=[Source("ok", "1", "x", "1")], landing=landing,
                       run_id="r")  # fmt: skip


def test_client_for_and_pseudonym_key(monkeypatch) -> None:
    monkeypatch.delenv("INCIDENTS_PSEUDONYM_KEY", raising=False)
    client = client_for("vk", CONN)
    assert isinstance(client, vk.Client) and client.base_url == "http://127.0.0.1:1/method"
    assert client.pseudonym_key == KEY and client.conn_id == "vk_default"
    bare = ConnectionInfo("vk_default", "vk", host="api.vk.com", schema="method", password="t",
                          extra={"max_retries": 2, "read_timeout": 5})  # fmt: skip
    with pytest.raises(ValueError, match="pseudonym"):
        client_for("vk", bare)
    monkeypatch.setenv("INCIDENTS_PSEUDONYM_KEY", "from-env")
    built = client_for("vk", bare)
    assert built.pseudonym_key == "from-env" and built.base_url == "https://api.vk.com/method"
    assert built.http.max_attempts == 2 and built.http.timeout == (10.0, 5.0)
    monkeypatch.delenv("INCIDENTS_PSEUDONYM_KEY")
    sandbox = ConnectionInfo("vk_default", "http", host="http://h", password="t", extra={"sandbox": True})
    assert pseudonym_key_for(sandbox) == "sandbox-pseudonym-key"
    with pytest.raises(ValueError, match="password"):
        client_for("vk", ConnectionInfo("vk_default", "http", host="http://h", extra={"pseudonym_key": "k"}))
    with pytest.raises(ValueError, match="unknown network"):
        client_for("myspace", CONN)


def test_collect_window_against_a_local_vk_server(server, tmp_path) -> None:
    wall = [{"id": 5 - i, "owner_id": -7, "from_id": 100 + i, "date": int((START + timedelta(hours=20 - 6 * i))
             .timestamp()), "text": f"Пост {i}", "comments": {"count": 0}} for i in range(5)]  # fmt: skip

    def handler(request):
        if request.params["owner_id"] == "-8":
            return 200, {}, {"error": {"error_code": 15, "error_msg": "Access denied: group is blocked"}}
        offset = int(request.params["offset"])
        return 200, {}, {"response": {"count": 5, "items": wall[offset : offset + 2]}}

    server.handler = handler
    conn = ConnectionInfo("vk_default", "http", host=server.url + "/method", password="tok",
                          extra={"pseudonym_key": KEY})  # fmt: skip
    sources = [Source("vk", "-7", "a", "33701"), Source("vk", "-8", "b", "33701")]
    result = collect_window(
        "vk", START, END, conn=conn, sources=sources, landing=LandingArea(tmp_path), run_id="r"
    )
    assert [r["external_id"] for r in read_posts(result.posts_path)] == ["-7_5", "-7_4", "-7_3", "-7_2"]
    assert result.counts["-7"]["pages"] == 3 and list(result.skipped) == ["-8"]
    assert result.skipped_sources == [
        {"source_id": "-8", "reason": "vk API error 15: Access denied: group is blocked"}
    ]
    manifest = json.loads(
        (tmp_path / "vk" / LandingArea.window_name(START, END) / "collect.json").read_text()
    )
    assert manifest["skipped_sources"] == result.skipped_sources
    assert all("access_token" not in r.params or r.params["access_token"] == "tok" for r in server.requests)
    landed = (tmp_path / "vk" / LandingArea.window_name(START, END) / "-7" / "00001.json").read_text()
    assert "tok" not in json.loads(landed)["params"].values()
