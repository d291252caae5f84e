"""Monitored sources: official pages and local public groups, per network, with their municipality.

Configuration lives in ``incidents/reference/sources.yaml`` (override the path with
``INCIDENTS_SOURCES_FILE``). When a post names no place, its source's municipality is the
fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from incidents import NETWORKS
from incidents.config import settings


@dataclass(frozen=True)
class Source:
    """One monitored community/page/account."""

    network: str
    id: str
    """The API's id: VK owner_id (negative for communities), OK group id, Facebook page id,
    Instagram user id, Twitter/X user id."""
    name: str
    municipality: str
    """Municipality code (see ``municipalities.code``): the fallback place of its posts."""
    kind: str = "public"
    """``official`` (government, ministry, district pages) or ``public`` (local groups)."""
    query: str | None = None
    """A search query, for search-based sources (VK ``newsfeed.search``, Twitter/X search)."""


def sources_file() -> Path:
    return settings().sources_file


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[Source, ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    items = data.get("sources", data) if isinstance(data, dict) else data
    sources = []
    for item in items:
        if item["network"] not in NETWORKS:
            raise ValueError(f"{path}: unknown network {item['network']!r} for source {item.get('id')!r}")
        sources.append(
            Source(
                network=item["network"],
                id=str(item["id"]),
                name=item["name"],
                municipality=str(item["municipality"]),
                kind=item.get("kind", "public"),
                query=item.get("query"),
            )
        )
    return tuple(sources)


def load_sources(network: str | None = None) -> list[Source]:
    """All monitored sources, or those of one network."""
    sources = _load(str(sources_file()))
    return [s for s in sources if network is None or s.network == network]


def source_index() -> dict[tuple[str, str], Source]:
    """Sources by (network, id)."""
    return {(s.network, s.id): s for s in load_sources()}
