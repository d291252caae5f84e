# Kirov incidents pipeline. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test lint bench airflow clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check dags plugins include tests
	$(VENV)/bin/ruff format --check dags plugins include tests
	$(VENV)/bin/mypy

# two pytest workers (2 cores): the Airflow tests mostly wait on schedulers and APIs;
# each test file stays on one worker (module-scoped stacks are started once)
TEST_WORKERS ?= 2

test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: install
	$(PY) -m incidents_dev demo

bench: install
	$(PY) -m incidents_dev bench

airflow: install
	$(PY) -m incidents_dev airflow

clean:
	rm -rf .local .bench .pytest_cache .ruff_cache .mypy_cache
