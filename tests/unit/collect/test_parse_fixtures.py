"""Every recorded API answer parses (or maps to its typed error), with concrete values checked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from incidents.collect.errors import ApiError, AuthError, ManualActionRequired, PermissionMissing
from incidents.collect.parse import parse_fixture
from incidents.schema import pseudonymize

from .conftest import FIXTURES, KEY

ERRORS = {
    "vk/error_5_auth_failed.json": AuthError,
    "vk/error_15_access_denied.json": PermissionMissing,
    "vk/error_7_permission_denied.json": PermissionMissing,
    "vk/execute_errors.json": PermissionMissing,
    "vk/error_14_captcha.json": ManualActionRequired,
    "vk/error_100_param.json": ApiError,
    "ok/error_102_session_expired.json": AuthError,
    # "Object does not exist, cannot be loaded due to missing permission … requires the
    # 'pages_read_engagement' permission" and "PPCA requires an app token": both a missing
    # permission, never a gone source
    "facebook/error_100_object_not_exist.json": PermissionMissing,
    "facebook/error_100_ppca_required.json": PermissionMissing,
    "twitter/error_invalid_request_400.json": ApiError,
}
ALL_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json"))


def parse(name: str, **kwargs):
    return parse_fixture(FIXTURES / name, source_id="src", pseudonym_key=KEY, **kwargs)


def test_fixtures_are_present() -> None:
    assert len(ALL_FILES) == 64
    assert {Path(f).parts[0] for f in ALL_FILES} == {"vk", "ok", "twitter", "facebook", "instagram"}


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_fixture_parses_or_maps_to_a_typed_error(name: str) -> None:
    if name in ERRORS:
        with pytest.raises(ERRORS[name]) as info:
            parse(name)
        assert type(info.value) is ERRORS[name]
        assert info.value.network == Path(name).parts[0]
        return
    page = parse(name)
    for post in page.posts:
        assert post.published_at.tzinfo is UTC or post.published_at.utcoffset().total_seconds() == 0
        assert post.external_id and post.network == Path(name).parts[0]
        assert post.kind in ("post", "comment")
        assert (post.parent_external_id is not None) == (post.kind == "comment")
        assert len(post.author_pseudonym) == 32 or post.author_pseudonym == "anonymous"
        assert "http" not in post.text and "  " not in post.text
    for _raw, reason in page.rejects:
        assert reason


# --------------------------------------------------------------------------- VK


def test_vk_wall_citizen_posts() -> None:
    page = parse("vk/wall_get_community_citizen_posts.json")
    assert len(page.posts) == 10 and not page.rejects
    pinned = page.posts[0]
    assert pinned.external_id == "-109125816_519471"
    assert pinned.raw["is_pinned"] == 1
    assert pinned.url == "https://vk.com/wall-109125816_519471"
    assert pinned.published_at == datetime.fromtimestamp(1592509821, UTC)
    second = page.posts[1]
    assert second.external_id == "-109125816_520290"
    assert second.author_pseudonym == pseudonymize("vk", "203608876", KEY)
    assert second.text.startswith("Внимание, Санкт-Петербург, раздача с Софийской базы")
    assert "instagram.com" not in pinned.text  # links removed


def test_vk_repost_geo_and_hashtags() -> None:
    post = parse("vk/wall_get_geo_poll.json").posts[0]
    assert post.external_id == "1563369_1164"
    assert post.text == "Мы оформляем храм... пасха весна праздник цветы храм"
    assert post.geo == {"lat": 47.282735079717, "lon": 39.697793677442}


def test_vk_newsfeed_entities_unescaped() -> None:
    page = parse("vk/newsfeed_search_next_from_geo.json")
    post = page.posts[0]
    assert page.endpoint == "newsfeed.search"
    assert post.external_id == "-168119259_5225"
    assert post.text == "✈️ Вильнюс (Литва) → Прага (Чехия)"
    assert post.geo == {"lat": 50.075544478827, "lon": 14.437798116462}
    assert post.published_at == datetime(2020, 2, 2, 15, 38, 28, tzinfo=UTC)


def test_vk_comments_threads_deleted_rejected() -> None:
    page = parse("vk/wall_getComments_threads.json")
    assert [p.external_id for p in page.posts] == ["-69459624_482121_482124", "-69459624_482121_482418"]
    assert all(p.parent_external_id == "-69459624_482121" and p.kind == "comment" for p in page.posts)
    assert page.posts[0].author_pseudonym == pseudonymize("vk", "287979664", KEY)
    assert page.rejects == [(page.raw["items"][1], "deleted comment")]


def test_vk_comments_need_post_context() -> None:
    assert [r for _, r in parse("vk/wall_getComments_likes_attachments.json").rejects] == [
        "comment without its post (owner_id/post_id unknown)"
    ] * 2
    page = parse("vk/wall_getComments_likes_attachments.json", params={"owner_id": "-5", "post_id": "77"})
    assert [p.external_id for p in page.posts] == ["-5_77_3809", "-5_77_3810"]
    assert page.posts[0].text == "Поздравляю вас!!! Растите здоровыми, счастливыми и красивыми!"


def test_vk_reply_markup_and_parent() -> None:
    page = parse("vk/wall_getComment_extended_reply.json", params={"owner_id": "-1", "post_id": "10"})
    comment = page.posts[0]
    assert comment.parent_external_id == "-1_10_73673"
    assert comment.text.startswith("Дмитрий, я не хочу даже сейчас спорить")


# --------------------------------------------------------------------------- OK


def test_ok_discussion_topic() -> None:
    post = parse("ok/discussions_get_group_topic.json").posts[0]
    assert post.external_id == "47241470410797_62190641299501"
    # the topic's text is its title; "message" is OK's generated "Topic in the … group" line
    assert post.text == (
        "Кока-Кола один из спонсоров Олимпиады в Сочи. Хотелось бы видеть фото- и видео- "
        "репортажи с Эстафеты олимпийского огня !"
    )
    assert post.published_at == datetime(2013, 10, 12, 10, 29, 26, tzinfo=UTC)  # Moscow was UTC+4 then
    assert post.url == "https://ok.ru/group/47241470410797/topic/62190641299501"
    assert post.author_pseudonym == pseudonymize("ok", "163873406852", KEY)


def test_ok_comment_item_with_topic_context() -> None:
    page = parse("ok/discussions_comment_item.json", params={"discussionId": "62190641299501", "gid": "4724"})
    comment = page.posts[0]
    cid = "MTM5NzIwNjM4MjQ3MTotMTU5NDE6MTM5NzIwNjM4MjQ3MTo2MjUwMzkyOTY2MjMyMDox"
    assert comment.external_id == f"4724_62190641299501_{cid}"
    parent = "MTM5NzIwNjMzNjI2MTotODE0MzoxMzk3MjA2MzM2MjYxOjYyNTAzOTI5NjYyMzIwOjE="
    assert comment.parent_external_id == f"4724_62190641299501_{parent}"
    assert comment.published_at == datetime(2014, 4, 11, 8, 53, 2, tzinfo=UTC)  # 12:53:02 at UTC+4
    assert comment.text == "наверное и я так буду делать!"


# --------------------------------------------------------------------------- Twitter/X


def test_twitter_conversation_replies() -> None:
    page = parse("twitter/search_conversation_with_expansions.json")
    by_id = {p.external_id: p for p in page.posts}
    assert len(by_id) == 4 and all(p.kind == "comment" for p in page.posts)
    reply = by_id["1276035977375477760"]
    assert reply.parent_external_id == "1275653067283759104"
    assert reply.author_pseudonym == pseudonymize("twitter", "63046977", KEY)
    assert reply.text.startswith("Ooo, thanks error message")
    assert reply.url == "https://x.com/i/web/status/1276035977375477760"
    assert by_id["1275882613572583424"].parent_external_id == "1273733248749690880"


def test_twitter_default_fields_use_snowflake_time() -> None:
    page = parse("twitter/search_recent_default_fields.http.json")
    assert page.endpoint == "/2/tweets/search/recent" and page.params == {"query": "Tweepy"}
    first = page.posts[0]
    assert first.external_id == "1578516068309794817"
    # the text says 22:42:12.637 (the client clock); the id encodes the server's 22:42:12.752
    assert first.published_at.replace(microsecond=0) == datetime(2022, 10, 7, 22, 42, 12, tzinfo=UTC)
    assert first.author_pseudonym == "anonymous"


def test_twitter_retweet_and_counts() -> None:
    post = parse("twitter/tweet_retweet.json").posts[0]
    assert post.kind == "post" and post.text.startswith("I built an Alexa Skill")
    assert parse("twitter/counts_recent.http.json").posts == []


def test_twitter_problem_details_400() -> None:
    with pytest.raises(ApiError, match="invalid"):
        parse("twitter/error_invalid_request_400.json", status=400)


# --------------------------------------------------------------------------- Facebook


def test_facebook_comments_without_ids_and_replies() -> None:
    page = parse("facebook/post_comments_p2_last.json", endpoint="19292868552_10158407654328553/comments")
    reply = next(p for p in page.posts if "reply_comment_id" in p.url)
    assert reply.external_id == "10158407654328553_10158413660043553"
    assert reply.parent_external_id == "10158407654328553_10158412899928553"
    top = page.posts[0]
    assert top.external_id == "10158407654328553_10158412899928553"
    assert top.parent_external_id == "19292868552_10158407654328553"
    assert top.author_pseudonym == "anonymous"


def test_facebook_feed_optional_message_and_page_author() -> None:
    page = parse("facebook/group_feed_p1.json")
    silent = next(p for p in page.posts if p.external_id == "2260975870792283_3038566336366562")
    assert silent.text == ""
    assert silent.author_pseudonym == pseudonymize("facebook", "2260975870792283", KEY)
    assert silent.published_at == datetime(2021, 7, 1, 23, 58, 9, tzinfo=UTC)


def test_facebook_comment_with_author() -> None:
    comment = parse("facebook/comment_full_fields.json").posts[0]
    assert comment.kind == "comment"
    assert comment.external_id == "2954961744718970_2966313500250461"
    assert comment.author_pseudonym == pseudonymize("facebook", "2711636948859886", KEY)
    assert comment.text == "My Nice Car"


# --------------------------------------------------------------------------- Instagram


def test_instagram_media_pages() -> None:
    last = parse("instagram/user_media_p2_last.json")
    assert [p.external_id for p in last.posts] == ["17896129349106152", "17893085207160254"]
    assert last.posts[0].text == "ALBUM" and last.posts[0].url == "https://www.instagram.com/p/CRyZpmrjYC4/"
    from incidents.collect.graph import next_params

    assert next_params(last.raw) is None  # only "previous": the last page
    assert next_params(parse("instagram/user_media_p1.json").raw)["after"] == "after"


def test_instagram_comments_with_nested_replies() -> None:
    page = parse("instagram/comment_full_model.json")
    comment, reply = page.posts
    assert comment.parent_external_id == "17846368219941692"  # media{id}
    assert comment.author_pseudonym == pseudonymize("instagram", "17841406338772941", KEY)
    assert reply.external_id == "17845747489952795" and reply.parent_external_id == "17892250648466172"
    assert reply.text == "ikroskun Nice"


def test_instagram_comments_and_replies_edges() -> None:
    page = parse("instagram/media_comments_p1.json", endpoint="17846368219941692/comments")
    assert [p.parent_external_id for p in page.posts] == ["17846368219941692"] * 2
    replies = parse("instagram/comment_replies.json", endpoint="17892250648466172/replies")
    assert replies.posts[0].parent_external_id == "17892250648466172"
    assert replies.posts[0].published_at == datetime(2020, 8, 7, 3, 30, 6, tzinfo=UTC)


def test_instagram_media_without_timestamp_is_rejected() -> None:
    page = parse("instagram/hashtag_top_media_p1.json")
    assert page.posts == [] and len(page.rejects) == 5
    assert all("timestamp" in reason for _, reason in page.rejects)


def test_ok_topic_text_from_title_and_text_blocks() -> None:
    from incidents.collect.ok import parse_response, topic_text

    media = [
        {"type": "text", "text": "Во дворе дома 5 по ул. Ленина открыт люк."},
        {"type": "photo", "list": [{"id": "1"}]},
        {"type": "text", "text": "Дети ходят рядом!"},
    ]
    # a title cut from the first block is not doubled; other blocks follow, one per line
    assert topic_text("Во дворе дома 5 по ул. Ленина…", media) == (
        "Во дворе дома 5 по ул. Ленина открыт люк.\nДети ходят рядом!"
    )
    assert topic_text("Открытый люк", media[:1]) == "Открытый люк\nВо дворе дома 5 по ул. Ленина открыт люк."
    assert topic_text(None, []) == "" and topic_text("Только заголовок", None) == "Только заголовок"
    topic = {
        "id": "7",
        "created_ms": 1_700_000_000_000,
        "title": "Люк",
        "media": media,
        "author_ref": "user:3",
    }
    posts, rejects = parse_response("mediatopic.getTopics", {"gid": "9"}, {"media_topics": [topic]},
                                    source_id="9", key=KEY)  # fmt: skip
    # clean_text collapses the line breaks
    assert not rejects and posts[0].text == "Люк Во дворе дома 5 по ул. Ленина открыт люк. Дети ходят рядом!"


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2011-03-26 12:00:00", datetime(2011, 3, 26, 9, 0, tzinfo=UTC)),  # UTC+3 (winter time)
        ("2011-03-28 12:00:00", datetime(2011, 3, 28, 8, 0, tzinfo=UTC)),  # UTC+4 from 27 March 2011
        ("2014-10-25 12:00:00", datetime(2014, 10, 25, 8, 0, tzinfo=UTC)),  # still UTC+4
        ("2014-10-27 12:00:00", datetime(2014, 10, 27, 9, 0, tzinfo=UTC)),  # UTC+3 from 26 October 2014
        ("2025-03-01 23:30:00", datetime(2025, 3, 1, 20, 30, tzinfo=UTC)),
    ],
)
def test_ok_local_times_follow_moscow_history(local: str, expected: datetime) -> None:
    from incidents.collect.ok import parse_ok_time

    assert parse_ok_time(local) == expected
