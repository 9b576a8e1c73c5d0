"""The fault suite (issue 17): faults under two operator replicas, zero invariant violations.

In `make test` a short run: a few apps per namespace, every fault once but the control
plane's. `make chaos` sets ``CHAOS_APPS`` and ``CHAOS_ROUNDS`` higher (``CHAOS_SEED`` replays
a run) and ``CHAOS_CONTROL_PLANE=1``: kube-apiserver and etcd SIGKILLed and repaired by
`pythonapp dev up`. Those stay out of `make test` because the repair itself failed once in a
CI run (the dev cluster was started afresh, with a new CA and ports, instead of repaired: a
devcluster matter, under investigation, not the operator's), and a fault suite that is
flaky for its cluster's sake would block every landing. Either way
the report is written to build/chaos/ (report.json, summary.md) and the test fails on any
violation, naming each. The harness and the invariants: tests/e2e/chaos.py.

The run has a dev cluster of its own (the session's state dir with ``-chaos`` appended): its
faults kill kube-apiserver and etcd, and a cluster that did not come back must never take the
rest of the session down with it; nor may the session's operator act on the run's apps. With
``KUBECONFIG_E2E`` (another cluster) the run uses that cluster, without the control-plane
faults, and stops the session's operator meanwhile.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from kubernetes import config
from tests.conftest import KEEP_ENV, Cluster
from tests.e2e.chaos import Chaos, Fault, summary
from tests.e2e.conftest import ROOT, Kubectl, operator_down
from tests.operator_process import OperatorProcess

from pythonapp_operator import devcluster
from pythonapp_operator.controller.client import RestApi
from pythonapp_operator.devcluster import binaries
from pythonapp_operator.devcluster.paths import STATE_ENV

REPORT_DIR = ROOT / "build" / "chaos"


@contextmanager
def chaos_cluster(cluster: Cluster) -> Iterator[tuple[Kubectl, Path | None]]:
    """(kubectl, state dir) of the cluster the run may break; the CRD installed."""
    if not cluster.is_devcluster:
        yield Kubectl(Path("kubectl"), cluster.kubeconfig), None
        return
    state = Path(os.environ[STATE_ENV] + "-chaos")
    devcluster.up(state_dir=state, log=print)
    found = binaries.find()
    assert found is not None, "the control plane's binaries: `make controlplane`"
    k = Kubectl(found.kubectl, devcluster.kubeconfig_path(state))
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds/pythonapps.yaml"))
    k.run("wait", "--for=condition=Established", "crd/pythonapps.pythonapp.dev", "--timeout=60s")
    try:
        yield k, state
    finally:
        if os.environ.get(KEEP_ENV, "1") == "0":
            devcluster.down(state)


def test_faults_leave_every_invariant_holding(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    apps = int(os.environ.get("CHAOS_APPS", "4"))
    rounds = int(os.environ.get("CHAOS_ROUNDS", "1"))
    seed = int(os.environ.get("CHAOS_SEED", str(random.SystemRandom().randrange(10**6))))
    env = {"PYTHONAPP_RESYNC_SECONDS": "60", "PYTHONAPP_BACKOFF_MAX_SECONDS": "4"}
    with ExitStack() as stack:
        k, state = stack.enter_context(chaos_cluster(cluster))
        if state is None:  # the session's cluster: its operator must not act on the run's apps
            stack.enter_context(operator_down(request.getfixturevalue("operator")))
        namespaces = [f"t-chaos-{i}-{secrets.token_hex(3)}" for i in range(3)]
        for ns in namespaces:
            k.run("create", "namespace", ns)
        api = RestApi(config.new_client_from_config(config_file=str(k.kubeconfig)))
        run = Chaos(k, api, namespaces, tmp_path, seed, apps, state_dir=state)
        if state is None or os.environ.get("CHAOS_CONTROL_PLANE", "0") != "1":
            kept = [f for f in run.FAULTS if f not in ("restart_apiserver", "restart_etcd")]
            run.FAULTS = tuple(kept)
        operators: list[OperatorProcess] = run.operators
        try:
            run.start_operators(env)
            run.create_apps()
            start = Fault("start", "the apps created")
            first = run.settle(start) + start.violations
            assert not first, f"the apps never converged before any fault: {first[:10]}"
            run.run(rounds)
        finally:
            for op in operators:
                op.stop()
            report = run.report()
            REPORT_DIR.mkdir(parents=True, exist_ok=True)
            (REPORT_DIR / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            (REPORT_DIR / "summary.md").write_text(summary(report))
            print("\n" + summary(report))
            for ns in run.namespaces:
                k.run("delete", "namespace", ns, "--wait=false", check=False)
    if report["violations"]:
        logs = "\n".join(f"--- {op.log.name}\n{op.tail()[-1500:]}" for op in operators)
        pytest.fail(f"{summary(report)}\n{logs}", pytrace=False)
