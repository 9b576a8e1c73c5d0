"""The live operator still produces every captured status shape (tests/fixtures/status/).

tests/gitops check the Argo CD health script and Flux's readers on objects captured from the
operator. This module drives the real operator into each state again and compares the shape
(status fields, condition types/statuses/reasons, generation) with the captured one, so a
change of the status fails here until the fixtures are re-captured and the GitOps checks
re-run on them:

    UPDATE_STATUS_FIXTURES=1 .venv/bin/pytest tests/e2e/test_status_fixtures.py
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import wait_for
from tests.e2e.conftest import Kubectl, apply_past_validation, operator_down
from tests.e2e.test_cron import cron_doc, last_run, start_run
from tests.e2e.test_expose import GATEWAY, GATEWAY_NS, write_parents
from tests.e2e.test_operator import app_doc, condition, ready
from tests.gatewayapi import install
from tests.gitops import argocd, kstatus, status_fixtures
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

#: more CPU than any fake node has (kwok nodes: 32): the pods stay Pending
# more CPU than any dev-cluster node has (the nodes are sized for thousands of pods)
UNSCHEDULABLE = {"requests": {"cpu": "100000"}, "limits": {"memory": "256Mi"}}


def _get(k: Kubectl, namespace: str) -> dict[str, Any] | None:
    return k.get("pythonapp", "shop", namespace)


def _with(k: Kubectl, namespace: str, kind: str, status: str, reason: str) -> Any:
    app = _get(k, namespace)
    c = condition(app, kind)
    observed = ((app or {}).get("status") or {}).get("observedGeneration")
    current = app and observed == app["metadata"]["generation"]
    return app if current and c.get("status") == status and c.get("reason") == reason else None


def capture_ready(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(app_doc(ns))
    app: dict[str, Any] = wait_for(lambda: ready(k, ns), 90, "Ready")
    return app


def _rolling_out(k: Kubectl, ns: str) -> dict[str, Any] | None:
    """A rollout waiting for room: the pods say why (Unschedulable), not stalled."""
    app = _with(k, ns, "Reconciling", "True", "Unschedulable")
    return app if app and app["status"].get("updatedReplicas") == 2 else None


def capture_rolling_out(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(app_doc(ns, resources=UNSCHEDULABLE))
    app: dict[str, Any] = wait_for(
        lambda: _rolling_out(k, ns), 90, "Reconciling=True Unschedulable"
    )
    return app


def capture_stalled_invalid_spec(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(app_doc(ns))
    wait_for(lambda: ready(k, ns), 90, "Ready before the bad update")
    apply_past_validation(k, app_doc(ns, image="python:latest"))
    app: dict[str, Any] = wait_for(
        lambda: _with(k, ns, "Stalled", "True", "InvalidSpec"), 60, "Stalled=True InvalidSpec"
    )
    return app


def capture_stalled_progress_deadline(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    """Pods that never schedule, and a progress deadline shortened behind the operator's back:
    the Deployment controller marks the rollout timed out at once and keeps it so (also after
    the operator puts its 600 s back), which the operator reports as Stalled, with the pods'
    own reason (Unschedulable) and the deadline said in the message."""
    k.apply(app_doc(ns, resources=UNSCHEDULABLE))
    wait_for(lambda: _rolling_out(k, ns), 90, "the rollout to start")

    def timed_out() -> dict[str, Any] | None:
        app = _with(k, ns, "Stalled", "True", "Unschedulable")
        dep = k.get("deployment", "shop", ns)
        if app is None and dep and dep["spec"]["progressDeadlineSeconds"] != 1:
            # again if the operator put its value back before the Deployment controller looked
            k.run(
                "patch", "deployment", "shop", "-n", ns, "--type=merge",
                "-p", '{"spec":{"progressDeadlineSeconds":1}}',
            )  # fmt: skip
        return app

    app: dict[str, Any] = wait_for(timed_out, 60, "Stalled=True Unschedulable past the deadline")
    assert condition(app, "Ready")["message"].endswith("exceeded its progress deadline.")
    return app


def capture_stale_generation(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(app_doc(ns))
    wait_for(lambda: ready(k, ns), 90, "Ready")
    with operator_down(op):
        k.apply(app_doc(ns, replicas=3))
        app = _get(k, ns)
    assert app is not None
    return app


def capture_no_status(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    with operator_down(op):
        k.apply(app_doc(ns))
        app = _get(k, ns)
    assert app is not None
    return app


@contextmanager
def exposing_operator(k: Kubectl, ns: str, op: OperatorProcess) -> Iterator[OperatorProcess]:
    """An operator that gives exposed apps HTTPRoutes (the Gateway API's CRD installed, a
    Gateway set) on ``ns``, the session's stopped meanwhile (tests/e2e/test_expose.py)."""
    install(k)
    log = Path(tempfile.mkdtemp(prefix="fixtures-operator-")) / "operator.log"
    args = [
        "--namespace", ns,
        "--leader-election-namespace", ns,
        "--leader-election-id", f"fixtures-{secrets.token_hex(3)}",
        "--gateway", f"{GATEWAY_NS}/{GATEWAY}",
    ]  # fmt: skip
    with operator_down(op):
        own = OperatorProcess(k.kubeconfig, log, args).wait_healthy()
        try:
            yield own
        finally:
            assert own.stop() == 0, own.tail()


