"""One analyser per test session (building it loads the gazetteer and compiles rules)."""

from __future__ import annotations

import pytest

from incidents.analysis.classifier import Analyzer, default_analyzer


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return default_analyzer()
