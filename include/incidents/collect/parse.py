"""One entry point from an HTTP answer to a :class:`Page` or a typed error, for every network.

The clients and the recorded fixtures go through the same code: :func:`parse_exchange` takes
``(status, headers, body)`` of an answer to ``endpoint`` called with ``params``, applies the
network's error mapping (``interpret``) and its parser. :func:`parse_fixture` reads a recorded
file (a bare body, or a ``.http.json`` wrapper with ``request``/``status``/``headers``/``body``),
infers the endpoint from the request URI or the body's shape, and calls :func:`parse_exchange`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from incidents.collect import facebook, instagram, ok, twitter, vk
from incidents.collect.base import Page, in_window
from incidents.collect.http import redact_params

INTERPRETERS: dict[str, Callable[[int, Mapping[str, str], Any], Any]] = {
    "vk": vk.interpret,
    "ok": ok.interpret,
    "twitter": twitter.interpret,
    "facebook": facebook.interpret,
    "instagram": instagram.interpret,
}
PARSERS: dict[str, Callable[..., tuple[list[Any], list[Any]]]] = {
    "vk": vk.parse_response,
    "ok": ok.parse_response,
    "twitter": twitter.parse_response,
    "facebook": facebook.parse_response,
    "instagram": instagram.parse_response,
}


def parse_exchange(
    network: str,
    endpoint: str,
    params: Mapping[str, Any],
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | dict[str, Any] | list[Any],
    *,
    source_id: str,
    pseudonym_key: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Page:
    """Decode and parse one answer; raises the typed error of an error answer."""
    if network not in INTERPRETERS:
        raise ValueError(f"unknown network {network!r}")
    decoded = INTERPRETERS[network](status, headers, body)
    posts, rejects = PARSERS[network](endpoint, params, decoded, source_id=source_id, key=pseudonym_key)
    if start is not None and end is not None:
        posts = [p for p in posts if in_window(p.published_at, start, end)]
    return Page(
        network=network,
        endpoint=endpoint,
        params=redact_params(params),
        raw=decoded,
        posts=posts,
        rejects=rejects,
        source_id=source_id,
    )


def guess_endpoint(network: str, body: Any) -> str:
    """The endpoint a recorded body most likely answers (when no request URI was recorded)."""
    if network == "vk":
        response = body.get("response") if isinstance(body, dict) else None
        if isinstance(response, list):
            return "wall.getById"
        items = (response or {}).get("items") if isinstance(response, dict) else None
        if not items:
            return "wall.get"
        first = items[0]
        if isinstance(response, dict) and "next_from" in response:
            return "newsfeed.search"
        if "screen_name" in first and "date" not in first:
            return "groups.search"
        if "post_type" in first or "copy_history" in first:
            return "wall.get"
        return "wall.getComments"
    if network == "ok":
        if isinstance(body, dict) and "discussion" in body:
            return "discussions.get"
        if isinstance(body, dict) and "media_topics" in body:
            return "mediatopic.getTopics"
        return "discussions.getComments"
    if network == "twitter":
        return twitter.RECENT
    return ""


def parse_fixture(
    path: str | Path,
    network: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    status: int | None = None,
    source_id: str = "fixture",
    pseudonym_key: str = "fixture-pseudonym-key",
) -> Page:
    """Parse a recorded answer file (network defaults to the file's folder name)."""
    path = Path(path)
    network = network or path.parent.name
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    headers: Mapping[str, str] = {}
    query: dict[str, Any] = {}
    if isinstance(data, dict) and {"status", "body"} <= data.keys():
        headers = data.get("headers") or {}
        status = status or int(data["status"])
        uri = (data.get("request") or {}).get("uri")
        body = data["body"]
        if uri:
            parts = urlsplit(uri)
            query = dict(parse_qsl(parts.query))
            endpoint = endpoint or parts.path
    else:
        body = data
    if network == "vk" and isinstance(body, dict) and "items" in body and "response" not in body:
        body = {"response": body}  # stored without its envelope
    return parse_exchange(
        network,
        endpoint if endpoint is not None else guess_endpoint(network, body),
        {**query, **(params or {})},
        status or 200,
        headers,
        body,
        source_id=source_id,
        pseudonym_key=pseudonym_key,
    )
