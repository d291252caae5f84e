"""Windowed, paged views of the generated stream, as the emulators serve it.

Everything published since :data:`~incidents_dev.sandbox.generator.WORLD_START` and not after the
server's clock is served: walls, Page feeds and media lists have no history floor (the real APIs
have none either); only Twitter/X recent search limits history, in its own emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from incidents_dev.sandbox.generator import (
    HOUR,
    WORLD_START_HOUR,
    GeneratorConfig,
    SandboxItem,
    day_post_counts,
    hour_items,
    post_count,
    source_hour,
)


class Stream:
    """The stream of one server, seen at the server's clock ``now_fn()``."""

    def __init__(self, config: GeneratorConfig, now_fn: Callable[[], datetime]) -> None:
        self.config = config
        self.now_fn = now_fn
        self.index = {(s.network, s.id): i for i, s in enumerate(config.sources)}

    def source(self, network: str, source_id: str) -> int | None:
        return self.index.get((network, str(source_id)))

    def search_sources(self, network: str, query: str) -> list[int]:
        """The sources of ``network`` whose search query is ``query``."""
        return [
            i
            for i, s in enumerate(self.config.sources)
            if s.network == network and s.query and s.query == query
        ]

    def visible(self, item: SandboxItem) -> bool:
        return item.published_at <= self.now_fn()

    def posts(self, index: int, hour: int) -> list[SandboxItem]:
        return [p for p in source_hour(self.config, index, hour) if self.visible(p)]

    def feed(self, index: int, hour: int) -> list[SandboxItem]:
        """Twitter/X: tweets and replies of the hour; elsewhere: the posts of the hour."""
        if self.config.sources[index].network == "twitter":
            return [i for i in hour_items(self.config, index, hour) if self.visible(i)]
        return self.posts(index, hour)

    def desc(
        self, index: int, since: datetime | None, until: datetime | None, after: tuple[int, ...] | None = None
    ) -> Iterator[tuple[tuple[int, int], SandboxItem]]:
        """Items newest first with their cursor (hour, position), within [since, until), back to
        the start of the world when ``since`` is None."""
        now = self.now_fn()
        top = min(until, now + timedelta(seconds=1)) if until else now + timedelta(seconds=1)
        hour = int(top.timestamp()) // HOUR
        low = max(WORLD_START_HOUR, int(since.timestamp()) // HOUR if since else WORLD_START_HOUR)
        if after is not None:
            hour = min(hour, after[0])
        while hour >= low:
            items = self.feed(index, hour)
            for pos in range(len(items) - 1, -1, -1):
                if after is not None and (hour, pos) >= tuple(after):
                    continue
                item = items[pos]
                if item.published_at >= top:
                    continue
                if since and item.published_at < since:
                    return
                yield (hour, pos), item
            hour -= 1

    def _day_counts(self, index: int, day: int) -> tuple[int, ...]:
        network = self.config.sources[index].network
        return day_post_counts(self.config, network, day)[index]

    def wall_offset(self, index: int, offset: int, count: int) -> list[SandboxItem]:
        """VK ``wall.get``: ``count`` posts from ``offset``, newest first, down to the wall's first
        post (whole days and hours are skipped by their counts)."""
        now_hour = int(self.now_fn().timestamp()) // HOUR
        out: list[SandboxItem] = []
        skip = offset
        current = self.posts(index, now_hour)[::-1]
        if skip < len(current):
            out.extend(current[skip : skip + count])
            skip = 0
        else:
            skip -= len(current)
        hour = now_hour - 1
        while len(out) < count and hour >= WORLD_START_HOUR:
            day_first = (hour // 24) * 24
            if skip > 0:
                in_day = sum(self._day_counts(index, hour // 24)[: hour - day_first + 1])
                if skip >= in_day:
                    skip -= in_day
                    hour = day_first - 1
                    continue
            n = post_count(self.config, index, hour)
            if skip >= n:
                skip -= n
                hour -= 1
                continue
            items = self.posts(index, hour)[::-1]
            out.extend(items[skip : skip + count - len(out)])
            skip = 0
            hour -= 1
        return out

    def wall_total(self, index: int) -> int:
        """All posts on the wall: since its first post up to now."""
        now_hour = int(self.now_fn().timestamp()) // HOUR
        total = len(self.posts(index, now_hour))
        today = now_hour // 24
        total += sum(self._day_counts(index, today)[: now_hour - today * 24])
        for day in range(WORLD_START_HOUR // 24, today):
            total += sum(self._day_counts(index, day))
        return total

    def find_post(self, network: str, native_id: str, owner: str | None = None) -> SandboxItem | None:
        """Locate a post by its native id (ids encode hour and position)."""
        try:
            if network == "vk":
                base = int(native_id)
                candidates = [i for (n, _), i in self.index.items() if n == "vk"]
            elif network == "ok":
                base, idx = int(native_id[:-3]), int(native_id[-3:])
                candidates = [idx]
            elif network == "facebook":
                num = int(native_id.split("_")[-1]) - 10_100_000_000_000_000
                base, idx = divmod(num, 1000)
                candidates = [idx]
            elif network == "instagram":
                base, idx = divmod(int(native_id) - 17_800_000_000_000_000, 1000)
                candidates = [idx]
            else:
                return None
        except ValueError:
            return None
        hour, k = divmod(base, 256)
        if hour < WORLD_START_HOUR:
            return None
        for idx in candidates:
            if not 0 <= idx < len(self.config.sources) or self.config.sources[idx].network != network:
                continue
            posts = source_hour(self.config, idx, hour)
            if k < len(posts) and posts[k].native_id == native_id and self.visible(posts[k]):
                post = posts[k]
                if owner is not None and network == "vk" and post.owner_id != str(owner):
                    continue
                return post
        return None

    def comments(self, post: SandboxItem) -> list[SandboxItem]:
        return [c for c in post.comments if self.visible(c)]
