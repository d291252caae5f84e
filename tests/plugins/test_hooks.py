"""Hooks turn Airflow Connections (``AIRFLOW_CONN_*``) into the domain package's clients and engines."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from incidents import NETWORKS
from incidents_dev.runtime import case_db_connection
from incidents_dev.sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(rate_per_source_per_day=2) as server:
        yield server


@pytest.fixture
def connections(sandbox, monkeypatch):
    for key, value in sandbox.connection_env(pseudonym_key="test-key").items():
        monkeypatch.setenv(key, value)
    sandbox.faults.update({}, replace=True)
    yield
    sandbox.faults.update({}, replace=True)


@pytest.mark.parametrize("network", NETWORKS)
def test_network_hook_builds_its_client_and_tests_the_connection(network, connections, sandbox) -> None:
    from incidents_provider.hooks.networks import hook_for

    hook = hook_for(network)
    assert hook.conn_id == f"{network}_default"
    client = hook.get_conn()
    assert client.__class__.__module__ == f"incidents.collect.{network}"
    ok, message = hook.test_connection()
    assert ok, message


@pytest.mark.parametrize("network", NETWORKS)
def test_refused_token_fails_the_connection_test_without_leaking_it(network, connections, sandbox) -> None:
    from incidents_provider.hooks.networks import hook_for

    sandbox.faults.update({"expired_tokens": [network]})
    ok, message = hook_for(network).test_connection()
    assert not ok
    assert "AuthError" in message and f"{network}_default" in message
    token = json.loads(
        sandbox.connection_env(pseudonym_key="test-key")[f"AIRFLOW_CONN_{network.upper()}_DEFAULT"]
    )["password"]
    assert token not in message


def test_case_db_hook_migrates_and_seeds_an_sqlite_database(tmp_path, monkeypatch) -> None:
    from incidents_provider.hooks.case_db import CaseDbHook

    path = tmp_path / "cases.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_CASE_DB", case_db_connection(f"sqlite:///{path}"))
    hook = CaseDbHook()
    assert hook.get_uri() == f"sqlite:///{path}"
    engine = hook.get_conn()
    assert {"posts", "cases", "case_events", "municipalities"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM municipalities").scalar_one() == 49
    assert hook.test_connection()[0]


def test_case_db_hook_reads_a_postgres_connection(monkeypatch) -> None:
    from incidents_provider.hooks.case_db import CaseDbHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_CASE_DB",
        case_db_connection("postgresql+psycopg://incidents:s3cret@db.example.org:5433/cases"),
    )
    assert CaseDbHook().get_uri() == "postgresql+psycopg://incidents:s3cret@db.example.org:5433/cases"


def test_a_missing_case_db_connection_fails_the_task_and_writes_no_file(tmp_path, monkeypatch) -> None:
    """No silent fallback: without the connection (and without the local stack's switch) the
    task fails with a message naming the connection; no SQLite file appears on the worker."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from incidents_provider.hooks.case_db import CaseDbHook
    from incidents_provider.operators.process import RouteIncidentsOperator

    monkeypatch.delenv("AIRFLOW_CONN_CASE_DB", raising=False)
    monkeypatch.delenv("INCIDENTS_CASE_DB_URL", raising=False)
    monkeypatch.setenv("INCIDENTS_HOME", str(tmp_path))
    with pytest.raises(AirflowNotFoundException, match="'case_db' is not defined.*never falls back"):
        CaseDbHook().get_uri()
    with pytest.raises(AirflowNotFoundException, match="AIRFLOW_CONN_CASE_DB"):
        RouteIncidentsOperator(task_id="route").engine()
    assert not list(tmp_path.rglob("*.sqlite"))


def test_the_local_stack_switch_names_the_case_db_when_the_connection_is_missing(
    tmp_path, monkeypatch
) -> None:
    from incidents_provider.hooks.case_db import CaseDbHook

    monkeypatch.delenv("AIRFLOW_CONN_CASE_DB", raising=False)
    url = f"sqlite:///{tmp_path / 'local.sqlite'}"
    monkeypatch.setenv("INCIDENTS_CASE_DB_URL", url)
    assert CaseDbHook().get_uri() == url
    # a defined connection always wins over the switch
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASE_DB",
        case_db_connection("postgresql+psycopg://incidents:s3cret@db.example.org:5433/cases"),
    )
    assert CaseDbHook().get_uri() == "postgresql+psycopg://incidents:s3cret@db.example.org:5433/cases"
