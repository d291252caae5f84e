"""docker-compose.yaml, the production recipe, checked against the Compose specification.

There is no Docker engine here: the file is validated by ``docker-compose config`` (Debian's
docker-compose package, installed by ``.ci/run``) and against the Compose specification's JSON
schema that package ships; then the services and settings that matter are checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(condition: bool, what: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is required in CI (.ci/run installs it)", pytrace=False)
        pytest.skip(f"{what} is not installed (apt-get install docker-compose)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``docker-compose config`` of the file with an .env made from .env.example."""
    _require(shutil.which("docker-compose") is not None, "docker-compose")
    work = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yaml", "Dockerfile"):
        shutil.copy(REPO / name, work / name)
    env = (REPO / ".env.example").read_text()
    env = re.sub(
        r"^(AIRFLOW_DB_PASSWORD|AIRFLOW_JWT_SECRET|AIRFLOW_API_SECRET_KEY|CASE_DB_PASSWORD)=$",
        r"\1=test",
        env,
        flags=re.M,
    )
    (work / ".env").write_text(env)
    proc = subprocess.run(
        ["docker-compose", "-f", str(work / "docker-compose.yaml"), "config"],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_valid_against_compose_spec_schema(compose: dict) -> None:
    _require(SCHEMA.exists(), "the Compose specification schema (docker-compose package)")
    jsonschema.validate(compose, json.loads(SCHEMA.read_text()))


def test_docker_compose_config_accepts_it(rendered: dict) -> None:
    assert set(rendered["services"]) >= {"postgres", "case-db", "redis", "airflow-init"}


def test_services(compose: dict) -> None:
    services = compose["services"]
    expected = {
        "postgres",
        "case-db",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
    }
    assert expected <= set(services)
    commands = {
        name: services[name].get("command")
        for name in expected
        if name.startswith("airflow-") and name != "airflow-init"
    }
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }


def test_airflow_settings(rendered: dict) -> None:
    for name, service in rendered["services"].items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert "case-db" in env["AIRFLOW_CONN_CASE_DB"], "a separate PostgreSQL case database"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")
        mounts = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include/incidents"} <= mounts, name
        assert not [m for m in mounts if "incidents_dev" in m or m == "/opt/airflow/include"], name
        image = service.get("image", "")
        assert "3.3" in image, name


def test_image_is_airflow_3_3() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", dockerfile, re.M)
    pinned = (REPO / "requirements.txt").read_text()
    assert re.search(r"^apache-airflow==3\.3\.\d+$", pinned, re.M)


def test_secrets_come_from_env_file_only(compose: dict) -> None:
    """Connections and passwords come from .env; every variable used is listed in .env.example."""
    text = (REPO / "docker-compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert used <= listed, used - listed
    for name in (
        "AIRFLOW_CONN_VK_DEFAULT",
        "AIRFLOW_CONN_OK_DEFAULT",
        "AIRFLOW_CONN_TWITTER_DEFAULT",
        "AIRFLOW_CONN_FACEBOOK_DEFAULT",
        "AIRFLOW_CONN_INSTAGRAM_DEFAULT",
        "AIRFLOW_CONN_SMTP_DEFAULT",
    ):
        assert name in listed
    assert not re.search(r"(PASSWORD|SECRET)\w*:\s*['\"]?[A-Za-z0-9]{6,}", text), (
        "no literal secrets in the file"
    )
    for service in compose["services"].values():
        if "env_file" in service:
            assert service["env_file"] == [".env"]
