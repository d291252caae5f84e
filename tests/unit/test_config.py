"""One settings object: every setting and connection read from one environment mapping."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from incidents.config import REFERENCE_DIR, Settings

PRODUCT = Path(__file__).resolve().parents[2] / "include" / "incidents"
PROVIDER = Path(__file__).resolve().parents[2] / "plugins" / "incidents_provider"


def test_defaults_from_an_empty_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"INCIDENTS_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.case_db_url is None
    assert s.landing_uri == f"file://{tmp_path / 'landing'}"
    assert s.reports_uri == f"file://{tmp_path / 'reports'}"
    assert s.max_failed_share == 0.05
    assert s.sources_file == REFERENCE_DIR / "sources.yaml"
    assert s.collect_cron == "0 * * * *"
    assert s.connection("vk_default") is None


def test_every_setting_is_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "INCIDENTS_HOME": str(tmp_path),
            "INCIDENTS_CASE_DB_URL": "postgresql+psycopg://u@h/db",
            "INCIDENTS_LANDING_URI": "s3://bucket/landing",
            "INCIDENTS_REPORTS_URI": "s3://bucket/reports",
            "INCIDENTS_REPORT_RECIPIENTS": "a@x.org, b@x.org,",
            "INCIDENTS_ALERT_EMAILS": "ops@x.org",
            "INCIDENTS_MAIL_FROM": "bot@x.org",
            "INCIDENTS_MAX_FAILED_SHARE": "0.1",
            "INCIDENTS_PSEUDONYM_KEY": "k",
            "INCIDENTS_COLLECT_CRON": "0 0 * * *",
            "AIRFLOW_CONN_VK_DEFAULT": '{"conn_type": "http", "host": "http://127.0.0.1:1", "password": "t"}',
        }
    )
    assert s.case_db_url == "postgresql+psycopg://u@h/db"
    assert (s.landing_uri, s.reports_uri) == ("s3://bucket/landing", "s3://bucket/reports")
    assert s.report_recipients == ("a@x.org", "b@x.org")
    assert s.alert_emails == ("ops@x.org",) and s.mail_from == "bot@x.org"
    assert s.max_failed_share == 0.1 and s.pseudonym_key == "k" and s.collect_cron == "0 0 * * *"
    conn = s.connection("vk_default")
    assert conn is not None and conn.host == "http://127.0.0.1:1" and conn.password == "t"


def test_secrets_never_show_in_repr() -> None:
    s = Settings.from_env(
        {"INCIDENTS_PSEUDONYM_KEY": "secret-key", "AIRFLOW_CONN_VK_DEFAULT": "http://u:secret-token@host"}
    )
    assert "secret" not in repr(s)


@pytest.mark.parametrize("value", ["abc", "1.5", "-0.1"])
def test_a_bad_threshold_is_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="INCIDENTS_MAX_FAILED_SHARE"):
        Settings.from_env({"INCIDENTS_MAX_FAILED_SHARE": value})


def _reads_environment(path: Path) -> list[int]:
    """Lines where a module reads ``os.environ`` / ``os.getenv`` (writes such as setdefault excluded)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func
            if target.attr == "getenv" and isinstance(target.value, ast.Name) and target.value.id == "os":
                lines.append(node.lineno)
            if (
                target.attr in ("get", "__getitem__", "items", "copy")
                and isinstance(target.value, ast.Attribute)
                and target.value.attr == "environ"
            ):
                lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "environ" and isinstance(node.ctx, ast.Load):
                lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = {
        str(path.relative_to(PRODUCT.parents[1])): lines
        for root in (PRODUCT, PROVIDER)
        for path in root.rglob("*.py")
        if path != PRODUCT / "config.py" and (lines := _reads_environment(path))
    }
    assert offenders == {}
