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

.PHONY: all venv lint test test-unit test-checkers test-cluster test-deploy controlplane tools \
        crd golden status-fixtures demo demo-down bench kind-e2e clean

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

# kube-score, kube-linter, Polaris, Checkov, kubectl-validate, actionlint (cached by version).
tools:
	bash scripts/install-tools.sh >/dev/null

# The CRD is generated, never edited; deploy/ holds a copy (tests fail when either drifts).
crd: venv
	$(BIN)/pythonapp crd > crds/pythonapps.yaml
	cp crds/pythonapps.yaml deploy/base/crds/pythonapps.yaml

golden: venv
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit

# Re-capture tests/fixtures/status/ (PythonApps in each state, from the real operator) after an
# intended status change; review the diff, then tests/gitops re-check Argo CD and Flux on them.
status-fixtures: venv controlplane tools
	UPDATE_STATUS_FIXTURES=1 $(BIN)/pytest -q tests/e2e/test_status_fixtures.py

test-unit: venv
	$(BIN)/pytest -q tests/unit tests/integration -m "not cluster"

test-checkers: venv tools
	$(BIN)/pytest -q tests/policy

# Dockerfile, locks, deploy/ (kustomize, the checkers, kubectl-validate), workflow: no cluster.
test-deploy: venv controlplane tools
	$(BIN)/pytest -q tests/deploy -m "not cluster"

test-cluster: venv controlplane
	$(BIN)/pytest -q -m cluster tests

# Everything, in one pytest run so the summary line counts every test.
test: lint controlplane tools
	$(BIN)/pytest -q tests

# No prerequisites: the script says up front how long a first run takes, then creates the venv
# and builds the control plane itself, one line per step (the tools' output goes to a log).
demo:
	bash scripts/demo.sh

demo-down: venv
	bash scripts/demo.sh down

# apply->Ready latency, writes per app, idle writes, writes after restart, operator memory.
bench: venv controlplane
	$(BIN)/python bench/run.py --apps 20 --idle 30

# The operator image on kind (needs Docker and kind; cannot run on a machine without Docker).
kind-e2e:
	bash scripts/kind-e2e.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
