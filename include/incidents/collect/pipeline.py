"""Collection of one network's window: raw pages to the landing area, normalised posts to JSONL.

Landing layout (one folder per network and window)::

    <root>/<network>/<start>_<end>/              e.g. vk/20250301T000000Z_20250302T000000Z/
        <source_id>/00001.json, 00002.json ...   every raw page, in request order
        posts.jsonl                              the window's normalised posts (NormalizedPost.to_json)
        rejects.jsonl                            items that could not be parsed, with the reason
        collect.json                             the CollectResult summary

Every file is written to a temporary name and renamed, so readers never see half a file; a
rerun of the same window rewrites the same files (stale page files of a longer earlier run are
removed). Pages are streamed: only the ids of the window's posts are held in memory (to drop
duplicates), never the pages. ``posts.jsonl`` appears only when the window ends without an
error: an AuthError or an exhausted retry leaves no posts file behind.

Per source: :class:`SourceUnavailable` (the API says the source is gone: deleted, banned,
blocked) skips the source, logged and recorded (``skipped``; ``skipped_sources`` in
``collect.json``, then ``batches.skipped_sources`` when the window is loaded);
:class:`DailyLimitReached` stops the window cleanly, ``remaining`` lists the sources not (fully)
collected and ``complete`` is False (the Airflow task fails the run so the window is retried).
Everything else is raised and leaves no ``posts.jsonl``: :class:`AuthError` and
:class:`PermissionMissing` (naming the connection), :class:`WindowIncomplete` (paging stopped
advancing), :class:`ManualActionRequired`, exhausted retries. A window in which every source was
skipped raises :class:`AllSourcesSkipped`: nothing readable is a failure, not an empty success.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from incidents import NETWORKS
from incidents.collect import facebook, instagram, ok, twitter, vk
from incidents.collect.base import BaseClient, Page, rfc3339, utc
from incidents.collect.errors import AllSourcesSkipped, DailyLimitReached, SourceUnavailable
from incidents.config import ConnectionInfo, base_url, settings
from incidents.sources import Source

log = logging.getLogger(__name__)

CLIENT_CLASSES: dict[str, type[BaseClient]] = {
    "vk": vk.Client,
    "ok": ok.Client,
    "twitter": twitter.Client,
    "facebook": facebook.Client,
    "instagram": instagram.Client,
}
SANDBOX_PSEUDONYM_KEY = "sandbox-pseudonym-key"


class StoragePath(Protocol):
    """What the landing area needs of a path: ``pathlib.Path`` and Airflow's ``ObjectStoragePath`` fit."""

    def __truediv__(self, other: str) -> StoragePath: ...

    def mkdir(self, *, parents: bool = ..., exist_ok: bool = ...) -> Any: ...

    def open(self, mode: str = ..., **kwargs: Any) -> IO[Any]: ...

    def rename(self, target: Any) -> Any: ...

    def exists(self) -> bool: ...

    def unlink(self, missing_ok: bool = ...) -> Any: ...


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


