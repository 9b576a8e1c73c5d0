"""The fault suite (issue 17): faults under two operator replicas, zero invariant violations.

In `make test` a short run: a few apps per namespace, every fault once. `make chaos` sets
``CHAOS_APPS`` and ``CHAOS_ROUNDS`` higher (and ``CHAOS_SEED`` to replay a run). Either way
the report is written to build/chaos/ (report.json, summary.md) and the test fails on any
violation, naming each. The harness and the invariants: tests/e2e/chaos.py.

The session's own operator (cluster-wide) is stopped for the run: it would reconcile the run's
namespaces too.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from kubernetes import client
from tests.conftest import Cluster, _delete_namespace, _fresh_namespace
from tests.e2e.chaos import Chaos, summary
from tests.e2e.conftest import Kubectl, operator_down
from tests.operator_process import OperatorProcess

from pythonapp_operator.controller.client import RestApi

ROOT = Path(__file__).resolve().parents[2]
REPORT_DIR = ROOT / "build" / "chaos"


def test_faults_leave_every_invariant_holding(  # noqa: PLR0917 (fixtures)
    crd: None,
    k: Kubectl,
    api_client: client.ApiClient,
    cluster: Cluster,
    operator: OperatorProcess,
    core_v1: client.CoreV1Api,
    tmp_path: Path,
) -> None:
    apps = int(os.environ.get("CHAOS_APPS", "4"))
    rounds = int(os.environ.get("CHAOS_ROUNDS", "1"))
    seed = int(os.environ.get("CHAOS_SEED", str(random.SystemRandom().randrange(10**6))))
    namespaces = [_fresh_namespace(f"chaos-{i}", core_v1) for i in range(3)]
    run = Chaos(
        k,
        RestApi(api_client),
        namespaces,
        tmp_path,
        seed,
        apps,
        state_dir=cluster.state_dir if cluster.is_devcluster else None,
    )
    if not cluster.is_devcluster:
        run.FAULTS = tuple(f for f in run.FAULTS if f not in ("restart_apiserver", "restart_etcd"))
    env = {"PYTHONAPP_RESYNC_SECONDS": "60", "PYTHONAPP_BACKOFF_MAX_SECONDS": "4"}
    with operator_down(operator):
        try:
            run.start_operators(env)
            run.create_apps()
            first = run.settle()
            assert not first, f"the apps never converged before any fault: {first[:10]}"
            run.run(rounds)
        finally:
            for op in run.operators:
                op.stop()
            report = run.report()
            REPORT_DIR.mkdir(parents=True, exist_ok=True)
            (REPORT_DIR / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            (REPORT_DIR / "summary.md").write_text(summary(report))
            print("\n" + summary(report))
            for ns in namespaces:
                _delete_namespace(ns, core_v1)
    if report["violations"]:
        logs = "\n".join(f"--- {op.log.name}\n{op.tail()[-1500:]}" for op in run.operators)
        pytest.fail(f"{summary(report)}\n{logs}", pytrace=False)
