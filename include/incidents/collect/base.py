"""What all network clients share: the :class:`Page`, the client base class, text cleaning,
time parsing and JSON decoding.

External ids (``NormalizedPost.external_id``), one scheme per network, stable and globally
unique within the network (they match :func:`incidents_dev.sandbox.generator.external_id`):

* VK: ``<owner_id>_<post_id>`` for posts, ``<owner_id>_<post_id>_<comment_id>`` for comments.
* OK: ``<group_id>_<topic_id>`` for topics, ``<group_id>_<topic_id>_<comment_id>`` for comments.
* Twitter/X: the tweet id. Facebook: the Graph id (``<page>_<post>``, ``<post>_<comment>``).
  Instagram: the Graph media/comment id.

``parent_external_id`` of a comment is its post, or for a reply inside a thread the comment it
replies to (VK ``reply_to_comment``/thread root, OK ``reply_to_comment_id``, Graph ``parent``,
Instagram nested replies, Twitter/X the ``replied_to`` tweet).
"""

from __future__ import annotations

import abc
import html
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import requests

from incidents.collect.errors import AuthError, MalformedResponse
from incidents.collect.http import HttpClient, Interpret, Throttle, redact_params
from incidents.schema import NormalizedPost, pseudonymize
from incidents.sources import Source

log = logging.getLogger(__name__)

Reject = tuple[Any, str]


@dataclass
class Page:
    """One API answer: the raw body for the landing area and what was parsed from it."""

    network: str
    endpoint: str
    params: dict[str, Any]
    """Request parameters without secrets."""
    raw: dict[str, Any] | list[Any] | str
    posts: list[NormalizedPost] = field(default_factory=list)
    """Parsed items inside the window (posts, and comments of the window's posts)."""
    rejects: list[Reject] = field(default_factory=list)
    """Items that could not be used, with the reason (they go to quarantine)."""
    source_id: str = ""

    def landing_record(self) -> dict[str, Any]:
        """The JSON written to the landing area for this page."""
        return {
            "network": self.network,
            "source_id": self.source_id,
            "endpoint": self.endpoint,
            "params": self.params,
            "raw": self.raw,
        }


# --------------------------------------------------------------------------- text

_VK_MENTION = re.compile(r"\[(?:id|club|public|event)\d+(?:_\d+)?(?::bp-?\d+_\d+)?\|([^\]]*)\]")
_VK_LINK_MENTION = re.compile(r"\[(?:https?://)?[^\]|]+\|([^\]]*)\]")
_OK_MARKUP = re.compile(
    r"\{(?:group|user|link|hashtag|topic):[^}]*\}(.*?)\{(?:group|user|link|hashtag|topic)\}"
)
_OK_STRAY = re.compile(r"\{/?(?:group|user|link|hashtag|topic)(?::[^}]*)?\}")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_HTML_BREAK = re.compile(r"(?i)<br\s*/?>")
_HTML_TAG = re.compile(r"</?[a-z][^>]*>")
_HASHTAG = re.compile(r"(?<![\w&])#(\w[\w-]*)")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w+)+\s*")
_MENTION = re.compile(r"(?<![\w.])@(\w+)")
_RETWEET_PREFIX = re.compile(r"^RT @\w+:\s*")
_SPACE = re.compile(r"\s+")


def clean_text(text: str | None, network: str = "") -> str:
    """Plain text for analysis: markup, links and entities removed, whitespace collapsed.

    HTML entities are unescaped, ``<br>`` becomes a space; VK ``[id123|Name]`` → ``Name``;
    OK ``{group:1}Name{group}`` → ``Name``; ``#hashtag`` → ``hashtag``; links are removed;
    Twitter/X: the ``RT @user:`` prefix and leading reply ``@mentions`` are dropped, other
    ``@mentions`` keep the name without ``@``.
    """
    if not text:
        return ""
    value = html.unescape(text)
    value = _HTML_BREAK.sub(" ", value)
    value = _HTML_TAG.sub(" ", value)
    if network == "vk":
        value = _VK_MENTION.sub(r"\1", value)
        value = _VK_LINK_MENTION.sub(r"\1", value)
    if network == "ok":
        value = _OK_MARKUP.sub(r"\1", value)
        value = _OK_STRAY.sub("", value)
    if network == "twitter":
        value = _RETWEET_PREFIX.sub("", value)
        value = _LEADING_MENTIONS.sub("", value)
    value = _URL.sub(" ", value)
    value = _HASHTAG.sub(r"\1", value)
    if network in ("twitter", "instagram", "facebook"):
        value = _MENTION.sub(r"\1", value)
    return _SPACE.sub(" ", value).strip()


# --------------------------------------------------------------------------- time

