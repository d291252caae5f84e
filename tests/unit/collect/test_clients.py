"""The five clients against a scripted local server: endpoints, params, paging and its stop rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from incidents.collect import facebook, instagram, ok, twitter, vk
from incidents.collect.errors import AuthError, WindowNotAvailable
from incidents.schema import pseudonymize
from incidents.sources import Source

from .conftest import KEY

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 2, tzinfo=UTC)


def ts(hours: float) -> int:
    """Epoch seconds ``hours`` after the window start."""
    return int((START + timedelta(hours=hours)).timestamp())


def no_sleep(_seconds: float) -> None:
    pass


# --------------------------------------------------------------------------- VK


def vk_post(pid: int, hours: float, comments: int = 0, pinned: bool = False) -> dict:
    item = {"id": pid, "owner_id": -7, "from_id": -7, "date": ts(hours), "text": f"пост {pid} [id5|Иван] #яма",
            "comments": {"count": comments}}  # fmt: skip
    if pinned:
        item["is_pinned"] = 1
    return item


def test_vk_wall_paging_stops_at_window_start_and_reads_comments(server) -> None:
    wall = [vk_post(100, -200, pinned=True)] + [
        vk_post(99 - i, 23 - i * 2, comments=i % 2) for i in range(20)
    ]

    def handler(request):
        p = request.params
        assert p["access_token"] == "tok" and p["v"] == "5.199"
        method = request.path.rsplit("/", 1)[-1]
        if method == "wall.get":
            offset, count = int(p["offset"]), int(p["count"])
            size = 5 if offset else 6  # small pages to exercise paging
            return (
                200,
                {},
                {"response": {"count": len(wall), "items": wall[offset : offset + min(size, count)]}},
            )
        if method == "wall.getComments":
            post_id = int(p["post_id"])
            if p.get("comment_id"):
                items = [{"id": 3, "from_id": 12, "date": ts(30), "text": "ответ в ветке", "post_id": post_id,
                          "owner_id": -7, "parents_stack": [1]}]  # fmt: skip
                return 200, {}, {"response": {"count": 1, "current_level_count": 1, "items": items}}
            items = [
                {"id": 1, "from_id": 11, "date": ts(25), "text": "коммент", "post_id": post_id, "owner_id": -7,
                 "thread": {"count": 2, "items": [{"id": 2, "from_id": 12, "date": ts(26), "text": "ответ",
                            "post_id": post_id, "owner_id": -7, "reply_to_comment": 1, "parents_stack": [1]}]}},
                {"id": 4, "deleted": True, "date": ts(27), "parents_stack": [], "thread": {"count": 0, "items": []}},
            ]  # fmt: skip
            return 200, {}, {"response": {"count": 4, "current_level_count": 2, "items": items}}
        raise AssertionError(method)

    server.handler = handler
    client = vk.Client(server.url + "/method", "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("vk", "-7", "Группа", "33701"), START, END))
    walls = [r for r in server.requests if r.path.endswith("wall.get")]
    # posts at 23h, 21h, ... 1h, -1h: the 3rd page (offset 11) reaches -1h < start: stop
    assert [r.params["offset"] for r in walls] == ["0", "6", "11"]
    posts = [p for page in pages if page.endpoint == "wall.get" for p in page.posts]
    assert [p.external_id for p in posts] == [f"-7_{99 - i}" for i in range(12)]
    assert all(START <= p.published_at < END for p in posts)
    assert posts[0].text == "пост 99 Иван яма"
    assert "access_token" not in pages[0].params and pages[0].params["owner_id"] == "-7"
    commented = {int(r.params["post_id"]) for r in server.requests if r.path.endswith("wall.getComments")}
    assert commented == {98, 96, 94, 92, 90, 88}  # only posts of the window with comments
    comments = [p for page in pages if page.endpoint == "wall.getComments" for p in page.posts]
    first = [c for c in comments if c.external_id.startswith("-7_98_")]
    assert [(c.external_id, c.parent_external_id) for c in first] == [
        ("-7_98_1", "-7_98"),
        ("-7_98_2", "-7_98_1"),
        ("-7_98_3", "-7_98_1"),
    ]
    assert first[0].author_pseudonym == pseudonymize("vk", "11", KEY)
    rejects = [r for page in pages for r in page.rejects]
    assert len(rejects) == 6 and {reason for _, reason in rejects} == {"deleted comment"}


def test_vk_search_uses_next_from_and_inclusive_end(server) -> None:
    answers = [
        {"items": [vk_post(1, 20)], "next_from": "abc", "count": 1},
        {"items": [vk_post(1, 20), vk_post(2, 10)], "count": 2},
    ]
    server.handler = lambda r: (200, {}, {"response": answers.pop(0)})
    client = vk.Client(server.url, "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    source = Source("vk", "search-1", "Поиск", "33701", query="Киров яма")
    pages = list(client.iter_pages(source, START, END))
    assert [r.params.get("start_from") for r in server.requests[:2]] == [None, "abc"]
    first = server.requests[0].params
    assert (
        first["q"] == "Киров яма"
        and first["start_time"] == str(ts(0))
        and first["end_time"] == str(ts(24) - 1)
    )
    assert [p.external_id for page in pages for p in page.posts] == ["-7_1", "-7_2"]  # duplicate dropped


def test_vk_auth_error_names_connection_not_token(server) -> None:
    server.handler = lambda r: (
        200,
        {},
        {"error": {"error_code": 5, "error_msg": "User authorization failed"}},
    )
    client = vk.Client(
        server.url, "SECRET-TOKEN", extra={}, pseudonym_key=KEY, conn_id="vk_default", sleep=no_sleep
    )
    with pytest.raises(AuthError) as info:
        list(client.iter_pages(Source("vk", "-7", "x", "33701"), START, END))
    assert "vk_default" in str(info.value) and "SECRET-TOKEN" not in str(info.value)


# --------------------------------------------------------------------------- OK


def test_ok_signature_matches_a_hand_computed_example() -> None:
    params = {"application_key": "CBAABC", "method": "group.getInfo", "format": "json", "uids": "42",
              "access_token": "tkn", "sig": "ignored"}  # fmt: skip
    # md5("tkn" + "secret") = session secret; pairs sorted by key, no separators
    session_secret = hashlib.md5(b"tknsecret").hexdigest()
    assert session_secret == "e289000f0502cccf1e39a2e97c5bf3ef"
    expected = hashlib.md5(
        ("application_key=CBAABCformat=jsonmethod=group.getInfouids=42" + session_secret).encode()
    ).hexdigest()
    assert ok.signature(params, "tkn", "secret") == expected == "af0638da550e544bdfa439164e4cfaa9"


def test_ok_topics_and_comments_with_anchor_paging(server) -> None:
    topics = [
        {"id": "t3", "created_ms": ts(20) * 1000, "media": [{"type": "text", "text": "{group:9}Группа{group}: свет"}],
         "author_ref": "user:501", "discussion_summary": {"comments_count": 2}},
        {"id": "t2", "created_ms": ts(2) * 1000, "media": [{"type": "text", "text": "вода"}],
         "author_ref": "group:9", "discussion_summary": {"comments_count": 0}},
        {"id": "t1", "created_ms": ts(-5) * 1000, "media": [], "author_ref": "user:502"},
    ]  # fmt: skip

    def handler(request):
        p = request.params
        expected = ok.signature(p, "tok", "sekret")
        assert p["sig"] == expected and p["application_key"] == "APPKEY" and p["format"] == "json"
        if p["method"] == "mediatopic.getTopics":
            start = int(p.get("anchor") or 0)
            return (
                200,
                {},
                {"media_topics": topics[start : start + 2], "anchor": str(start + 2), "has_more": True},
            )
        if p["method"] == "discussions.getComments":
            assert p["discussionId"] == "t3" and p["discussionType"] == "GROUP_TOPIC"
            if not p.get("anchor"):
                comment = {"id": "c1", "date": "2025-03-01 23:30:00", "author_id": "601", "text": "да"}
                return 200, {}, {"comments": [comment], "anchor": "A1", "has_more": True}
            reply = {"id": "c2", "date_ms": ts(23) * 1000, "author_id": "602", "text": "нет",
                     "reply_to_comment_id": "c1"}  # fmt: skip
            deleted = {"id": "c3", "date_ms": ts(23) * 1000, "type": "DELETED", "text": ""}
            return 200, {}, {"comments": [reply, deleted], "anchor": "A2", "has_more": False}
        raise AssertionError(p["method"])

    server.handler = handler
    client = ok.Client(server.url + "/fb.do", "tok", extra={"application_key": "APPKEY",
                       "application_secret_key": "sekret"}, pseudonym_key=KEY, sleep=no_sleep)  # fmt: skip
    pages = list(client.iter_pages(Source("ok", "9", "Группа", "33701"), START, END))
    posts = [p for page in pages for p in page.posts]
    assert [(p.external_id, p.parent_external_id) for p in posts] == [
        ("9_t3", None),
        ("9_t2", None),
        ("9_t3_c1", "9_t3"),
        ("9_t3_c2", "9_t3_c1"),
    ]
    assert posts[0].text == "Группа: свет" and posts[0].url == "https://ok.ru/group/9/topic/t3"
    assert posts[2].published_at == datetime(2025, 3, 1, 20, 30, tzinfo=UTC)  # Moscow 23:30
    assert [r for _, r in pages[-1].rejects] == ["deleted comment"]
    assert all("access_token" not in page.params and "sig" not in page.params for page in pages)


def test_ok_needs_application_keys() -> None:
    with pytest.raises(ValueError, match="application_key"):
        ok.Client("http://x", "tok", extra={}, pseudonym_key=KEY, sleep=no_sleep)


# --------------------------------------------------------------------------- Twitter/X


def test_twitter_search_params_replies_and_next_token(server) -> None:
    now = END + timedelta(days=1)
    answers = [
        {"data": [{"id": "20", "text": "@a Яма на Ленина https://t.co/x", "created_at": "2025-03-01T10:00:00.000Z",
                   "author_id": "u1", "referenced_tweets": [{"type": "replied_to", "id": "10"}],
                   "geo": {"coordinates": {"type": "Point", "coordinates": [49.66, 58.6]}}}],
         "meta": {"next_token": "n1", "result_count": 1}},
        {"data": [{"id": "10", "text": "Пост", "created_at": "2025-03-01T09:00:00.000Z", "author_id": "u2"}],
         "meta": {"result_count": 1}},
    ]  # fmt: skip
    server.handler = lambda r: (200, {"x-rate-limit-remaining": "100"}, answers.pop(0))
    client = twitter.Client(
        server.url, "BEARER", extra={}, pseudonym_key=KEY, sleep=no_sleep, clock=lambda: now.timestamp()
    )
    pages = list(client.iter_pages(Source("twitter", "1", "x", "33701", query="from:kirov"), START, END))
    first = server.requests[0]
    assert first.path == "/2/tweets/search/recent" and first.headers["Authorization"] == "Bearer BEARER"
    assert (
        first.params["start_time"] == "2025-03-01T00:00:00Z"
        and first.params["end_time"] == "2025-03-02T00:00:00Z"
    )
    assert first.params["max_results"] == "100" and first.params["query"] == "from:kirov"
    assert "conversation_id" in first.params["tweet.fields"] and first.params["user.fields"] == "username"
    assert server.requests[1].params["next_token"] == "n1"
    reply, post = [p for page in pages for p in page.posts]
    assert (reply.kind, reply.parent_external_id, reply.text) == ("comment", "10", "Яма на Ленина")
    assert reply.geo == {"lat": 58.6, "lon": 49.66}
    assert (post.kind, post.parent_external_id) == ("post", None)


def test_twitter_old_window_needs_full_archive(server) -> None:
    now = END + timedelta(days=30)
    client = twitter.Client(
        server.url, "b", extra={}, pseudonym_key=KEY, sleep=no_sleep, clock=lambda: now.timestamp()
    )
    with pytest.raises(WindowNotAvailable, match="full_archive"):
        list(client.iter_pages(Source("twitter", "1", "x", "33701"), START, END))
    assert server.requests == []
    server.handler = lambda r: (200, {}, {"meta": {"result_count": 0}})
    archive = twitter.Client(server.url, "b", extra={"full_archive": True}, pseudonym_key=KEY,
                             clock=lambda: now.timestamp())  # fmt: skip
    assert [p.posts for p in archive.iter_pages(Source("twitter", "1", "x", "33701"), START, END)] == [[]]
    assert server.requests[0].path == "/2/tweets/search/all"
    assert server.requests[0].params["query"] == "from:1"


def test_twitter_unfinished_window_is_clamped(server) -> None:
    now = START + timedelta(hours=5)
    server.handler = lambda r: (200, {}, {"meta": {"result_count": 0}})
    client = twitter.Client(
        server.url, "b", extra={}, pseudonym_key=KEY, sleep=no_sleep, clock=lambda: now.timestamp()
    )
    list(client.iter_pages(Source("twitter", "1", "x", "33701"), START, END))
    assert server.requests[0].params["end_time"] == "2025-03-01T04:59:50Z"


def test_twitter_401_and_403(server) -> None:
    from incidents.collect.errors import SourceUnavailable

    server.handler = lambda r: (401, {}, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401})
    client = twitter.Client(
        server.url, "b", extra={"full_archive": True}, pseudonym_key=KEY, conn_id="twitter_x", sleep=no_sleep
    )
    with pytest.raises(AuthError, match="twitter_x"):
        list(client.iter_pages(Source("twitter", "1", "x", "33701"), START, END))
    server.handler = lambda r: (403, {}, {"title": "Forbidden", "detail": "protected account", "type": "x"})
    with pytest.raises(SourceUnavailable, match="protected"):
        list(client.iter_pages(Source("twitter", "1", "x", "33701"), START, END))


# --------------------------------------------------------------------------- Facebook


def test_facebook_feed_cursor_paging_and_comments(server) -> None:
    def handler(request):
        p = request.params
        assert p["access_token"] == "fbtok"
        if request.path == "/v19.0/55/feed":
            assert p["since"] == str(ts(0)) and p["until"] == str(ts(24)) and p["limit"] == "100"
            assert "comments.summary(true).limit(0)" in p["fields"]
            if "after" not in p:
                data = [{"id": "55_2", "message": "Нет света на ул. Ленина", "created_time": "2025-03-01T20:00:00+0000",
                         "permalink_url": "https://www.facebook.com/55/posts/2/",
                         "place": {"location": {"latitude": 58.6, "longitude": 49.6}},
                         "comments": {"data": [], "summary": {"total_count": 1}}}]  # fmt: skip
                nxt = f"{server.url}/v19.0/55/feed?access_token=LEAK&fields=x&after=CUR1"
                return 200, {}, {"data": data, "paging": {"cursors": {"after": "CUR1"}, "next": nxt}}
            assert p["after"] == "CUR1" and p["access_token"] == "fbtok"
            data = [{"id": "55_1", "created_time": "2025-02-28T20:00:00+0000", "from": {"id": "77"}}]
            return 200, {}, {"data": data, "paging": {"cursors": {"before": "B"}}}
        if request.path == "/v19.0/55_2/comments":
            assert p["filter"] == "stream"
            data = [
                {"id": "2_10", "message": "Когда дадут?", "created_time": "2025-03-02T01:00:00+0000",
                 "from": {"id": "900"}},
                {"id": "2_11", "message": "Завтра", "created_time": "2025-03-02T02:00:00+0000",
                 "parent": {"id": "2_10"}},
            ]  # fmt: skip
            return 200, {}, {"data": data}
        raise AssertionError(request.path)

    server.handler = handler
    client = facebook.Client(server.url + "/v19.0", "fbtok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("facebook", "55", "Стр", "33701"), START, END))
    posts = [p for page in pages for p in page.posts]
    assert [(p.external_id, p.parent_external_id) for p in posts] == [
        ("55_2", None),
        ("2_10", "55_2"),
        ("2_11", "2_10"),
    ]
    assert posts[0].geo == {"lat": 58.6, "lon": 49.6} and posts[0].author_pseudonym == pseudonymize(
        "facebook", "55", KEY
    )
    assert posts[1].author_pseudonym == pseudonymize("facebook", "900", KEY)
    assert pages[1].params["after"] == "CUR1" and "access_token" not in pages[1].params


# --------------------------------------------------------------------------- Instagram


def test_instagram_media_comments_and_reply_paging(server) -> None:
    def handler(request):
        p = request.params
        if request.path == "/v19.0/17841/media":
            data = [
                {"id": "m2", "caption": "Мусор #Киров", "timestamp": "2025-03-01T12:00:00+0000",
                 "permalink": "https://www.instagram.com/p/AAA/", "username": "city", "comments_count": 1},
                {"id": "m1", "caption": "old", "timestamp": "2025-02-27T12:00:00+0000", "comments_count": 5},
            ]  # fmt: skip
            return 200, {}, {"data": data, "paging": {"cursors": {"after": "X"}, "next": "http://x/?after=X"}}
        if request.path == "/v19.0/m2/comments":
            assert "replies{id,text,timestamp,username}" in p["fields"]
            data = [{"id": "c1", "text": "@city когда уберут?", "timestamp": "2025-03-01T13:00:00+0000",
                     "username": "anna", "replies": {"data": [{"id": "r1", "text": "скоро",
                     "timestamp": "2025-03-01T14:00:00+0000", "username": "city"}],
                     "paging": {"next": "http://x/c1/replies?after=R"}}}]  # fmt: skip
            return 200, {}, {"data": data}
        if request.path == "/v19.0/c1/replies":
            data = [{"id": "r1", "text": "скоро", "timestamp": "2025-03-01T14:00:00+0000", "username": "city"},
                    {"id": "r2", "text": "ждём", "timestamp": "2025-03-01T15:00:00+0000"}]  # fmt: skip
            return 200, {}, {"data": data}
        raise AssertionError(request.path)

    server.handler = handler
    client = instagram.Client(server.url + "/v19.0", "igtok", extra={}, pseudonym_key=KEY, sleep=no_sleep)
    pages = list(client.iter_pages(Source("instagram", "17841", "Город", "33701"), START, END))
    assert [r.path for r in server.requests] == [
        "/v19.0/17841/media",
        "/v19.0/m2/comments",
        "/v19.0/c1/replies",
    ]
    posts = [(p.external_id, p.parent_external_id, p.text) for page in pages for p in page.posts]
    assert posts == [
        ("m2", None, "Мусор Киров"),
        ("c1", "m2", "city когда уберут?"),
        ("r1", "c1", "скоро"),
        ("r1", "c1", "скоро"),
        ("r2", "c1", "ждём"),
    ]
    comment = pages[1].posts[0]
    assert comment.url == "https://www.instagram.com/p/AAA/"
    assert comment.author_pseudonym == pseudonymize("instagram", "anna", KEY)
