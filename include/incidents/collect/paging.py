"""The paging rules every client shares: keep paging while the API says there is more.

Two shapes cover the five APIs:

* :class:`CursorPaging` (Graph ``paging.next``/``after``, Twitter/X ``meta.next_token``, VK
  ``newsfeed.search`` ``next_from``, OK ``anchor`` + ``has_more``): the answer says whether there
  is more and gives the cursor of the next page.
* :class:`OffsetPaging` (VK ``wall.get`` and ``wall.getComments``: ``offset`` < ``count``): the
  offset advances by the items not seen before, so a page that starts with items of the previous
  one (new posts pushed the list down, or the API repeated a few) never skips anything.

The rules, the same for both:

* A page of duplicates, or an empty page, is **not** the end of the data: paging goes on while
  the API says there is more.
* Paging ends when the API says there is no more (no cursor, ``has_more`` false, offset reached
  ``count``), or when the client has passed its window (newest-first streams, decided by the client).
* When the API says there is more but the cursor repeats one already requested, or the offset
  cannot advance, the same page is asked for again up to :data:`STALL_RETRIES` times (an API may
  answer a page differently the next time); after that :class:`WindowIncomplete` is raised: the
  window fails and is retried later, it never completes silently with data missing.
* :data:`MAX_IDLE_PAGES` pages in a row without a new item while the cursor keeps "advancing"
  also raise :class:`WindowIncomplete` (an API cycling through cursors must not loop forever).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from incidents.collect.errors import WindowIncomplete

log = logging.getLogger(__name__)

STALL_RETRIES = 3
"""How often a page whose cursor/offset did not advance is asked for again before the window fails."""
MAX_IDLE_PAGES = 50
"""Pages in a row without any new item, while the API says there is more, before the window fails."""


class _Paging:
    def __init__(self, network: str, what: str) -> None:
        self.network = network
        self.what = what
        self.pages = 0
        self.stalls = 0
        self.idle = 0

    def _idle(self, fresh: int) -> None:
        self.idle = 0 if fresh else self.idle + 1
        if self.idle >= MAX_IDLE_PAGES:
            raise WindowIncomplete(
                self.network,
                "paging",
                f"{self.what}: {self.idle} pages in a row brought no new item although the API says "
                "there is more; the window is incomplete",
            )

    def _stall(self, detail: str) -> bool:
        self.stalls += 1
        if self.stalls > STALL_RETRIES:
            raise WindowIncomplete(
                self.network,
                "paging",
                f"{self.what}: the API says there is more but {detail} "
                f"({STALL_RETRIES} repeats); the window is incomplete",
            )
        log.warning("%s: %s: %s; asking for the page again", self.network, self.what, detail)
        return True


class CursorPaging(_Paging):
    """Cursor paging: ``cursor`` is what the next request sends (None for the first page)."""

    def __init__(self, network: str, what: str, first: Hashable | None = None) -> None:
        super().__init__(network, what)
        self.cursor: Hashable | None = first
        self._requested: set[Hashable | None] = {first}

    def advance(self, *, more: bool, next_cursor: Hashable | None, fresh: int) -> bool:
        """After a page: True to request the page at ``self.cursor``, False at the end of the data.

        ``more`` is whether the API says there is more, ``next_cursor`` the cursor it gave,
        ``fresh`` how many items of the page were not seen before.
        """
        self.pages += 1
        if not more:
            return False
        self._idle(fresh)
        if next_cursor in (None, "") or next_cursor in self._requested:
            reason = "gave no next cursor" if next_cursor in (None, "") else "repeated a cursor"
            return self._stall(reason)  # self.cursor unchanged: the same page again
        self.stalls = 0
        self.cursor = next_cursor
        self._requested.add(next_cursor)
        return True


class OffsetPaging(_Paging):
    """Offset paging (``offset`` < ``total``): the offset advances by the items not seen before."""

    def __init__(self, network: str, what: str) -> None:
        super().__init__(network, what)
        self.offset = 0

    def advance(self, *, returned: int, fresh: int, total: int | None) -> bool:
        """After a page of ``returned`` items (``fresh`` of them new) out of ``total``: True to
        request the page at ``self.offset``, False at the end of the data.

        Without a ``total`` the API says there is more while pages are not empty.
        """
        self.pages += 1
        more = total > self.offset if isinstance(total, int) else returned > 0
        if not more:
            return False
        if fresh == 0:
            return self._stall(f"no new item at offset {self.offset} of {total}")
        self.stalls = 0
        self.offset += fresh
        if isinstance(total, int):
            return self.offset < total
        return True