MOSCOW = ZoneInfo("Europe/Moscow")
"""Moscow time with its history (UTC+3, UTC+4 from March 2011 to October 2014): OK's local times."""


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def from_epoch(value: Any) -> datetime:
    """UTC datetime from epoch seconds (int, float or numeric string)."""
    return datetime.fromtimestamp(float(value), UTC)


def parse_iso(value: str) -> datetime:
    """UTC datetime from ISO 8601 / RFC 3339, including Graph's ``+0000`` offsets and ``Z``."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.search(r"([+-])(\d{2})(\d{2})$", text)
    if match and ":" not in text[-6:]:
        text = text[: match.start()] + f"{match.group(1)}{match.group(2)}:{match.group(3)}"
    parsed = datetime.fromisoformat(text)
    return utc(parsed)


def rfc3339(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (Twitter/X ``start_time``/``end_time``)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_window(published: datetime, start: datetime, end: datetime) -> bool:
    return start <= published < end


# --------------------------------------------------------------------------- JSON


def decode_json(network: str, body: bytes | str | dict[str, Any] | list[Any]) -> Any:
    """Decode a JSON body (a UTF-8 BOM is tolerated); MalformedResponse when it is not JSON."""
    if isinstance(body, dict | list):
        return body
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedResponse(network, "malformed", f"body is not UTF-8: {exc}") from exc
    text = body.lstrip("\ufeff")
    if not text.strip():
        raise MalformedResponse(network, "malformed", "empty body")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text[:80].replace("\n", " ")
        raise MalformedResponse(
            network, "malformed", f"body is not valid JSON ({exc.msg} at {exc.pos}; starts {snippet!r})"
        ) from exc


# --------------------------------------------------------------------------- client base


class BaseClient(abc.ABC):
    """Common constructor and helpers; subclasses implement :meth:`iter_pages`."""

    network: ClassVar[str] = ""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        extra: dict[str, Any] | None = None,
        pseudonym_key: str,
        session: requests.Session | None = None,
        conn_id: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if not base_url:
            raise ValueError(f"{self.network}: the API base URL is empty")
        if not pseudonym_key:
            raise ValueError(f"{self.network}: a pseudonym key is required to pseudonymise authors")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.extra = dict(extra or {})
        self.pseudonym_key = pseudonym_key
        self.conn_id = conn_id or f"{self.network}_default"
        options: dict[str, Any] = {}
        for name, value in (("sleep", sleep), ("clock", clock), ("rand", rand)):
            if value is not None:
                options[name] = value
        self.http = HttpClient(
            self.network,
            session=session,
            connect_timeout=float(connect_timeout or self.extra.get("connect_timeout", 10)),
            read_timeout=float(read_timeout or self.extra.get("read_timeout", 60)),
            max_attempts=int(
                max_attempts or self.extra.get("max_retries", self.extra.get("max_attempts", 5)) or 5
            ),
            backoff_base=float(self.extra.get("backoff_base", 1.0)),
            backoff_cap=float(self.extra.get("backoff_cap", 60.0)),
            max_retry_wait=float(self.extra.get("max_retry_wait", 900.0)),
            throttle=self.throttle_hint(),
            headers={"User-Agent": "kirov-incidents-collector/0.1"},
            **options,
        )

    @property
    def connection_id(self) -> str:
        """The Airflow connection this client was built from (named in auth/permission errors)."""
        return self.conn_id

    @property
    def clock(self) -> Callable[[], float]:
        return self.http.clock

    def request(
        self,
        method: str,
        url: str,
        *,
        interpret: Interpret,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call through the shared HTTP layer (retries, backoff, rate limits); an
        :class:`AuthError` or :class:`PermissionMissing` names this client's connection."""
        try:
            return self.http.call(method, url, interpret=interpret, params=params, data=data, headers=headers)
        except AuthError as exc:
            raise exc.for_connection(self.conn_id) from None

    def throttle_hint(self) -> Throttle | None:
        """A hook reading rate-limit headers of successful answers (see :class:`HttpClient`)."""
        return None

    @abc.abstractmethod
    def iter_pages(self, source: Source, start: datetime, end: datetime) -> Iterator[Page]:
        """Every page of ``source`` in ``[start, end)`` (posts, then their comments)."""

    def author(self, author_id: Any) -> str:
        return pseudonymize(self.network, None if author_id is None else str(author_id), self.pseudonym_key)

    def page(
        self,
        source: Source,
        endpoint: str,
        params: dict[str, Any],
        raw: Any,
        posts: list[Any],
        rejects: list[Any],
    ) -> Page:
        return Page(
            network=self.network,
            endpoint=endpoint,
            params=redact_params(params),
            raw=raw,
            posts=posts,
            rejects=rejects,
            source_id=source.id,
        )
