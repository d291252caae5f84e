"""Clients against a scripted server: a page of duplicates never ends the paging, paging that stops
advancing fails the window, recorded permission errors fail naming the connection and the
permission, gone sources are skipped and recorded, a window with every source skipped fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incidents.collect import facebook, instagram, ok, twitter, vk
from incidents.collect.errors import (
    AllSourcesSkipped,
    AuthError,
    ManualActionRequired,
    PermissionMissing,
    WindowIncomplete,
)
from incidents.collect.paging import STALL_RETRIES
from incidents.collect.pipeline import LandingArea, collect_window
from incidents.config import ConnectionInfo
from incidents.sources import Source

from .conftest import KEY, load

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 2, tzinfo=UTC)


def ts(hours: float) -> int:
    return int((START + timedelta(hours=hours)).timestamp())


def iso(hours: float) -> str:
    return (START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def no_sleep(_seconds: float) -> None:
    pass


def ids(pages, endpoint: str | None = None) -> list[str]:
    return [p.external_id for page in pages if endpoint in (None, page.endpoint) for p in page.posts]


# --------------------------------------------------------------------------- paging: VK


def _wall(n: int) -> list[dict]:
    return [{"id": 100 - i, "owner_id": -7, "from_id": 5, "date": ts(23 - i), "text": f"пост {i}",
             "comments": {"count": 0}} for i in range(n)]  # fmt: skip


def test_vk_wall_page_of_duplicates_then_short_page_loses_nothing(server) -> None:
    """Seed 18's loss: a page that only repeats posts, then a short page, used to end the wall."""
    wall, calls = _wall(7), {}

    def handler(request):
        offset = int(request.params["offset"])
        calls[offset] = calls.get(offset, 0) + 1
        if offset == 3 and calls[offset] == 1:
            page = wall[1:3]  # only posts already seen (the list moved, or the API repeated them)
        elif offset == 3:
            page = wall[3:4]  # a short page
        else:
            page = wall[offset : offset + 3]
        return 200, {}, {"response": {"count": len(wall), "items": page}}

    server.handler = handler
    client = vk.Client(server.url, "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("vk", "-7", "g", "33701"), START, END))
    assert ids(pages) == [f"-7_{100 - i}" for i in range(7)]
    assert [int(r.params["offset"]) for r in server.requests] == [0, 3, 3, 4]


def test_vk_wall_whose_offset_cannot_advance_fails_as_incomplete(server) -> None:
    wall = _wall(7)
    server.handler = lambda r: (
        200,
        {},
        {"response": {"count": 7, "items": wall[:3] if r.params["offset"] == "0" else wall[1:3]}},
    )
    client = vk.Client(server.url, "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    with pytest.raises(WindowIncomplete, match="offset 3 of 7"):
        list(client.iter_pages(Source("vk", "-7", "g", "33701"), START, END))
    assert len(server.requests) == 2 + STALL_RETRIES


def test_vk_comments_page_of_duplicates_is_not_the_end(server) -> None:
    comments = [{"id": i, "from_id": 10 + i, "date": ts(1 + i / 10), "text": f"к{i}", "post_id": 100,
                 "owner_id": -7, "parents_stack": [], "thread": {"count": 0, "items": []}} for i in range(1, 6)]  # fmt: skip
    served: list[int] = []

    def handler(request):
        if request.path.endswith("wall.get"):
            post = dict(_wall(1)[0], comments={"count": 5})
            return 200, {}, {"response": {"count": 1, "items": [post]}}
        offset = int(request.params["offset"])
        served.append(offset)
        page = comments[0:2] if offset == 2 and served.count(2) == 1 else comments[offset : offset + 2]
        return 200, {}, {"response": {"count": 5, "current_level_count": 5, "items": page}}

    server.handler = handler
    client = vk.Client(server.url, "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("vk", "-7", "g", "33701"), START, END))
    assert ids(pages, "wall.getComments") == [f"-7_100_{i}" for i in range(1, 6)]


def test_vk_search_empty_page_with_next_from_goes_on(server) -> None:
    answers = [
        {"items": [_wall(1)[0]], "next_from": "a", "count": 1},
        {"items": [], "next_from": "b", "count": 0},
        {"items": [dict(_wall(2)[1])], "count": 1},
    ]
    server.handler = lambda r: (200, {}, {"response": answers.pop(0)})
    client = vk.Client(server.url, "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("vk", "s", "q", "33701", query="яма"), START, END))
    assert ids(pages) == ["-7_100", "-7_99"]
    assert [r.params.get("start_from") for r in server.requests] == [None, "a", "b"]


# --------------------------------------------------------------------------- paging: Graph


def _fb_comment(n: int) -> dict:
    return {
        "id": f"2_{n}",
        "message": f"коммент {n}",
        "created_time": iso(2 + n / 10),
        "from": {"id": str(n)},
    }


def test_facebook_comments_page_of_duplicates_then_short_page_loses_nothing(server) -> None:
    """Seed 85's loss: 3 of 6 comments of a post were lost behind a page of duplicates."""
    comments = [_fb_comment(n) for n in range(1, 7)]

    def handler(request):
        p = request.params
        if request.path == "/55/feed":
            post = {"id": "55_2", "message": "Яма", "created_time": iso(1),
                    "comments": {"data": [], "summary": {"total_count": 6}}}  # fmt: skip
            return 200, {}, {"data": [post]}
        after = p.get("after")
        if after is None:
            page, nxt = comments[0:3], "A"
        elif after == "A":
            page, nxt = comments[1:3], "B"  # only repeats
        else:
            page, nxt = comments[3:6], None
        body = {"data": page, "paging": {"cursors": {"after": nxt or ""}}}
        if nxt:
            body["paging"]["next"] = f"{server.url}/55_2/comments?access_token=x&after={nxt}"
        return 200, {}, body

    server.handler = handler
    client = facebook.Client(server.url, "t", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("facebook", "55", "p", "33701"), START, END))
    assert ids(pages) == ["55_2"] + [f"2_{n}" for n in range(1, 7)]


def test_instagram_media_page_of_duplicates_is_not_the_end(server) -> None:
    media = [
        {"id": f"m{n}", "caption": f"c{n}", "timestamp": iso(20 - n), "comments_count": 0} for n in range(5)
    ]

    def handler(request):
        after = request.params.get("after")
        pages = {None: (media[0:2], "A"), "A": (media[0:2], "B"), "B": (media[2:5], None)}
        page, nxt = pages[after]
        body = {"data": page, "paging": {"cursors": {"after": nxt or ""}}}
        if nxt:
            body["paging"]["next"] = f"{server.url}/17/media?after={nxt}"
        return 200, {}, body

    server.handler = handler
    client = instagram.Client(server.url, "t", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    assert ids(client.iter_pages(Source("instagram", "17", "a", "33701"), START, END)) == [
        f"m{n}" for n in range(5)
    ]


def test_graph_cursor_that_repeats_fails_the_window(server) -> None:
    def handler(request):
        data = [{"id": "55_1", "message": "x", "created_time": iso(3)}]
        return 200, {}, {"data": data, "paging": {"next": f"{server.url}/55/feed?after=SAME"}}

    server.handler = handler
    client = facebook.Client(server.url, "t", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    with pytest.raises(WindowIncomplete, match="55/feed"):
        list(client.iter_pages(Source("facebook", "55", "p", "33701"), START, END))
    assert len(server.requests) == 2 + STALL_RETRIES


# --------------------------------------------------------------------------- paging: OK, Twitter/X


def _ok_client(url: str) -> ok.Client:
    return ok.Client(url, "tok", extra={"application_key": "K", "application_secret_key": "S"},
                     pseudonym_key=KEY, sleep=no_sleep)  # fmt: skip


def test_ok_topics_page_of_duplicates_is_not_the_end_and_fields_are_requested(server) -> None:
    topics = [{"id": f"t{n}", "created_ms": ts(20 - n) * 1000, "media": [{"type": "text", "text": f"тема {n}"}],
               "author_ref": "user:1", "discussion_summary": {"comments_count": 0}} for n in range(4)]  # fmt: skip

    def handler(request):
        anchor = request.params.get("anchor")
        pages = {
            None: (topics[0:2], "A", True),
            "A": (topics[0:2], "B", True),
            "B": (topics[2:4], "C", False),
        }
        page, nxt, more = pages[anchor]
        return 200, {}, {"media_topics": page, "anchor": nxt, "has_more": more}

    server.handler = handler
    pages = list(_ok_client(server.url).iter_pages(Source("ok", "9", "g", "33701"), START, END))
    assert ids(pages) == [f"9_t{n}" for n in range(4)]
    fields = server.requests[0].params["fields"].split(",")
    assert {"media_topic.media", "media_topic.created_ms", "media_topic.author_ref"} <= set(fields)


def test_ok_has_more_without_an_anchor_fails_the_window(server) -> None:
    topic = {"id": "t1", "created_ms": ts(5) * 1000, "media": [], "author_ref": "user:1"}
    server.handler = lambda r: (200, {}, {"media_topics": [topic], "has_more": True})
    with pytest.raises(WindowIncomplete, match="no next cursor"):
        list(_ok_client(server.url).iter_pages(Source("ok", "9", "g", "33701"), START, END))


def test_twitter_repeated_next_token_fails_instead_of_stopping_silently(server) -> None:
    now = END + timedelta(days=1)
    tweet = {"id": "20", "text": "x", "created_at": "2025-03-01T10:00:00.000Z", "author_id": "u"}
    server.handler = lambda r: (200, {}, {"data": [tweet], "meta": {"next_token": "n1", "result_count": 1}})
    client = twitter.Client(
        server.url, "b", extra={}, pseudonym_key=KEY, sleep=no_sleep, clock=lambda: now.timestamp()
    )
    with pytest.raises(WindowIncomplete):
        list(client.iter_pages(Source("twitter", "1", "x", "33701"), START, END))


# --------------------------------------------------------------------------- permissions, gone sources


def _conn(server, network: str, **extra) -> ConnectionInfo:
    return ConnectionInfo(f"{network}_prod", "http", host=server.url, password="SECRET-TOKEN",
                          extra={"pseudonym_key": KEY, "max_retries": 1, **extra})  # fmt: skip


def _collect(server, tmp_path, network: str, sources: list[str], **extra):
    return collect_window(
        network, START, END, conn=_conn(server, network, **extra),
        sources=[Source(network, s, s, "33701") for s in sources], landing=LandingArea(tmp_path), run_id="r",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "permission"),
    [
        ("error_100_object_not_exist.json", "pages_read_engagement"),
        ("error_100_ppca_required.json", "Page Public Content Access"),
    ],
)
def test_graph_permission_errors_fail_naming_connection_and_permission(
    server, tmp_path, fixture, permission
) -> None:
    server.handler = lambda r: (400, {}, load("facebook", fixture))
    with pytest.raises(PermissionMissing) as info:
        _collect(server, tmp_path, "facebook", ["55", "56"])
    message = str(info.value)
    assert "facebook_prod" in message and permission in message and info.value.permission
    assert "SECRET-TOKEN" not in message
    assert not (LandingArea(tmp_path).window_dir("facebook", START, END) / "posts.jsonl").exists()


def test_graph_missing_permissions_for_every_object_is_never_a_gone_source(server, tmp_path) -> None:
    """The answer a token without permission gets for every page (code 100, subcode 33)."""
    error = {"error": {"message": "Unsupported get request. Object with ID '55' does not exist, cannot be "
                       "loaded due to missing permissions, or does not support this operation.",
                       "type": "GraphMethodException", "code": 100, "error_subcode": 33}}  # fmt: skip
    server.handler = lambda r: (400, {}, error)
    with pytest.raises(PermissionMissing, match="instagram_prod.*instagram_basic"):
        _collect(server, tmp_path, "instagram", ["17"])


@pytest.mark.parametrize(
    ("fixture", "error", "label"),
    [
        ("error_7_permission_denied.json", PermissionMissing, "scope 'wall'"),
        ("error_15_access_denied.json", PermissionMissing, "access to this wall"),
        ("error_5_auth_failed.json", AuthError, "User authorization failed"),
        ("error_14_captcha.json", ManualActionRequired, "Captcha needed"),
    ],
)
def test_vk_recorded_errors_fail_the_window(server, tmp_path, fixture, error, label) -> None:
    server.handler = lambda r: (200, {}, load("vk", fixture))
    with pytest.raises(error, match=label) as info:
        _collect(server, tmp_path, "vk", ["-7"])
    assert type(info.value) is error
    if issubclass(error, AuthError):
        assert "vk_prod" in str(info.value) and "SECRET-TOKEN" not in str(info.value)


def test_ok_recorded_session_expired_fails_naming_the_connection(server, tmp_path) -> None:
    server.handler = lambda r: (200, {}, load("ok", "error_102_session_expired.json"))
    with pytest.raises(AuthError, match="ok_prod") as info:
        _collect(server, tmp_path, "ok", ["9"], application_key="K", application_secret_key="S")
    assert "PARAM_SESSION_EXPIRED" in str(info.value) and not isinstance(info.value, PermissionMissing)
    server.handler = lambda r: (
        200,
        {},
        {"error_code": 10, "error_msg": "PERMISSION_DENIED : no GROUP_CONTENT"},
    )
    with pytest.raises(PermissionMissing, match="ok_prod.*GROUP_CONTENT"):
        _collect(server, tmp_path, "ok", ["9"], application_key="K", application_secret_key="S")


def test_gone_source_is_skipped_and_recorded_others_collected(server, tmp_path) -> None:
    def handler(request):
        if request.path == "/56/feed":
            return 400, {}, {"error": {"message": "(#803) Some of the aliases you requested do not exist: 56",
                                       "type": "OAuthException", "code": 803}}  # fmt: skip
        return 200, {}, {"data": [{"id": "55_1", "message": "Яма", "created_time": iso(3),
                                   "comments": {"summary": {"total_count": 0}}}]}  # fmt: skip

    server.handler = handler
    result = _collect(server, tmp_path, "facebook", ["55", "56"])
    assert result.complete and result.total_posts == 1
    assert result.skipped_sources == [{"source_id": "56", "reason": result.skipped["56"]}]
    assert "803" in result.skipped["56"]
    manifest = json.loads(
        (LandingArea(tmp_path).window_dir("facebook", START, END) / "collect.json").read_text()
    )
    assert manifest["skipped_sources"] == result.skipped_sources


def test_window_with_every_source_skipped_fails(server, tmp_path) -> None:
    def handler(request):
        if request.params["owner_id"] == "-7":
            return 200, {}, {"error": {"error_code": 18, "error_msg": "User was deleted or banned"}}
        return 200, {}, {"error": {"error_code": 15, "error_msg": "Access denied: group is blocked"}}

    server.handler = handler
    with pytest.raises(AllSourcesSkipped) as info:
        _collect(server, tmp_path, "vk", ["-7", "-8"])
    assert [s["source_id"] for s in info.value.skipped] == ["-7", "-8"]
    assert "deleted or banned" in str(info.value) and "group is blocked" in str(info.value)
    assert not (LandingArea(tmp_path).window_dir("vk", START, END) / "posts.jsonl").exists()
