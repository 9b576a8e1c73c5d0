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
        crd golden demo demo-down bench bench-curve kind-e2e clean

all: test

$(BIN)/pythonapp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,devcluster]'
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

demo: venv controlplane
	bash scripts/demo.sh

demo-down: venv
	bash scripts/demo.sh down

# The operator against a bare client on the dev cluster: latency, calls per app, idle, restart,
# update, noise, memory (bench/__init__.py). Results in build/bench/ (summary.md, result.json,
# bench.png). BENCH_ARGS passes more options (python -m bench --help), e.g. --profile.
BENCH_APPS ?= 500
BENCH_ARGS ?=
BENCH_EXTRA := $(VENV)/.bench-extra

$(BENCH_EXTRA): $(BIN)/pythonapp pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,dev,devcluster,bench]'
	touch $@

bench: $(BENCH_EXTRA) controlplane
	$(BIN)/python -m bench --apps $(BENCH_APPS) $(BENCH_ARGS)

bench-curve: $(BENCH_EXTRA) controlplane
	$(BIN)/python -m bench --apps 100 500 2000 $(BENCH_ARGS)

# The operator image on kind (needs Docker and kind; cannot run on a machine without Docker).
kind-e2e:
	bash scripts/kind-e2e.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
