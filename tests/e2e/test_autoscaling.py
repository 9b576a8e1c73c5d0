"""Autoscaling without a fight, and the /scale subresource, on the real API server.

The dev cluster has no metrics-server, so its HorizontalPodAutoscaler computes no metric and
changes nothing while the count is within its range; the autoscaler's write is simulated the
way it makes it: a write to the Deployment's /scale subresource under a field manager of its
own. A person's is ``kubectl scale deployment``.

What must hold: switching autoscaling on keeps the running count (server-side apply would
drop a field its only manager stops applying, to the Deployment default of one pod: the
operator hands the field over first); the count the autoscaler or a person set is left alone
over spec changes (each re-applies the Deployment) and an operator restart (a full compare,
with zero writes); switching off applies ``spec.replicas`` again; on -> off -> on keeps the
count. ``kubectl scale pyapp`` works through the PythonApp's /scale subresource while
autoscaling is off, and the CRD's transition rule refuses it while autoscaling is on: the API
server runs CEL on a /scale write too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator import GROUP, PLURAL, VERSION
from pythonapp_operator.api.models import MSG_REPLICAS_AUTOSCALED
from pythonapp_operator.controller.client import FIELD_MANAGER, HANDOVER_MANAGER
from pythonapp_operator.render import SCALED_BY_ANNOTATION

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
AUTOSCALING = {"minReplicas": 2, "maxReplicas": 10}
#: the start of the refusal, as the API server words it (it re-wraps long messages)
REFUSAL = MSG_REPLICAS_AUTOSCALED.split(":", 1)[0]


def doc_without_replicas(namespace: str, **spec: Any) -> dict[str, Any]:
    doc = app_doc(namespace, **spec)
    del doc["spec"]["replicas"]
    return doc


def deployment(k: Kubectl, namespace: str) -> dict[str, Any]:
    """The Deployment with its managedFields (kubectl hides them unless asked)."""
    proc = k.run(
        "get", "deployment", "shop", "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    dep: dict[str, Any] = json.loads(proc.stdout)
    return dep


def replicas_managers(dep: dict[str, Any]) -> set[str]:
    """The field managers holding the Deployment's spec.replicas."""
    return {
        entry["manager"]
        for entry in dep["metadata"].get("managedFields") or []
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    }


def scale_deployment(apps_v1: client.AppsV1Api, namespace: str, replicas: int) -> None:
    """What the HPA controller does: a write to the Deployment's /scale, its own manager."""
    apps_v1.patch_namespaced_deployment_scale(
        "shop",
        namespace,
        {"spec": {"replicas": replicas}},
        field_manager="simulated-hpa",
        _content_type="application/merge-patch+json",
    )


def switched_on(k: Kubectl, namespace: str) -> dict[str, Any] | None:
    """The Deployment once the operator applied it for autoscaling (and the HPA exists)."""
    dep = deployment(k, namespace)
    annotations = dep["metadata"].get("annotations") or {}
    if annotations.get(SCALED_BY_ANNOTATION) and k.get("hpa", "shop", namespace):
        return dep
    return None


def env_applied(k: Kubectl, namespace: str, value: str) -> dict[str, Any] | None:
    dep = deployment(k, namespace)
    env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return dep if {"name": "MARK", "value": value} in env else None


