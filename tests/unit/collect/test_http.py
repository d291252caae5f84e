"""Retries, backoff, Retry-After / x-rate-limit-reset / Graph usage headers, redaction; no real sleeping."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from incidents.collect import graph, twitter, vk
from incidents.collect.errors import (
    DailyLimitReached,
    MalformedResponse,
    RateLimited,
    TransientError,
)
from incidents.collect.http import HttpClient, parse_retry_after, redact_params, redact_text, redact_url

from .conftest import FIXTURES


def make(server, **kwargs) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    client = HttpClient("vk", sleep=sleeps.append, rand=lambda: 0.5, **kwargs)
    return client, sleeps


def vk_answers(*bodies):
    answers = list(bodies)

    def handler(request):
        status, headers, body = answers.pop(0)
        return status, headers, body

    return handler


def test_transient_errors_retry_with_full_jitter_backoff(server) -> None:
    server.handler = vk_answers(
        (503, {}, b"<html>503</html>"),
        (200, {}, {"error": {"error_code": 6, "error_msg": "Too many requests per second"}}),
        (200, {}, b'{"response": {"items": [1, 2'),
        (200, {}, {"response": {"count": 0, "items": []}}),
    )
    client, sleeps = make(server, backoff_base=2.0, backoff_cap=5.0)
    result = client.call(
        "POST", server.url + "/method/wall.get", data={"owner_id": "-1"}, interpret=vk.interpret
    )
    assert result == {"count": 0, "items": []}
    assert sleeps == [0.5 * 2.0, 0.5 * 4.0, 0.5 * 5.0]  # rand * min(cap, base * 2**(n-1))
    assert client.retries == 3 and client.requests_made == 4


def test_gives_up_after_max_attempts(server) -> None:
    server.handler = lambda r: (502, {}, b"bad gateway")
    client, sleeps = make(server, max_attempts=3)
    with pytest.raises(TransientError, match="502"):
        client.call("GET", server.url + "/x", interpret=vk.interpret)
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_daily_limit_is_not_retried(server) -> None:
    server.handler = lambda r: (200, {}, {"error": {"error_code": 29, "error_msg": "Rate limit reached"}})
    client, sleeps = make(server)
    with pytest.raises(DailyLimitReached):
        client.call("GET", server.url + "/x", interpret=vk.interpret)
    assert len(server.requests) == 1 and sleeps == []


def test_retry_after_header_is_honoured(server) -> None:
    server.handler = vk_answers((429, {"Retry-After": "7"}, b""), (200, {}, {"response": {"items": []}}))
    client, sleeps = make(server)
    client.call("GET", server.url + "/x", interpret=vk.interpret)
    assert sleeps == [7.0]


def test_twitter_rate_limit_reset_is_honoured(server) -> None:
    now = 1_700_000_000.0
    server.handler = vk_answers(
        (
            429,
            {"x-rate-limit-reset": str(int(now) + 42), "x-rate-limit-remaining": "0"},
            {"title": "Too Many"},
        ),
        (200, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now) + 100)}, {"data": []}),
        (200, {}, {"data": []}),
    )
    sleeps: list[float] = []
    client = HttpClient(
        "twitter",
        sleep=sleeps.append,
        clock=lambda: now,
        throttle=lambda h: (
            (float(h["x-rate-limit-reset"]) - now) if h.get("x-rate-limit-remaining") == "0" else None
        ),
    )
    interpret = twitter.make_interpret(lambda: now)
    client.call("GET", server.url + "/2/tweets/search/recent", interpret=interpret)
    assert sleeps == [42.0]
    client.call("GET", server.url + "/2/tweets/search/recent", interpret=interpret)
    assert sleeps == [42.0, 100.0]  # remaining 0 on a success: wait for the reset first


def test_rate_limit_longer_than_the_cap_is_a_daily_limit(server) -> None:
    server.handler = lambda r: (429, {"Retry-After": "3600"}, b"")
    client, sleeps = make(server, max_retry_wait=600)
    with pytest.raises(DailyLimitReached) as info:
        client.call("GET", server.url + "/x", interpret=vk.interpret)
    assert "3600s" in info.value.message and sleeps == []
    assert isinstance(info.value.__cause__, RateLimited) and info.value.__cause__.retry_after == 3600


def test_twitter_usage_cap_is_a_daily_limit(server) -> None:
    body = b'{"title": "UsageCapExceeded", "type": "https://api.twitter.com/2/problems/usage-capped"}'
    server.handler = lambda r: (429, {"x-rate-limit-reset": "100"}, body)
    client, sleeps = make(server)
    with pytest.raises(DailyLimitReached):
        client.call("GET", server.url + "/2/tweets/search/all", interpret=twitter.make_interpret(lambda: 0))
    assert sleeps == []


def test_timeouts_are_transient_and_redacted(caplog) -> None:
    class Boom(requests.Session):
        def request(self, *args, **kwargs):
            raise requests.ConnectTimeout(
                "timed out: https://api.vk.com/method/wall.get?access_token=SECRET123&v=5"
            )

    sleeps: list[float] = []
    client = HttpClient("vk", session=Boom(), sleep=sleeps.append, rand=lambda: 1.0, max_attempts=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(TransientError) as info:
        client.call(
            "GET", "https://api.vk.com/method/wall.get?access_token=SECRET123", interpret=vk.interpret
        )
    assert "SECRET123" not in str(info.value) and "SECRET123" not in caplog.text
    assert sleeps == [1.0]


def test_graph_usage_headers() -> None:
    headers = json.loads((FIXTURES / "facebook" / "rate_limit_headers.json").read_text())
    assert graph.usage_percent(headers) == (91.0, None)
    assert graph.throttle(headers) is None
    busy = {"X-App-Usage": json.dumps({"call_count": 97, "total_cputime": 10, "total_time": 12})}
    assert graph.throttle(busy) == graph.USAGE_PAUSE_SECONDS
    buc = {
        "x-business-use-case-usage": json.dumps(
            {"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 3}]}
        )
    }
    assert graph.throttle(buc) == 180.0
    error = graph.error_for("facebook", {"code": 17, "message": "User request limit reached"}, buc)
    assert isinstance(error, RateLimited) and error.retry_after == 180.0
    assert type(graph.error_for("facebook", {"code": 613, "message": "Calls exceeded"})) is RateLimited


def test_malformed_json_is_typed() -> None:
    with pytest.raises(MalformedResponse):
        vk.interpret(200, {}, b'{"response": {"items": [')
    with pytest.raises(MalformedResponse):
        vk.interpret(200, {}, b"<html>oops</html>")


def test_redaction_helpers() -> None:
    assert redact_params({"access_token": "t", "sig": "s", "owner_id": 1}) == {"owner_id": 1}
    assert (
        redact_url("https://g.com/v19.0/1/feed?access_token=abc&limit=5")
        == "https://g.com/v19.0/1/feed?limit=5"
    )
    assert redact_text("Authorization: Bearer AAAAtoken x password=hunter2") == (
        "Authorization: Bearer *** x password=***"
    )
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