class LandingArea:
    """The raw landing area under ``root`` (a local path or an object-storage path)."""

    def __init__(self, root: str | os.PathLike[str] | StoragePath) -> None:
        self.root: Any = (
            Path(root) if isinstance(root, str | os.PathLike) and not hasattr(root, "fs") else root
        )

    @staticmethod
    def window_name(start: datetime, end: datetime) -> str:
        return f"{utc(start):%Y%m%dT%H%M%SZ}_{utc(end):%Y%m%dT%H%M%SZ}"

    def window_dir(self, network: str, start: datetime, end: datetime) -> Any:
        return self.root / network / self.window_name(start, end)

    @staticmethod
    def source_dir_name(source_id: str) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source_id)
        return safe or "_"

    @staticmethod
    def _move(tmp: Any, final: Any) -> None:
        replace = getattr(tmp, "replace", None)
        if replace is not None and isinstance(tmp, Path):
            replace(final)
            return
        if final.exists():
            final.unlink()
        tmp.rename(final)

    @contextmanager
    def atomic_text(self, path: Any) -> Iterator[IO[str]]:
        """Write a text file under a temporary name, renamed into place only on success."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        handle = tmp.open("w", encoding="utf-8") if isinstance(tmp, Path) else tmp.open("w")
        try:
            yield handle
            handle.close()
            self._move(tmp, path)
        except BaseException:
            handle.close()
            if tmp.exists():
                tmp.unlink()
            raise

    def write_json(self, path: Any, data: Any) -> None:
        """Write ``data`` as deterministic JSON (sorted keys), atomically."""
        with self.atomic_text(path) as handle:
            handle.write(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str))
            handle.write("\n")

    def prune_pages(self, folder: Any, last: int) -> int:
        """Remove page files numbered after ``last`` (left by a longer earlier run)."""
        removed, number = 0, last + 1
        while True:
            stale = folder / page_file(number)
            if not stale.exists():
                return removed
            stale.unlink()
            removed += 1
            number += 1

    def uri(self, path: Any) -> str:
        return str(path)


def page_file(number: int) -> str:
    return f"{number:05d}.json"


@dataclass
class CollectResult:
    """What one window's collection did."""

    network: str
    start: str
    end: str
    run_id: str
    landing_uri: str
    posts_path: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per source: ``pages``, ``posts``, ``comments``, ``rejects``, ``duplicates``."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Sources skipped (SourceUnavailable) with the reason."""
    rejects: list[dict[str, Any]] = field(default_factory=list)
    """``{"network", "source_id", "endpoint", "reason", "item_id", "record_key", "raw"}`` of unparsable items."""
    remaining: list[str] = field(default_factory=list)
    """Sources not (fully) collected because a daily limit was reached."""
    stopped: str | None = None
    """Why collection stopped early (the DailyLimitReached message), else None."""

    @property
    def complete(self) -> bool:
        return self.stopped is None

    @property
    def total_posts(self) -> int:
        return sum(c["posts"] + c["comments"] for c in self.counts.values())

    @property
    def skipped_sources(self) -> list[dict[str, str]]:
        """The skipped sources as stored in ``batches.skipped_sources``: ``{"source_id", "reason"}``."""
        return [{"source_id": source_id, "reason": reason} for source_id, reason in self.skipped.items()]

    @property
    def remaining_sources(self) -> list[str]:
        """Alias of ``remaining`` (sources left for the next run after a daily limit)."""
        return self.remaining

    def summary(self) -> dict[str, Any]:
        """A small JSON-ready summary (for logs and XCom): rejects counted by reason, not listed."""
        by_reason: dict[str, int] = {}
        for record in self.rejects:
            by_reason[record["reason"]] = by_reason.get(record["reason"], 0) + 1
        return {
            "network": self.network,
            "start": self.start,
            "end": self.end,
            "landing_uri": self.landing_uri,
            "posts_path": self.posts_path,
            "total_posts": self.total_posts,
            "complete": self.complete,
            "counts": self.counts,
            "skipped": self.skipped,
            "skipped_sources": self.skipped_sources,
            "remaining": self.remaining,
            "stopped": self.stopped,
            "rejects_by_reason": by_reason,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = self.complete
        data["total_posts"] = self.total_posts
        data["skipped_sources"] = self.skipped_sources
        data["rejects"] = [{k: v for k, v in r.items() if k != "raw"} for r in self.rejects]
        return data


def pseudonym_key_for(conn: ConnectionInfo) -> str:
    """The pseudonymisation key: extra ``pseudonym_key``, else ``INCIDENTS_PSEUDONYM_KEY``;
    a sandbox connection (extra ``sandbox: true``) may do without."""
    key = conn.extra.get("pseudonym_key") or settings().pseudonym_key
    if key:
        return str(key)
    if _truthy(conn.extra.get("sandbox", False)):
        return SANDBOX_PSEUDONYM_KEY
    raise ValueError(
        f"connection {conn.conn_id!r}: no pseudonym key; set extra.pseudonym_key or INCIDENTS_PSEUDONYM_KEY "
        "(authors are never stored unpseudonymised)"
    )


def client_for(network: str, conn: ConnectionInfo, **overrides: Any) -> BaseClient:
    """Build the network's client from a connection (host = API base URL, password = token,
    extra = app keys, ``pseudonym_key``, ``full_archive``, ``connect_timeout``, ``read_timeout``,
    ``max_retries``). ``overrides`` go to the client (``session``, ``sleep``, ``clock`` ...)."""
    if network not in CLIENT_CLASSES:
        raise ValueError(f"unknown network {network!r}; expected one of {', '.join(NETWORKS)}")
    if not conn.host:
        raise ValueError(f"connection {conn.conn_id!r}: host (the API base URL) is empty")
    if not conn.password:
        raise ValueError(f"connection {conn.conn_id!r}: password (the API token) is empty")
    options: dict[str, Any] = {
        "extra": dict(conn.extra),
        "pseudonym_key": pseudonym_key_for(conn),
        "conn_id": conn.conn_id,
    }
    options.update(overrides)
    return CLIENT_CLASSES[network](base_url(conn), conn.password, **options)


def _reject_record(page: Page, raw: Any, reason: str) -> dict[str, Any]:
    """A reject as written to ``rejects.jsonl``: ``record_key`` hashes the raw item (its own id is
    not unique across posts, e.g. a VK comment id), so re-quarantining it is idempotent."""
    item_id = str(raw["id"]) if isinstance(raw, dict) and raw.get("id") is not None else None
    dumped = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{page.network}|{page.source_id}|{dumped}".encode()).hexdigest()
    return {
        "network": page.network,
        "source_id": page.source_id,
        "endpoint": page.endpoint,
        "reason": reason,
        "item_id": item_id,
        "record_key": f"{page.network}:raw:{digest[:40]}",
        "raw": raw,
    }


def collect_window(
    network: str,
    start: datetime,
    end: datetime,
    *,
    conn: ConnectionInfo,
    sources: list[Source],
    landing: LandingArea,
    run_id: str,
    client: BaseClient | None = None,
) -> CollectResult:
    """Collect ``[start, end)`` of ``network`` for ``sources`` into the landing area."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    start, end = utc(start), utc(end)
    if end <= start:
        raise ValueError(f"empty window: {rfc3339(start)} .. {rfc3339(end)}")
    wrong = [s.id for s in sources if s.network != network]
    if wrong:
        raise ValueError(f"sources {wrong} are not {network} sources")
    client = client or client_for(network, conn)
    folder = landing.window_dir(network, start, end)
    folder.mkdir(parents=True, exist_ok=True)
    result = CollectResult(network, rfc3339(start), rfc3339(end), run_id, landing.uri(folder))
    seen: set[str] = set()
    posts_path = folder / "posts.jsonl"
    with landing.atomic_text(posts_path) as out, landing.atomic_text(folder / "rejects.jsonl") as rejects_out:
        for index, source in enumerate(sources):
            counts = {"pages": 0, "posts": 0, "comments": 0, "rejects": 0, "duplicates": 0}
            result.counts[source.id] = counts
            source_dir = folder / landing.source_dir_name(source.id)
            source_dir.mkdir(parents=True, exist_ok=True)
            try:
                for page in client.iter_pages(source, start, end):
                    counts["pages"] += 1
                    landing.write_json(source_dir / page_file(counts["pages"]), page.landing_record())
                    for post in page.posts:
                        if post.external_id in seen:
                            counts["duplicates"] += 1
                            continue
                        seen.add(post.external_id)
                        out.write(post.to_json() + "\n")
                        counts["comments" if post.kind == "comment" else "posts"] += 1
                    for raw, reason in page.rejects:
                        record = _reject_record(page, raw, reason)
                        result.rejects.append(record)
                        rejects_out.write(
                            json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n"
                        )
                        counts["rejects"] += 1
            except SourceUnavailable as exc:
                result.skipped[source.id] = str(exc)
                log.warning("%s: skipping source %s (%s): %s", network, source.id, source.name, exc)
            except DailyLimitReached as exc:
                result.stopped = str(exc)
                result.remaining = [s.id for s in sources[index:]]
                log.error(
                    "%s: daily limit reached at source %s; %d source(s) remain for the next run: %s",
                    network,
                    source.id,
                    len(result.remaining),
                    exc,
                )
                break
            finally:
                landing.prune_pages(source_dir, counts["pages"])
            log.info("%s: source %s: %s", network, source.id, counts)
        if sources and len(result.skipped) == len(sources):
            raise AllSourcesSkipped(network, result.skipped_sources)
    result.posts_path = landing.uri(posts_path)
    landing.write_json(folder / "collect.json", result.to_dict())
    return result


def skipped_sources_of(manifest: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"source_id", "reason"}]`` of a window's ``collect.json`` (older manifests: the ``skipped`` map)."""
    listed = manifest.get("skipped_sources")
    if isinstance(listed, list):
        return [{"source_id": str(s["source_id"]), "reason": str(s["reason"])} for s in listed]
    return [{"source_id": str(k), "reason": str(v)} for k, v in (manifest.get("skipped") or {}).items()]


def read_posts(path: str | os.PathLike[str] | StoragePath) -> Iterator[dict[str, Any]]:
    """Stream the JSON objects of a ``posts.jsonl`` written by :func:`collect_window`."""
    target: Any = Path(path) if isinstance(path, str | os.PathLike) and not hasattr(path, "fs") else path
    with target.open("r") as handle:
        # a local file opens as text; an object-storage file may hand back bytes: decoded as UTF-8
        stream = handle if not isinstance(handle, io.BufferedIOBase) else io.TextIOWrapper(handle, "utf-8")  # type: ignore[type-var]
        for line in stream:
            if line.strip():
                yield json.loads(line)