def test_autoscaling_on_off_on_keeps_the_count_and_the_operator_leaves_the_hpas(
    operator: OperatorProcess,
    k: Kubectl,
    apps_v1: client.AppsV1Api,
    namespace: str,
    *,
    wait: Wait,
    audit_writes: Callable[..., int],
) -> None:
    k.apply(app_doc(namespace, replicas=3))
    wait(lambda: ready(k, namespace), 90, "Ready at 3")
    assert FIELD_MANAGER in replicas_managers(deployment(k, namespace))

    # on: replicas leaves the spec in the same change (the transition rule allows that)
    k.apply(doc_without_replicas(namespace, autoscaling=AUTOSCALING))
    dep = wait(lambda: switched_on(k, namespace), 60, "the Deployment applied for autoscaling")
    assert dep["spec"]["replicas"] == 3, "switching autoscaling on changed the running count"
    managers = replicas_managers(dep)
    assert FIELD_MANAGER not in managers and HANDOVER_MANAGER in managers, managers
    hpa = k.get("hpa", "shop", namespace)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "shop",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "PythonApp"
    assert k.get("pdb", "shop", namespace) is not None  # minReplicas 2: a budget

    # the autoscaler scales; a spec change re-applies the Deployment and leaves the count
    scale_deployment(apps_v1, namespace, 5)
    k.apply(
        doc_without_replicas(
            namespace, autoscaling=AUTOSCALING, env=[{"name": "MARK", "value": "1"}]
        )
    )
    dep = wait(lambda: env_applied(k, namespace, "1"), 60, "the env change applied")
    assert dep["spec"]["replicas"] == 5
    # the autoscaler holds it (with the hand-over manager, at the same count): not the operator
    assert replicas_managers(dep) <= {"simulated-hpa", HANDOVER_MANAGER}
    assert "simulated-hpa" in replicas_managers(dep)
    wait(lambda: ready(k, namespace), 90, "Ready at 5")

    # a person scales; an operator restart compares everything afresh and writes nothing
    k.run("scale", "deployment/shop", "--replicas", "6", "-n", namespace)
    wait(lambda: ready(k, namespace), 90, "Ready at 6")
    time.sleep(3)  # let the last status patches settle (as test_restarted_operator_...)
    mark = time.time()
    assert operator.restart() == 0, "operator did not exit cleanly on SIGTERM"
    operator.wait_caught_up()
    assert audit_writes(namespace, since=mark) == 0, "the restarted operator wrote"
    assert deployment(k, namespace)["spec"]["replicas"] == 6

    # off: spec.replicas applies again, the HPA goes, the operator holds the field again
    k.apply(app_doc(namespace, replicas=4, env=[{"name": "MARK", "value": "2"}]))

    def switched_off() -> dict[str, Any] | None:
        dep = env_applied(k, namespace, "2")
        if dep is None or k.get("hpa", "shop", namespace) is not None:
            return None
        return dep if dep["spec"]["replicas"] == 4 else None

    dep = wait(switched_off, 60, "autoscaling off: replicas 4, no HPA")
    assert SCALED_BY_ANNOTATION not in (dep["metadata"].get("annotations") or {})
    assert FIELD_MANAGER in replicas_managers(dep)

    # on again: the count stays (a second hand-over), and stays over a reconcile
    k.apply(
        doc_without_replicas(
            namespace, autoscaling=AUTOSCALING, env=[{"name": "MARK", "value": "3"}]
        )
    )
    dep = wait(lambda: switched_on(k, namespace), 60, "autoscaling on again")
    assert dep["spec"]["replicas"] == 4
    k.apply(
        doc_without_replicas(
            namespace, autoscaling=AUTOSCALING, env=[{"name": "MARK", "value": "4"}]
        )
    )
    dep = wait(lambda: env_applied(k, namespace, "4"), 60, "another env change applied")
    assert dep["spec"]["replicas"] == 4
    wait(lambda: ready(k, namespace), 90, "Ready at 4")


def test_a_new_autoscaled_app_starts_at_the_autoscalers_floor(
    operator: OperatorProcess, k: Kubectl, namespace: str, *, wait: Wait
) -> None:
    """Created at minReplicas, not at the API server's default of one pod that the HPA raises
    a sync later (a second rollout step and a moment below the floor)."""
    floor = {"minReplicas": 3, "maxReplicas": 6}
    k.apply(doc_without_replicas(namespace, autoscaling=floor))
    wait(lambda: ready(k, namespace), 90, "Ready at the floor")
    dep = deployment(k, namespace)
    assert dep["spec"]["replicas"] == 3
    # one spec write only: nobody (the HPA) had to raise the count after the creation
    assert dep["metadata"]["generation"] == 1, dep["metadata"]
    # a later apply without replicas lets go of the field and the count stays (hand-over)
    k.apply(
        doc_without_replicas(namespace, autoscaling=floor, env=[{"name": "MARK", "value": "1"}])
    )
    dep = wait(lambda: env_applied(k, namespace, "1"), 60, "the env change applied")
    assert dep["spec"]["replicas"] == 3
    assert FIELD_MANAGER not in replicas_managers(dep), replicas_managers(dep)


def scale_of(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    scale: dict[str, Any] = custom.get_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, "shop"
    )
    return scale


def test_kubectl_scale_pyapp_works_unless_autoscaling_is_on(
    operator: OperatorProcess,
    k: Kubectl,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    wait: Wait,
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    k.run("scale", "pyapp", "shop", "--replicas", "5", "-n", namespace)
    wait(lambda: deployment(k, namespace)["spec"]["replicas"] == 5, 60, "the Deployment at 5")

    def scaled() -> dict[str, Any] | None:
        scale = scale_of(custom_objects, namespace)
        return scale if scale["status"].get("replicas") == 5 else None

    scale = wait(scaled, 90, "the PythonApp's /scale to report 5 pods")
    assert scale["spec"]["replicas"] == 5
    assert scale["status"]["selector"] == (
        "app.kubernetes.io/instance=shop,app.kubernetes.io/name=shop"
    )

    k.apply(doc_without_replicas(namespace, autoscaling=AUTOSCALING))
    wait(lambda: switched_on(k, namespace), 60, "the Deployment applied for autoscaling")
    refused = k.run("scale", "pyapp", "shop", "--replicas", "7", "-n", namespace, check=False)
    assert refused.returncode != 0
    assert REFUSAL in " ".join(refused.stderr.split()), refused.stderr
    with pytest.raises(ApiException) as caught:
        custom_objects.patch_namespaced_custom_object_scale(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "shop",
            {"spec": {"replicas": 7}},
            _content_type="application/merge-patch+json",
        )
    assert caught.value.status == 422
    assert REFUSAL in str(caught.value.body)
    assert scale_of(custom_objects, namespace)["spec"]["replicas"] == 5
    assert deployment(k, namespace)["spec"]["replicas"] == 5
    # the HPA is garbage-collected with its app, like every child
    k.run("delete", "pyapp", "shop", "-n", namespace, "--wait=true")
    wait(lambda: k.get("hpa", "shop", namespace) is None, 60, "the HPA collected")
