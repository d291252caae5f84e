"""The sandbox server: paging without gaps or duplicates, faults on request, shapes of the real APIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from incidents.sources import load_sources
from incidents_dev.sandbox.faults import FaultConfig, RateLimit
from incidents_dev.sandbox.generator import WORLD_START, ground_truth
from incidents_dev.sandbox.server import SandboxServer, ok_signature

from . import crawlers

START = datetime(2025, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = END + timedelta(days=3)
FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "api"


def _subset() -> list:
    by_id = {(s.network, s.id): s for s in load_sources()}
    keys = [
        ("vk", "-31285017"),
        ("vk", "search:incidents"),
        ("ok", "51987203456712"),
        ("twitter", "3345120987"),
        ("facebook", "101928374650192"),
        ("instagram", "17841405678901234"),
    ]
    return [by_id[k] for k in keys]


def _crawl(server: SandboxServer) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for source in server.config.sources:
        if source.network == "vk" and source.query:
            got = crawlers.crawl_vk_search(server, source.query, START, END)
        elif source.network == "vk":
            got = crawlers.crawl_vk_wall(server, source.id, START, END)
        elif source.network == "ok":
            got = crawlers.crawl_ok(server, source.id, START, END)
        elif source.network == "twitter":
            got = crawlers.crawl_twitter(server, source.query, START, END)
        elif source.network == "facebook":
            got = crawlers.crawl_facebook(server, source.id, START, END)
        else:
            got = crawlers.crawl_instagram(server, source.id, START, END)
        out.setdefault(source.network, set()).update(got)
    return out


def _truth(server: SandboxServer) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record in ground_truth(START, END, config=server.config, now=server.now()):
        out.setdefault(record["network"], set()).add(record["external_id"])
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=5, now=NOW, sources=_subset(), rate_per_source_per_day=30) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _reset_faults(server: SandboxServer) -> None:
    requests.post(f"{server.base_url}/_admin/faults", json={"replace": True}, timeout=5)


def test_every_network_pages_to_exactly_the_ground_truth(server: SandboxServer) -> None:
    truth, got = _truth(server), _crawl(server)
    assert set(truth) == {"vk", "ok", "twitter", "facebook", "instagram"}
    for network, ids in truth.items():
        assert len(ids) > 20, network
        assert got[network] == ids, (
            f"{network}: missing {len(ids - got[network])}, extra {len(got[network] - ids)}"
        )


def test_with_20_percent_transient_and_page_faults_still_exactly_the_truth(server: SandboxServer) -> None:
    faults = FaultConfig.transient(0.2, seed=11, timeout_seconds=0.6).to_dict()
    assert requests.post(f"{server.base_url}/_admin/faults", json=faults, timeout=5).status_code == 200
    got = _crawl(server)
    stats = requests.get(f"{server.base_url}/_admin/stats", timeout=5).json()["faults_injected"]
    for kind in ("rate_limit", "server_error", "malformed_json", "truncated_page", "duplicate_items"):
        assert stats.get(kind, 0) > 0, kind
    assert got == _truth(server)


def _vk(server: SandboxServer, method: str, **params: object) -> requests.Response:
    params.setdefault("access_token", server.tokens["vk"])
    return requests.get(f"{server.url_for('vk')}/{method}", params=params, timeout=5)


def _force(server: SandboxServer, **settings: object) -> None:
    assert requests.post(f"{server.base_url}/_admin/faults", json=settings, timeout=5).status_code == 200


def test_forced_faults_are_produced(server: SandboxServer) -> None:
    _force(server, force={"rate_limit": 1})
    assert _vk(server, "wall.get", owner_id="-31285017").json()["error"]["error_code"] in (6, 9)
    _force(server, force={"server_error": 1})
    assert _vk(server, "wall.get", owner_id="-31285017").status_code == 503
    _force(server, force={"malformed_json": 1})
    with pytest.raises(ValueError):
        json.loads(_vk(server, "wall.get", owner_id="-31285017").text)
    _force(server, force={"timeout": 1}, timeout_seconds=0.5)
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(f"{server.url_for('vk')}/wall.get", params={"owner_id": "-31285017",
                     "access_token": server.tokens["vk"]}, timeout=0.2)  # fmt: skip
    full = _vk(server, "wall.get", owner_id="-31285017", count=20, offset=10).json()["response"]["items"]
    _force(server, force={"truncated_page": 1})
    short = _vk(server, "wall.get", owner_id="-31285017", count=20, offset=10).json()["response"]["items"]
    assert 0 < len(short) < len(full) and short == full[: len(short)]
    _force(server, force={"duplicate_items": 1})
    dup = _vk(server, "wall.get", owner_id="-31285017", count=20, offset=10).json()["response"]["items"]
    back = len(dup) - len(full)  # repeated items of the previous page: 2 up to the offset
    assert 2 <= back <= 10
    before = _vk(server, "wall.get", owner_id="-31285017", count=back, offset=10 - back).json()["response"]
    assert dup[:back] == before["items"] and dup[back:] == full


def _ok_call(server: SandboxServer, **params: str) -> dict:
    params = {**params, "application_key": server.ok_application_key}
    params["sig"] = ok_signature(params, server.tokens["ok"], server.ok_secret_key)
    params["access_token"] = server.tokens["ok"]
    return requests.get(server.url_for("ok"), params=params, timeout=5).json()


def _graph(server: SandboxServer, network: str, obj: str) -> requests.Response:
    return requests.get(
        f"{server.url_for(network)}/{obj}", params={"access_token": server.tokens[network]}, timeout=5
    )


def _twitter(server: SandboxServer) -> requests.Response:
    return requests.get(f"{server.url_for('twitter')}/2/tweets/search/all", params={"query": "from:incident_kirov"},
                        headers={"Authorization": f"Bearer {server.tokens['twitter']}"}, timeout=5)  # fmt: skip


def test_injected_rate_limits_are_retryable_throttling_only(server: SandboxServer) -> None:
    _force(server, force={"rate_limit": 9})
    vk_codes = {_vk(server, "wall.get", owner_id="-31285017").json()["error"]["error_code"] for _ in range(4)}
    assert vk_codes == {6, 9}
    assert _ok_call(server, method="mediatopic.getTopics", gid="51987203456712")["error_code"] == 8
    graph_codes = set()
    for _ in range(2):
        for network, obj in (("facebook", "101928374650192/feed"), ("instagram", "17841405678901234/media")):
            answer = _graph(server, network, obj)
            assert answer.status_code == 400 and "call_count" in json.loads(answer.headers["X-App-Usage"])
            graph_codes.add(answer.json()["error"]["code"])
    assert graph_codes == {4, 17, 32, 613}
    _force(server, force={"rate_limit": 1})
    tw = _twitter(server)
    assert tw.status_code == 429
    assert 0 < int(tw.headers["x-rate-limit-reset"]) - datetime.now(UTC).timestamp() <= 2.5


def test_daily_limit_answers_per_network(server: SandboxServer) -> None:
    _force(server, force={"daily_limit": 5})
    assert _vk(server, "wall.get", owner_id="-31285017").json()["error"]["error_code"] == 29
    assert _ok_call(server, method="mediatopic.getTopics", gid="51987203456712")["error_code"] == 11
    tw = _twitter(server)
    assert tw.status_code == 429 and tw.json()["type"].endswith("/usage-capped")
    assert int(tw.headers["x-rate-limit-reset"]) - datetime.now(UTC).timestamp() > 0
    for network, obj in (("facebook", "101928374650192/feed"), ("instagram", "17841405678901234/media")):
        answer = _graph(server, network, obj)
        usage = json.loads(answer.headers["X-Business-Use-Case-Usage"])
        assert answer.json()["error"]["code"] == 4
        assert next(iter(usage.values()))[0]["estimated_time_to_regain_access"] == 1440
    assert _vk(server, "wall.get", owner_id="-31285017").json()["response"]["items"]  # force used up
    _force(server, daily_limit=1.0)
    assert _vk(server, "wall.get", owner_id="-31285017").json()["error"]["error_code"] == 29
    for bad in ({"daily_limit": 1.5}, {"daily_limit": 0.6, "rate_limit": 0.6}):
        answer = requests.post(f"{server.base_url}/_admin/faults", json=bad, timeout=5)
        assert answer.status_code == 400, bad


def test_expired_tokens_per_network(server: SandboxServer) -> None:
    _force(server, expired_tokens=["vk", "ok", "twitter", "facebook", "instagram"])
    assert _vk(server, "wall.get", owner_id="-31285017").json()["error"]["error_code"] == 5
    params = {
        "method": "mediatopic.getTopics",
        "gid": "51987203456712",
        "application_key": server.ok_application_key,
    }
    params["sig"] = ok_signature(params, server.tokens["ok"], server.ok_secret_key)
    params["access_token"] = server.tokens["ok"]
    assert requests.get(server.url_for("ok"), params=params, timeout=5).json()["error_code"] == 102
    tw = requests.get(f"{server.url_for('twitter')}/2/tweets/search/all", params={"query": "from:incident_kirov"},
                      headers={"Authorization": f"Bearer {server.tokens['twitter']}"}, timeout=5)  # fmt: skip
    assert tw.status_code == 401 and tw.json()["title"] == "Unauthorized"
    for network, obj in (("facebook", "101928374650192/feed"), ("instagram", "17841405678901234/media")):
        r = requests.get(
            f"{server.url_for(network)}/{obj}", params={"access_token": server.tokens[network]}, timeout=5
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == 190


def test_deleted_comments_fault_hides_or_stubs_comments(server: SandboxServer) -> None:
    truth = [r for r in ground_truth(START, END, config=server.config, now=NOW) if r["network"] == "facebook"]
    post = next(r for r in truth if r["kind"] == "post" and sum(c["parent_external_id"] == r["external_id"]
                                                                 for c in truth) >= 3)  # fmt: skip
    url = f"{server.url_for('facebook')}/{post['external_id']}/comments"
    params = {"filter": "stream", "limit": 100, "access_token": server.tokens["facebook"]}
    full = requests.get(url, params=params, timeout=5).json()["data"]
    _force(server, deleted_comments=1.0)
    fewer = requests.get(url, params=params, timeout=5).json()["data"]
    assert len(fewer) < len(full) and {c["id"] for c in fewer} < {c["id"] for c in full}


def test_ok_signature_is_checked(server: SandboxServer) -> None:
    params = {"method": "mediatopic.getTopics", "gid": "51987203456712", "count": "5",
              "application_key": server.ok_application_key, "format": "json"}  # fmt: skip
    good = {**params, "sig": ok_signature(params, server.tokens["ok"], server.ok_secret_key),
            "access_token": server.tokens["ok"]}  # fmt: skip
    assert "media_topics" in requests.get(server.url_for("ok"), params=good, timeout=5).json()
    bad = {**good, "count": "6"}  # signed for 5
    answer = requests.get(server.url_for("ok"), params=bad, timeout=5).json()
    assert answer["error_code"] == 104 and answer["error_data"] is None


def test_rate_limit_per_token() -> None:
    with SandboxServer(seed=1, now=NOW, sources=_subset(), rate_limits={"twitter": RateLimit(3, 60)}) as srv:
        url = f"{srv.url_for('twitter')}/2/tweets/search/all"
        headers = {"Authorization": f"Bearer {srv.tokens['twitter']}"}
        answers = [
            requests.get(url, params={"query": "from:incident_kirov"}, headers=headers, timeout=5)
            for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[2].headers["x-rate-limit-remaining"] == "0"
        assert int(answers[3].headers["x-rate-limit-reset"]) > 0


def test_twitter_recent_serves_only_the_last_seven_days(server: SandboxServer) -> None:
    url = f"{server.url_for('twitter')}/2/tweets/search/recent"
    headers = {"Authorization": f"Bearer {server.tokens['twitter']}"}
    old = requests.get(url, params={"query": "from:incident_kirov", "start_time": "2025-02-01T00:00:00Z"},
                       headers=headers, timeout=5)  # fmt: skip
    assert old.status_code == 400 and old.json()["title"] == "Invalid Request"
    ok = requests.get(url, params={"query": "from:incident_kirov", "start_time": "2025-03-02T00:00:00Z"},
                      headers=headers, timeout=5)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["meta"]["result_count"] > 0


def test_admin_health_and_now(server: SandboxServer) -> None:
    assert requests.get(f"{server.base_url}/_admin/health", timeout=5).json()["status"] == "ok"
    moved = requests.post(
        f"{server.base_url}/_admin/now", json={"now": "2025-03-02T00:00:00Z"}, timeout=5
    ).json()
    try:
        assert moved["now"].startswith("2025-03-02T00:00:00")
        items = _vk(server, "wall.get", owner_id="-31285017", count=5).json()["response"]["items"]
        assert all(i["date"] <= int(datetime(2025, 3, 2, tzinfo=UTC).timestamp()) for i in items)
    finally:
        server.set_now(NOW)
    bad = requests.post(f"{server.base_url}/_admin/faults", json={"nonsense": 1}, timeout=5)
    assert bad.status_code == 400


def test_connection_env_points_at_the_server(server: SandboxServer) -> None:
    from incidents.config import base_url, parse_connection

    env = server.connection_env(pseudonym_key="k")
    assert set(env) == {
        f"AIRFLOW_CONN_{n.upper()}_DEFAULT" for n in ("vk", "ok", "twitter", "facebook", "instagram")
    }
    conn = parse_connection("ok_default", env["AIRFLOW_CONN_OK_DEFAULT"])
    assert base_url(conn) == server.url_for("ok") and conn.password == server.tokens["ok"]
    assert conn.extra["pseudonym_key"] == "k" and conn.extra["application_secret_key"] == server.ok_secret_key


def _fixture(path: str) -> dict:
    file = FIXTURES / path
    if not file.exists():
        pytest.skip(f"recorded fixtures not available at {FIXTURES}")
    return json.loads(file.read_text(encoding="utf-8"))


def test_responses_have_the_shapes_of_the_recordings(server: SandboxServer) -> None:
    wall = _vk(server, "wall.get", owner_id="-31285017", count=5).json()["response"]
    rec = _fixture("vk/wall_get_community_citizen_posts.json")
    assert set(rec) <= set(wall)
    assert {"id", "from_id", "owner_id", "date", "text", "post_type", "comments", "likes"} <= set(
        wall["items"][0]
    )
    post = next(i for i in wall["items"] if i["comments"]["count"] > 0) if any(
        i["comments"]["count"] for i in wall["items"]) else None  # fmt: skip
    if post:
        comments = _vk(server, "wall.getComments", owner_id="-31285017", post_id=post["id"]).json()
        assert set(_fixture("vk/wall_getComments_threads.json")["response"]) <= set(comments["response"])
    search = _vk(server, "newsfeed.search", q="Киров яма OR авария OR люк OR мусор OR отключили", count=5,
                 extended=1, start_time=int(START.timestamp())).json()  # fmt: skip
    assert set(_fixture("vk/newsfeed_search_next_from.json")["response"]) <= set(search["response"])
    error = _vk(server, "wall.get", owner_id="-31285017", access_token="nope").json()
    assert set(_fixture("vk/error_5_auth_failed.json")["error"]) <= set(error["error"])
    tw = requests.get(f"{server.url_for('twitter')}/2/tweets/search/all",
                      params={"query": "from:incident_kirov", "tweet.fields": "author_id,created_at",
                              "expansions": "author_id", "start_time": "2025-03-01T00:00:00Z"},
                      headers={"Authorization": f"Bearer {server.tokens['twitter']}"}, timeout=5).json()  # fmt: skip
    assert set(_fixture("twitter/search_conversation_with_expansions.json")) == set(tw)
    assert set(_fixture("twitter/search_with_fields.json")["meta"]) <= set(tw["meta"])
    fb = requests.get(f"{server.url_for('facebook')}/101928374650192/feed",
                      params={"limit": 3, "access_token": server.tokens["facebook"]}, timeout=5).json()  # fmt: skip
    assert set(_fixture("facebook/page_feed_rich_p1.json")) == set(fb)
    assert set(_fixture("facebook/page_posts_p2_last.json")["data"][0]) == set(fb["data"][0])
    ig = requests.get(f"{server.url_for('instagram')}/17841405678901234/media",
                      params={"limit": 2, "fields": "id,comments_count,like_count,media_type,media_url,permalink,"
                              "timestamp", "access_token": server.tokens["instagram"]}, timeout=5).json()  # fmt: skip
    rec_ig = _fixture("instagram/user_media_p1.json")
    assert set(rec_ig) == set(ig) and set(rec_ig["data"][0]) == set(ig["data"][0])
    params = {"method": "discussions.get", "discussionId": "0", "application_key": server.ok_application_key}
    params["sig"] = ok_signature(params, server.tokens["ok"], server.ok_secret_key)
    params["access_token"] = server.tokens["ok"]
    topics = {
        "method": "mediatopic.getTopics",
        "gid": "51987203456712",
        "application_key": server.ok_application_key,
    }
    topics["sig"] = ok_signature(topics, server.tokens["ok"], server.ok_secret_key)
    topics["access_token"] = server.tokens["ok"]
    topic_id = requests.get(server.url_for("ok"), params=topics, timeout=5).json()["media_topics"][0]["id"]
    params = {"method": "discussions.get", "discussionId": topic_id, "discussionType": "GROUP_TOPIC",
              "application_key": server.ok_application_key}  # fmt: skip
    params["sig"] = ok_signature(params, server.tokens["ok"], server.ok_secret_key)
    params["access_token"] = server.tokens["ok"]
    disc = requests.get(server.url_for("ok"), params=params, timeout=5).json()
    rec_ok = _fixture("ok/discussions_get_group_topic.json")
    assert set(rec_ok) <= set(disc) and set(rec_ok["discussion"]) <= set(disc["discussion"])


# --------------------------------------------------------------------------- history, permissions, gone sources


def test_walls_feeds_and_media_have_no_history_floor(server: SandboxServer) -> None:
    """A wall, a Page feed and a media list serve a window long past (here 300 days before the
    server's clock), exactly as the ground truth has it; the VK wall's ``count`` is every post
    since the wall's first one, and offset paging reaches it."""
    far_now = START + timedelta(days=300)
    server.set_now(far_now)
    try:
        truth = {(r["network"], r["external_id"]) for r in ground_truth(START, END, config=server.config,
                                                                         now=far_now) if r["kind"] == "post"}  # fmt: skip
        fb = crawlers.crawl_facebook(server, "101928374650192", START, END)
        ig = crawlers.crawl_instagram(server, "17841405678901234", START, END)
        ok = crawlers.crawl_ok(server, "51987203456712", START, END)
        for network, got in (("facebook", fb), ("instagram", ig), ("ok", ok)):
            want = {k[1] for k in truth if k[0] == network}
            assert want and want <= got, network
        wall = _vk(server, "wall.get", owner_id="-31285017", count=1).json()["response"]
        total = wall["count"]
        assert total > 300 * 30 * 0.5  # ~30 posts a day since long before START
        last = _vk(server, "wall.get", owner_id="-31285017", count=100, offset=total - 3).json()["response"]
        assert len(last["items"]) == 3
        assert min(i["date"] for i in last["items"]) >= int(WORLD_START.timestamp())
        assert _vk(server, "wall.get", owner_id="-31285017", offset=total).json()["response"]["items"] == []
        vk_wall = crawlers.crawl_vk_wall(server, "-31285017", START, END)
        want_vk = {k[1] for k in truth if k[0] == "vk" and k[1].startswith("-31285017_")}
        assert want_vk and want_vk <= vk_wall
    finally:
        server.set_now(NOW)


def test_the_world_starts_at_a_fixed_origin_not_a_window_behind_now(server: SandboxServer) -> None:
    before = ground_truth(WORLD_START - timedelta(days=2), WORLD_START, config=server.config)
    after = ground_truth(WORLD_START, WORLD_START + timedelta(days=2), config=server.config)
    assert before == [] and after


@pytest.mark.parametrize(
    ("network", "code"),
    [("vk", 7), ("vk", 15), ("vk", 30), ("ok", 10), ("twitter", 403), ("facebook", 10), ("facebook", 100),
     ("facebook", 200), ("instagram", 10), ("instagram", 100), ("instagram", 230)],
)  # fmt: skip
def test_a_token_lacking_a_permission_gets_the_real_permission_error(
    server: SandboxServer, network: str, code: int
) -> None:
    _force(server, permission_errors={network: code})
    if network == "vk":
        error = _vk(server, "wall.get", owner_id="-31285017").json()["error"]
        assert error["error_code"] == code and error["error_msg"]
        assert error["error_msg"] != "Access denied: this wall available only for community members"
    elif network == "ok":
        error = _ok_call(server, method="mediatopic.getTopics", gid="51987203456712")
        assert error["error_code"] == 10 and error["error_msg"].startswith("PERMISSION_DENIED")
    elif network == "twitter":
        answer = _twitter(server)
        assert answer.status_code == 403
        assert answer.json()["type"].endswith("/client-forbidden") and answer.json()["reason"]
    else:
        obj = "101928374650192/feed" if network == "facebook" else "17841405678901234/media"
        answer = _graph(server, network, obj)
        error = answer.json()["error"]
        assert answer.status_code in (400, 403) and error["code"] == code
        assert "error_subcode" not in error, "the permission variant has no subcode 33"
        if code == 100:
            assert "missing permission" in error["message"] and "requires the" in error["message"]
    # the other networks are unaffected
    other = "ok" if network != "ok" else "vk"
    if other == "vk":
        assert "response" in _vk(server, "wall.get", owner_id="-31285017").json()
    else:
        assert "media_topics" in _ok_call(server, method="mediatopic.getTopics", gid="51987203456712")


def test_permission_errors_are_validated(server: SandboxServer) -> None:
    for bad in ({"permission_errors": {"vk": 6}}, {"permission_errors": {"mastodon": 1}},
                {"gone_sources": {"twitter:3345120987": "deleted"}}, {"gone_sources": {"vk:-1": "sleeping"}},
                {"gone_sources": {"-31285017": "deleted"}}):  # fmt: skip
        assert requests.post(f"{server.base_url}/_admin/faults", json=bad, timeout=5).status_code == 400, bad


@pytest.mark.parametrize("state", ["deleted", "banned", "private"])
def test_a_gone_source_is_reported_as_each_api_reports_it(server: SandboxServer, state: str) -> None:
    truth = ground_truth(START, END, config=server.config, now=NOW)
    vk_post = next(r for r in truth if r["network"] == "vk" and r["source_id"] == "-31285017"
                   and r["kind"] == "post")  # fmt: skip
    ok_post = next(r for r in truth if r["network"] == "ok" and r["kind"] == "post")
    fb_post = next(r for r in truth if r["network"] == "facebook" and r["kind"] == "post")
    ig_post = next(r for r in truth if r["network"] == "instagram" and r["kind"] == "post")
    _force(server, gone_sources={"vk:-31285017": state, "ok:51987203456712": state,
                                 "facebook:101928374650192": state, "instagram:17841405678901234": state})  # fmt: skip
    vk_codes = {"deleted": 15, "banned": 15, "private": 15}
    wall = _vk(server, "wall.get", owner_id="-31285017").json()["error"]
    comments = _vk(server, "wall.getComments", owner_id="-31285017",
                   post_id=vk_post["native_id"]).json()["error"]  # fmt: skip
    assert wall["error_code"] == comments["error_code"] == vk_codes[state]
    assert wall["error_msg"].startswith("Access denied: ")
    ok_codes = {"deleted": 300, "banned": 160, "private": 160}
    assert (
        _ok_call(server, method="mediatopic.getTopics", gid="51987203456712")["error_code"] == ok_codes[state]
    )
    assert (
        _ok_call(server, method="discussions.getComments", discussionId=ok_post["native_id"])["error_code"]
        == ok_codes[state]
    )
    for network, objects in (
        ("facebook", ("101928374650192/feed", f"{fb_post['native_id']}/comments")),
        ("instagram", ("17841405678901234/media", f"{ig_post['native_id']}/comments")),
    ):
        for obj in objects:
            answer = _graph(server, network, obj)
            error = answer.json()["error"]
            assert answer.status_code == 400 and "not exist" in error["message"], obj
            if state == "deleted":
                assert error["code"] == 803 and "error_subcode" not in error, obj
            else:
                assert (error["code"], error["error_subcode"]) == (100, 33), obj
    # the other sources of the network are still served
    assert (
        "response"
        in _vk(server, "newsfeed.search", q="Киров яма OR авария OR люк OR мусор OR отключили").json()
    )


def test_a_gone_vk_user_wall_answers_18_or_30(server: SandboxServer) -> None:
    _force(server, gone_sources={"vk:12345": "deleted"})
    assert _vk(server, "wall.get", owner_id="12345").json()["error"]["error_code"] == 18
    _force(server, gone_sources={"vk:12345": "private"})
    assert _vk(server, "wall.get", owner_id="12345").json()["error"]["error_code"] == 30
