# pythonapp-operator: one entry point for humans and CI.
#   make demo   fresh machine -> local cluster, CRD, operator running, examples Ready
#   make test   the whole suite: lint, unit, checkers, control plane, integration, e2e
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(or $(PYTHONAPP_CACHE),$(HOME)/.cache/pythonapp-operator)
export PYTHONAPP_CACHE := $(CACHE)
export GOTOOLCHAIN := local

.PHONY: all venv lint test test-unit test-checkers test-cluster controlplane checkers crd golden \
        demo demo-down bench clean

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

# The control plane's binaries (built from Go modules once, cached by version).
controlplane: venv
	bash operator/pythonapp_operator/devcluster/build-controlplane.sh >/dev/null

# kube-score, kube-linter, Polaris, Checkov (cached by version).
checkers:
	bash scripts/install-checkers.sh >/dev/null

crd: venv
	$(BIN)/pythonapp crd > crds/pythonapps.yaml

golden: venv
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit

test-unit: venv
	$(BIN)/pytest -q tests/unit tests/integration -m "not cluster"

test-checkers: venv checkers
	$(BIN)/pytest -q tests/policy

test-cluster: venv controlplane
	$(BIN)/pytest -q -m cluster tests

# Everything, in one pytest run so the summary line counts every test.
test: lint controlplane checkers
	$(BIN)/pytest -q tests

demo: venv controlplane
	bash scripts/demo.sh

demo-down: venv
	bash scripts/demo.sh down

# apply->Ready latency, writes per app, idle writes, writes after restart, operator memory.
bench: venv controlplane
	$(BIN)/python bench/run.py --apps 20 --idle 30

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
