"""The shared paging rules: a page of duplicates is not the end; paging that stops advancing while
the API says there is more fails the window as incomplete."""

from __future__ import annotations

import pytest

from incidents.collect.errors import WindowIncomplete
from incidents.collect.paging import MAX_IDLE_PAGES, STALL_RETRIES, CursorPaging, OffsetPaging


def test_cursor_paging_goes_on_through_a_page_of_duplicates_and_ends_when_the_api_says_so() -> None:
    paging = CursorPaging("vk", "test")
    assert paging.cursor is None
    assert paging.advance(more=True, next_cursor="a", fresh=3) and paging.cursor == "a"
    assert paging.advance(more=True, next_cursor="b", fresh=0) and paging.cursor == "b"  # duplicates only
    assert not paging.advance(more=False, next_cursor=None, fresh=0)  # the API says: no more


def test_cursor_that_stops_advancing_is_asked_again_then_fails() -> None:
    paging = CursorPaging("facebook", "55/feed")
    assert paging.advance(more=True, next_cursor="a", fresh=2)
    for _ in range(STALL_RETRIES):  # the same page again, the cursor unchanged
        assert paging.advance(more=True, next_cursor="a", fresh=0) and paging.cursor == "a"
    with pytest.raises(WindowIncomplete, match="55/feed.*repeated a cursor"):
        paging.advance(more=True, next_cursor="a", fresh=0)
    missing = CursorPaging("ok", "topics")
    for _ in range(STALL_RETRIES):
        assert missing.advance(more=True, next_cursor=None, fresh=1) and missing.cursor is None
    with pytest.raises(WindowIncomplete, match="no next cursor"):
        missing.advance(more=True, next_cursor="", fresh=1)


def test_a_cursor_that_recovers_resets_the_stall_count() -> None:
    paging = CursorPaging("twitter", "search")
    assert paging.advance(more=True, next_cursor="a", fresh=1)
    for round_ in range(3):
        for _ in range(STALL_RETRIES):
            assert paging.advance(more=True, next_cursor="a" if round_ == 0 else f"n{round_ - 1}", fresh=0)
        assert paging.advance(more=True, next_cursor=f"n{round_}", fresh=1)


def test_endless_pages_without_new_items_fail() -> None:
    paging = CursorPaging("vk", "newsfeed")
    with pytest.raises(WindowIncomplete, match="no new item"):
        for n in range(MAX_IDLE_PAGES + 1):
            paging.advance(more=True, next_cursor=f"c{n}", fresh=0)


def test_offset_paging_advances_by_new_items_until_the_total() -> None:
    paging = OffsetPaging("vk", "wall")
    assert paging.advance(returned=3, fresh=3, total=7) and paging.offset == 3
    # the next page started two items early (two repeats): the offset moves by the new ones only
    assert paging.advance(returned=3, fresh=1, total=7) and paging.offset == 4
    assert not paging.advance(returned=3, fresh=3, total=7) and paging.offset == 7
    open_ended = OffsetPaging("vk", "comments")
    assert open_ended.advance(returned=2, fresh=2, total=None)
    assert not open_ended.advance(returned=0, fresh=0, total=None)


def test_offset_that_cannot_advance_below_the_total_fails_after_asking_again() -> None:
    paging = OffsetPaging("vk", "wall.get of -7")
    assert paging.advance(returned=3, fresh=3, total=7)
    for _ in range(STALL_RETRIES):
        assert paging.advance(returned=2, fresh=0, total=7) and paging.offset == 3
    with pytest.raises(WindowIncomplete, match="offset 3 of 7"):
        paging.advance(returned=0, fresh=0, total=7)
