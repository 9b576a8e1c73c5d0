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

.PHONY: all venv lint test test-unit test-checkers test-cluster test-deploy controlplane tools realnode-packages \
        crd admission docs golden lock-dev status-fixtures demo demo-down test-down bench bench-curve chaos kind-e2e clean

all: test

# The dev/test virtualenv from requirements-dev.lock (pinned and hash-checked, like the image's
# requirements.lock), then the project itself, editable, built with the locked setuptools.
# Regenerate the lock after changing dependencies: make lock-dev
$(BIN)/pythonapp: pyproject.toml requirements-dev.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/pythonapp

lint: venv
	$(BIN)/ruff check operator tests bench examples
	$(BIN)/ruff format --check operator tests bench examples
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/app/app.py
	@# pytest imports test modules by basename (tests/ holds no packages): two of one name
	@# stop the whole run at collection, so say it here, in seconds, with the names
	@dups=$$(find tests -name 'test_*.py' -exec basename {} \; | sort | uniq -d); \
	  if [ -n "$$dups" ]; then echo "test modules sharing a basename: $$dups (rename one)"; exit 1; fi

# The control plane's binaries (built from Go modules once, cached by version).
controlplane: venv
	bash operator/pythonapp_operator/devcluster/build-controlplane.sh >/dev/null

# The real node's Debian packages (containerd, runc, CNI plugins, registry, image tools), when
# the machine allows it: root with apt-get. The tests marked `realnode` run where REAL_NODE=1
# (PYTHONAPP_REAL_NODE for tests/conftest.py); elsewhere they fail saying how to get it
# (or run pytest with -m 'not realnode').
REAL_NODE ?= $(shell [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && echo 1 || echo 0)
export PYTHONAPP_REAL_NODE := $(REAL_NODE)
realnode-packages:
	@if [ "$(REAL_NODE)" = 1 ]; then bash scripts/realnode-packages.sh; fi

# kube-score, kube-linter, Polaris, Checkov, kubectl-validate, actionlint (cached by version).
tools:
	bash scripts/install-tools.sh >/dev/null

# The CRD is generated, never edited; deploy/ holds a copy (tests fail when either drifts).
crd: venv
	$(BIN)/pythonapp crd > crds/pythonapps.yaml
	cp crds/pythonapps.yaml deploy/base/crds/pythonapps.yaml
	$(BIN)/pythonapp crd --policy > crds/pythonapppolicies.yaml
	cp crds/pythonapppolicies.yaml deploy/base/crds/pythonapppolicies.yaml

# The admission policy has one validation per Secret an app may name: generated (a test fails
# when deploy/admission/admissionpolicy.yaml drifts).
admission: venv
	$(BIN)/python -m pythonapp_operator.api.admission > deploy/admission/admissionpolicy.yaml
	$(BIN)/python -m pythonapp_operator.api.policyadmission > deploy/admission/platformpolicy.yaml

# The field reference is generated from the models too (a test fails when it drifts).
docs: venv
	$(BIN)/python -m pythonapp_operator.docs > docs/reference.md

# Test and dev tools pinned with hashes, at the same versions as requirements.lock (runtime) and
# requirements-build.lock (pip, setuptools, wheel); tests/deploy/test_lock.py checks all three.
lock-dev: venv
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --extra test --extra dev --extra devcluster --extra bench \
	  -c requirements.lock -c requirements-build.lock \
	  -o requirements-dev.lock pyproject.toml requirements-build.in

golden: venv
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit

# Re-capture tests/fixtures/status/ (PythonApps in each state, from the real operator) after an
# intended status change; review the diff, then tests/gitops re-check Argo CD and Flux on them.
status-fixtures: venv controlplane tools
	UPDATE_STATUS_FIXTURES=1 $(BIN)/pytest -q tests/e2e/test_status_fixtures.py

test-unit: venv
	$(BIN)/pytest -q tests/unit tests/app tests/integration -m "not cluster"

test-checkers: venv tools
	$(BIN)/pytest -q tests/policy

# Dockerfile, locks, deploy/ (kustomize, the checkers, kubectl-validate), workflow: no cluster.
test-deploy: venv controlplane tools
	$(BIN)/pytest -q tests/deploy -m "not cluster"

test-cluster: venv controlplane realnode-packages
	$(BIN)/pytest -q -m cluster tests

# Everything, in one pytest run so the summary line counts every test. The tests run on a dev
# cluster of their own ($(CACHE)/test, see tests/conftest.py), never the demo's; it is left
# running so the next run starts in seconds (.ci/run stops it): test-down stops it.
test: lint controlplane tools realnode-packages
	$(BIN)/pytest -q tests

# The fault suite at length (its short version runs in `make test`): more apps, every fault
# CHAOS_ROUNDS times in a seeded random order (CHAOS_SEED replays one), then the fuzzers with
# hypothesis's long profile. Report: build/chaos/report.json and summary.md.
CHAOS_APPS ?= 20
CHAOS_ROUNDS ?= 3
chaos: venv controlplane
	CHAOS_APPS=$(CHAOS_APPS) CHAOS_ROUNDS=$(CHAOS_ROUNDS) CHAOS_CONTROL_PLANE=1 \
	  $(BIN)/pytest -q -s tests/e2e/test_chaos.py
	HYPOTHESIS_PROFILE=chaos $(BIN)/pytest -q tests/unit/test_fuzz_models.py \
	  tests/unit/test_fuzz_reconcile.py tests/integration/test_fuzz_api_server.py \
	  tests/integration/test_fuzz_edges.py tests/integration/test_fuzz_schemaless.py

test-down: venv
	PYTHONAPP_DEV_STATE="$${PYTHONAPP_DEV_STATE:-$(CACHE)/test}" $(BIN)/pythonapp dev down

# No prerequisites: the script says up front how long a first run takes, then creates the venv
# and builds the control plane itself, one line per step (the tools' output goes to a log).
demo:
	bash scripts/demo.sh

demo-down: venv
	bash scripts/demo.sh down

# The operator against a bare client on a dev cluster of its own ($(CACHE)/bench, not the demo's):
# latency, calls per app, idle, restart, update, noise, memory (bench/__init__.py). Results in
# build/bench/ (summary.md, result.json, bench.png). BENCH_ARGS passes more options
# (python -m bench --help), e.g. --profile.
BENCH_APPS ?= 500
BENCH_ARGS ?=
# runs of each size in bench-curve (on two shared cores one run is not a figure)
BENCH_REPEAT ?= 2
bench: venv controlplane
	$(BIN)/python -m bench --apps $(BENCH_APPS) $(BENCH_ARGS)

bench-curve: venv controlplane
	$(BIN)/python -m bench --apps 100 500 2000 --repeat $(BENCH_REPEAT) $(BENCH_ARGS)

# The operator image on kind (needs Docker and kind; cannot run on a machine without Docker).
kind-e2e:
	bash scripts/kind-e2e.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
