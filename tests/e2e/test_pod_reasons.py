"""Why isn't it running: what the pods say, on the PythonApp, on the real API server.

The kwok nodes run nothing, so the causes here are the ones the control plane itself reports
(the scheduler's Unschedulable for a node too small, the ReplicaSet controller's FailedCreate
for a ResourceQuota), and a crash loop written on a pod's status as the kubelet writes it (a
phase kwok leaves alone). Each verdict must show within seconds (the time is recorded as a
test property, not asserted), clear by itself when the cause goes, be posted once as a Warning,
and pod status churn must not become PythonApp writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_controller import warnings
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
Record = Callable[[str, object], None]


def reason_is(k: Kubectl, namespace: str, reason: str) -> dict[str, Any] | None:
    app = k.get("pythonapp", "shop", namespace)
    return app if condition(app, "Ready").get("reason") == reason else None


def timed(wait: Wait, check: Callable[[], Any], bound: float, what: str) -> tuple[Any, float]:
    started = time.monotonic()
    found = wait(check, bound, what)
    return found, round(time.monotonic() - started, 2)


def test_a_node_too_small_says_unschedulable_in_the_schedulers_words(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, record_property: Record
) -> None:
    huge = {"requests": {"cpu": "4000"}, "limits": {"memory": "256Mi"}}
    k.apply(app_doc(namespace, resources=huge))
    app, took = timed(wait, lambda: reason_is(k, namespace, "Unschedulable"), 60, "Unschedulable")
    record_property("unschedulable_seconds", took)

    def both() -> dict[str, Any] | None:
        found = reason_is(k, namespace, "Unschedulable")
        said = condition(found, "Ready").get("message", "")
        return found if said.startswith("2 of 2 pods: Unschedulable: 0/") else None

    app = wait(both, 30, "both pods counted")  # the second pod may come a moment later
    message = condition(app, "Ready")["message"]
    assert "Insufficient cpu" in message, message
    assert condition(app, "Stalled")["status"] == "False"  # room may come: not stalled
    assert condition(app, "Reconciling")["status"] == "True"
    k.apply(app_doc(namespace))  # a size that fits
    wait(lambda: ready(k, namespace), 90, "Ready once the pods fit")
    assert len(warnings(k, namespace, "Unschedulable")) == 1


def test_a_quota_refusing_pods_says_failedcreate_from_the_replicaset(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, record_property: Record
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": namespace},
        "spec": {"hard": {"pods": "0"}},
    }
    k.apply(quota)
    k.apply(app_doc(namespace))
    app, took = timed(wait, lambda: reason_is(k, namespace, "FailedCreate"), 60, "FailedCreate")
    record_property("failedcreate_seconds", took)
    message = condition(app, "Stalled")["message"]
    assert condition(app, "Stalled")["status"] == "True"
    assert "exceeded quota: no-pods" in message, message
    k.run("delete", "resourcequota", "no-pods", "-n", namespace)
    wait(lambda: ready(k, namespace), 180, "Ready once the quota is gone")


def _pods(k: Kubectl, namespace: str) -> list[dict[str, Any]]:
    out = k.run(
        "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=shop", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def _as_kubelet(k: Kubectl, namespace: str, pod: str, status: dict[str, Any]) -> None:
    k.run(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _crashing(pod: dict[str, Any], restarts: int, finished: str) -> dict[str, Any]:
    """A pod's status as the kubelet writes it for an OOM-killed container in back-off, in the
    shape captured from the real node's kubelet (tests/fixtures/pods/crashloopbackoff.json and
    oomkilled.json): what moves between writes is the restart count, the back-off's words and
    the last termination's container id and times."""
    meta = pod["metadata"]
    not_ready = {
        "status": "False",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [app]",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-12-07T00:00:00Z",
    }
    back_off = min(10 * 2 ** (restarts - 1), 300)
    return {
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", **not_ready},
            {"type": "ContainersReady", **not_ready},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {
                "name": "app",
                "image": pod["spec"]["containers"][0]["image"],
                "imageID": "",
                "containerID": f"containerd://{restarts:064x}",
                "ready": False,
                "started": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {back_off}s restarting failed container=app "
                        f"pod={meta['name']}_{meta['namespace']}({meta['uid']})",
                    }
                },
                "lastState": {
                    "terminated": {
                        "containerID": f"containerd://{restarts:064x}",
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "startedAt": "2026-12-07T00:00:00Z",
                        "finishedAt": finished,
                    }
                },
            }
        ],
    }


def _healthy(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": t, "status": "True"}
            for t in ("Ready", "ContainersReady", "PodScheduled", "Initialized")
        ],
        "containerStatuses": [
            {
                "name": "app",
                "image": pod["spec"]["containers"][0]["image"],
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": 3,
                "state": {"running": {"startedAt": "2026-12-07T00:00:10Z"}},
            }
        ],
    }


def test_a_crash_loop_names_oomkilled_without_churn_and_clears(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, record_property: Record
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    pod = _pods(k, namespace)[0]
    name = pod["metadata"]["name"]
    _as_kubelet(k, namespace, name, _crashing(pod, 1, "2026-12-07T00:00:01Z"))
    app, took = timed(
        wait, lambda: reason_is(k, namespace, "CrashLoopBackOff"), 60, "CrashLoopBackOff"
    )
    record_property("crashloop_seconds", took)
    message = condition(app, "Ready")["message"]
    assert message.startswith("1 of 2 pods: CrashLoopBackOff: container app was OOMKilled")
    assert "exit code 137" in message and condition(app, "Stalled")["status"] == "True"
    # the kubelet keeps writing (restarts, back-off, probe times): no PythonApp write for it
    version = app["metadata"]["resourceVersion"]
    for restarts in (2, 3, 4):
        _as_kubelet(k, namespace, name, _crashing(pod, restarts, f"2026-12-07T00:00:0{restarts}Z"))
    time.sleep(3)  # the operator gathers status changes for 1 s: give it three
    after = k.get("pythonapp", "shop", namespace)
    assert after is not None and after["metadata"]["resourceVersion"] == version
    assert len(warnings(k, namespace, "CrashLoopBackOff")) == 1
    _as_kubelet(k, namespace, name, _healthy(pod))
    wait(lambda: ready(k, namespace), 60, "Ready once the container runs again")


def test_a_namespace_enforcing_restricted_admits_every_rendered_pod(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.run(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    k.apply(app_doc(namespace))
    k.apply(app_doc(namespace, name="jobs", profile="worker"))
    wait(lambda: ready(k, namespace), 90, "the web app Ready under restricted")
    wait(lambda: ready(k, namespace, "jobs"), 90, "the worker Ready under restricted")
    assert not warnings(k, namespace, "FailedCreate")


def test_pods_refused_by_admission_say_failedcreate_in_its_words(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "small", "namespace": namespace},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "128Mi"}}]},
    }
    k.apply(limits)
    k.apply(app_doc(namespace))  # limits.memory 256Mi: over the namespace's maximum
    app = wait(lambda: reason_is(k, namespace, "FailedCreate"), 60, "FailedCreate")
    message = condition(app, "Ready")["message"]
    assert "maximum memory usage per Container is 128Mi" in message, message
    k.apply(app_doc(namespace, resources={"limits": {"memory": "128Mi"}}))
    wait(lambda: ready(k, namespace), 120, "Ready with a limit the namespace allows")