def _route_waiting(k: Kubectl, ns: str) -> dict[str, Any] | None:
    app = ready(k, ns)
    route = ((app or {}).get("status") or {}).get("route") or {}
    return app if route.get("accepted") == "Unknown" and route.get("reason") == "Waiting" else None


def capture_ready_route_waiting(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    with exposing_operator(k, ns, op):
        k.apply(app_doc(ns, expose={"host": "shop.example.com"}))
        app: dict[str, Any] = wait_for(
            lambda: _route_waiting(k, ns), 90, "Ready with status.route Unknown"
        )
    return app


def capture_stalled_route_not_accepted(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    with exposing_operator(k, ns, op):
        k.apply(app_doc(ns, expose={"host": "shop.example.com"}))
        wait_for(lambda: _route_waiting(k, ns), 90, "Ready before the Gateway answers")
        write_parents(k, ns, "shop", "False", "NotAllowedByListeners")
        app: dict[str, Any] = wait_for(
            lambda: _with(k, ns, "Stalled", "True", "RouteNotAccepted"),
            60,
            "Stalled=True RouteNotAccepted",
        )
    return app


def capture_cron_scheduled(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(cron_doc(ns))
    wait_for(lambda: ready(k, ns), 90, "a scheduled app Ready")
    start_run(k, ns, "shop-run")
    wait_for(lambda: last_run(k, ns, "shop-run", "Succeeded"), 90, "the run Succeeded")
    app: dict[str, Any] = wait_for(lambda: _with(k, ns, "Ready", "True", "Scheduled"), 30, "Ready")
    return app


def capture_stalled_cron_run_failed(k: Kubectl, ns: str, op: OperatorProcess) -> dict[str, Any]:
    k.apply(cron_doc(ns, args=["PYTHONAPP_DEV_EXIT_CODE=2"]))
    wait_for(lambda: ready(k, ns), 90, "a scheduled app Ready")
    start_run(k, ns, "shop-run")
    app: dict[str, Any] = wait_for(
        lambda: _with(k, ns, "Stalled", "True", "RunFailed"), 120, "Stalled=True RunFailed"
    )
    return app


CAPTURE = {
    "ready-route-waiting": capture_ready_route_waiting,
    "stalled-route-not-accepted": capture_stalled_route_not_accepted,
    "ready": capture_ready,
    "rolling-out": capture_rolling_out,
    "stalled-invalid-spec": capture_stalled_invalid_spec,
    "stalled-progress-deadline": capture_stalled_progress_deadline,
    "stale-generation": capture_stale_generation,
    "no-status": capture_no_status,
    "cron-scheduled": capture_cron_scheduled,
    "stalled-cron-run-failed": capture_stalled_cron_run_failed,
}


def test_every_state_has_a_capture() -> None:
    assert set(CAPTURE) == set(status_fixtures.STATES)


def _verdicts(obj: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "obj.yaml"
    path.write_text(yaml.safe_dump(obj))
    (flux,) = kstatus.verdicts([path])
    return {
        "argocd": argocd.health(obj)["status"],
        "kstatus": flux["kstatus"]["status"],
        "healthCheckExprs": flux["healthCheckExprs"]["status"],
    }


@pytest.mark.parametrize("state", sorted(CAPTURE))
def test_live_operator_produces_the_captured_shape(
    operator: OperatorProcess, k: Kubectl, namespace: str, state: str, tmp_path: Path
) -> None:
    live = CAPTURE[state](k, namespace, operator)
    if status_fixtures.updating():
        status_fixtures.write(state, live)
    captured = status_fixtures.load(state)
    assert status_fixtures.shape(live) == status_fixtures.shape(captured), (
        f"the operator's {state!r} status changed shape: re-capture with "
        f"{status_fixtures.UPDATE_ENV}=1 and re-run tests/gitops (Argo CD, Flux) on it"
    )
    # and Argo CD and Flux read the live object as they read the captured one
    assert _verdicts(live, tmp_path) == _verdicts(captured, tmp_path)
