"""The operator against a real API server, running as a real process (`pythonapp operator`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl, apply_past_validation
from tests.operator_process import OperatorProcess

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.compare import HASH_ANNOTATION, desired_hash, is_subset
from pythonapp_operator.controller.rollouts import stamp
from pythonapp_operator.render import render

pytestmark = pytest.mark.cluster

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32
Wait = Callable[..., Any]


def app_doc(namespace: str, name: str = "shop", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": f"ghcr.io/acme/shop:1.0.0@{DIGEST_A}",
            "replicas": 2,
            "resources": {"limits": {"memory": "256Mi"}},
        },
    }
    base["spec"].update(spec)
    return base


def condition(app: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((app or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def ready(k: Kubectl, namespace: str, name: str = "shop") -> dict[str, Any] | None:
    app = k.get("pythonapp", name, namespace)
    if (
        app
        and condition(app, "Ready").get("status") == "True"
        and app["status"].get("observedGeneration") == app["metadata"]["generation"]
    ):
        return app
    return None


def events(k: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        k.run("get", "events", "-n", namespace, "-o", "json").stdout
    )["items"]
    return items


def owned_by(k: Kubectl, namespace: str, uid: str) -> set[tuple[str, str]]:
    """(kind, name) of every object in the namespace whose controller is ``uid``."""
    kinds = ",".join(
        (
            "deployments,replicasets,services,serviceaccounts,poddisruptionbudgets",
            "networkpolicies,configmaps,secrets,jobs,horizontalpodautoscalers",
        )
    )
    items = json.loads(k.run("get", kinds, "-n", namespace, "-o", "json").stdout)["items"]
    return {
        (item["kind"], item["metadata"]["name"])
        for item in items
        for ref in item["metadata"].get("ownerReferences") or []
        if ref.get("uid") == uid and ref.get("controller")
    }


def test_apply_creates_exactly_the_rendered_children_and_becomes_ready(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    doc = app_doc(namespace)
    k.apply(doc)
    app = wait(lambda: ready(k, namespace), 90, "PythonApp Ready=True")
    uid = app["metadata"]["uid"]
    # Exactly these children, written out here rather than taken from the renderer, and no
    # other object in the namespace controlled by the app.
    assert owned_by(k, namespace, uid) == {
        ("Deployment", "shop"),
        ("ServiceAccount", "shop"),
        ("Service", "shop"),
        ("PodDisruptionBudget", "shop"),
        ("NetworkPolicy", "shop"),
    }
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == doc["spec"]["image"]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    )
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "shop"
    # and the renderer's own view agrees, with the operator's hash on each child (and its
    # records of what the Deployment was rendered from: controller/rollouts.py)
    parsed, problems = validate_document({**app, "status": None})
    assert parsed is not None, problems
    for rendered in render(parsed):
        desired = stamp(rendered, app["metadata"]["generation"])
        live = wait(lambda d=desired: k.get(d["kind"], "shop", namespace), 30, desired["kind"])
        assert is_subset(desired, live), f"{desired['kind']} differs from the render"
        assert live["metadata"]["annotations"][HASH_ANNOTATION] == desired_hash(desired)
        (ref,) = live["metadata"]["ownerReferences"]
        assert ref["uid"] == uid and ref["controller"] is True
    status = app["status"]
    assert status["ready"] == "2/2"
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 2
    assert status["image"] == doc["spec"]["image"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    printed = k.run("get", "pyapp", "-n", namespace).stdout
    assert (
        "shop:1.0.0@sha256:a1a1a1a1a1a1" in printed and "2/2" in printed and "Available" in printed
    )


def test_new_digest_rolls_out_and_status_follows(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "first Ready")
    new_image = f"ghcr.io/acme/shop:1.1.0@{DIGEST_B}"
    k.apply(app_doc(namespace, image=new_image))
    app = wait(
        lambda: (a := ready(k, namespace)) and a["status"].get("image") == new_image and a,
        120,
        "status to follow the new digest",
    )
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == new_image
    assert dep["status"]["updatedReplicas"] == 2
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"] == 2


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"python:latest@{DIGEST_A}", "uses the tag 'latest'"),
        ("python:3.12", "must be pinned by digest"),
        ("python", "must be pinned by digest"),
    ],
)
def test_api_server_refuses_latest_and_digestless_images(
    crd: None, k: Kubectl, namespace: str, image: str, expected: str
) -> None:
    proc = k.apply(app_doc(namespace, image=image), check=False)
    assert proc.returncode != 0
    assert "spec.image" in proc.stderr and expected in proc.stderr, proc.stderr
    assert k.get("pythonapp", "shop", namespace) is None


def test_invalid_object_that_bypassed_validation_is_stalled_and_deployment_untouched(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready before the bad update")
    before = k.get("deployment", "shop", namespace)
    assert before is not None
    apply_past_validation(k, app_doc(namespace, image="python:latest"))
    app = wait(
        lambda: (
            (a := k.get("pythonapp", "shop", namespace))
            and condition(a, "Stalled").get("status") == "True"
            and a
        ),
        60,
        "Stalled=True",
    )
    stalled = condition(app, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "spec.image" in stalled["message"] and "pinned by digest" in stalled["message"]
    assert condition(app, "Ready")["status"] == "False"
    after = k.get("deployment", "shop", namespace)
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    warnings = [e for e in events(k, namespace) if e["reason"] == "InvalidSpec"]
    assert warnings and warnings[0]["type"] == "Warning"


def test_drift_is_put_back_with_an_event_and_rollout_restart_survives(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    doc = app_doc(namespace)
    k.apply(doc)
    wait(lambda: ready(k, namespace), 90, "Ready")
    k.run("rollout", "restart", "deployment/shop", "-n", namespace)
    k.run("set", "image", "deployment/shop", f"app=ghcr.io/evil/x@{DIGEST_B}", "-n", namespace)

    def put_back() -> dict[str, Any] | None:
        dep = k.get("deployment", "shop", namespace)
        image = dep and dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return dep if image == doc["spec"]["image"] else None

    dep = wait(put_back, 30, "the image to be put back")
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    wait(
        lambda: any(
            e["reason"] == "DriftCorrected" and e["type"] == "Normal" for e in events(k, namespace)
        ),
        20,
        "a DriftCorrected event",
    )
    # a spec change later re-applies the Deployment: the restart annotation is still kept
    k.apply(app_doc(namespace, env=[{"name": "LOG_LEVEL", "value": "debug"}]))
    wait(lambda: ready(k, namespace), 90, "Ready after the env change")
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "LOG_LEVEL", "value": "debug"}
    ]


@pytest.mark.parametrize("kind", ["deployment", "service", "networkpolicy"])
def test_deleted_child_is_recreated(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, kind: str
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    old = k.get(kind, "shop", namespace)
    assert old is not None
    k.run("delete", kind, "shop", "-n", namespace, "--wait=true")
    new = wait(
        lambda: (
            (o := k.get(kind, "shop", namespace))
            and o["metadata"]["uid"] != old["metadata"]["uid"]
            and o
        ),
        60,
        f"{kind} to be recreated",
    )
    assert new["metadata"]["ownerReferences"][0]["controller"] is True


def test_switching_to_worker_removes_the_service(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    assert k.get("service", "shop", namespace) is not None
    k.apply(app_doc(namespace, profile="worker"))
    wait(lambda: k.get("service", "shop", namespace) is None, 30, "the Service to go")
    wait(lambda: ready(k, namespace), 90, "Ready as a worker")
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    assert "ports" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_deleting_the_app_removes_its_children(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    app = k.get("pythonapp", "shop", namespace)
    assert app is not None and not app["metadata"].get("finalizers")
    k.run("delete", "pythonapp", "shop", "-n", namespace, "--wait=true", "--timeout=30s")
    for kind in ("deployment", "service", "serviceaccount", "poddisruptionbudget", "networkpolicy"):
        wait(
            lambda kind=kind: k.get(kind, "shop", namespace) is None, 60, f"{kind} to be collected"
        )


def test_no_secret_value_in_logs_status_or_events(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    value = "s3cr3t-" + namespace
    k.run(
        "create",
        "secret",
        "generic",
        "shop-db",
        f"--from-literal=password={value}",
        "-n",
        namespace,
    )
    k.apply(
        app_doc(
            namespace,
            secrets=[{"name": "shop-db", "env": [{"name": "DB_PASSWORD", "key": "password"}]}],
        )
    )
    app = wait(lambda: ready(k, namespace), 90, "Ready")
    dep = k.get("deployment", "shop", namespace)
    assert value not in json.dumps(dep)
    assert value not in json.dumps(app)
    assert value not in json.dumps(events(k, namespace))
    assert value not in Path(operator.log).read_text()
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]  # type: ignore[index]
    assert env == [
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}},
        }
    ]


def test_restarted_operator_makes_zero_writes(
    operator: OperatorProcess,
    k: Kubectl,
    namespace: str,
    wait: Wait,
    audit_writes: Callable[..., int],
) -> None:
    started = time.time()
    for name in ("shop", "cart"):
        k.apply(app_doc(namespace, name=name))
    for name in ("shop", "cart"):
        wait(lambda name=name: ready(k, namespace, name), 90, f"{name} Ready")
    time.sleep(3)  # let the last status patches settle
    before = {
        name: k.get("pythonapp", name, namespace)["metadata"]["resourceVersion"]
        for name in ("shop", "cart")
    }  # type: ignore[index]
    # the counter sees the operator's writes: creating two apps took at least 2 x 5 applies
    assert audit_writes(namespace, since=started) >= 10
    mark = time.time()
    assert operator.restart() == 0, "operator did not exit cleanly on SIGTERM"
    operator.wait_caught_up()  # listed everything, reconciled every app: all it will do
    metrics = operator.metrics()
    assert metrics["pythonapp_cache_objects{kind=PythonApp}"] >= 2  # it did see the apps
    assert metrics["controller_runtime_reconcile_total{controller=pythonapp,result=success}"] >= 2
    writes = audit_writes(namespace, since=mark)
    assert writes == 0, f"the restarted operator wrote {writes} times in {namespace}"
    after = {
        name: k.get("pythonapp", name, namespace)["metadata"]["resourceVersion"]
        for name in ("shop", "cart")
    }  # type: ignore[index]
    assert after == before
