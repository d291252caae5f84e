"""Development command line: ``python -m incidents_dev <command>`` (sandbox, demo, airflow, bench)."""

from __future__ import annotations

from incidents.cli import main as dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("incidents_dev.sandbox.cli", "serve the five network APIs locally from a generated stream"),
    "demo": ("incidents_dev.demo", "run the whole pipeline end to end on embedded defaults"),
    "airflow": ("incidents_dev.local_airflow", "start a local Airflow UI with the project's DAGs"),
    "bench": ("incidents_dev.bench", "measure every stage, write .bench/results.json"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch(argv, COMMANDS, prog="incidents_dev", description=__doc__.splitlines()[0])
