"""Fixtures of the case tests."""

from __future__ import annotations

from typing import Any

import pytest
from cases_helpers import add_posts, post_row
from sqlalchemy import Engine


@pytest.fixture
def make_posts(engine: Engine):
    """Insert labelled posts (overrides of :func:`cases_helpers.post_row`), return their ids."""

    def _make(*rows: dict[str, Any]) -> list[int]:
        return add_posts(engine, [post_row(**r) for r in rows])

    return _make
