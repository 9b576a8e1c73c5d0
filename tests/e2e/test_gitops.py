"""GitOps fit on the real API server: the operator writes nothing but a PythonApp's status,
tracking labels stay on the PythonApp, `kubectl` shows and waits on what the docs say, and the
Argo CD health check installs as documented."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl, operator_down
from tests.e2e.test_cron import cron_doc
from tests.e2e.test_operator import app_doc, condition, ready
from tests.gitops.argocd import HEALTH_LUA, KEY, PATCH
from tests.operator_process import OperatorProcess

from pythonapp_operator.controller.kinds import CHILD_KINDS
from pythonapp_operator.devcluster import audit
from pythonapp_operator.render import pod_template

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]

#: what Argo CD (label and annotation tracking), Flux and a user put on a PythonApp
PARENT_LABELS = {
    "app.kubernetes.io/instance": "gitops-apps",
    "argocd.argoproj.io/instance": "gitops-apps",
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    "team": "payments",
}
PARENT_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id": "gitops-apps:pythonapp.dev/PythonApp:demo/shop",
    "argocd.argoproj.io/sync-wave": "2",
    "example.com/owner": "payments@example.com",
}


def tracked(doc: dict[str, Any]) -> dict[str, Any]:
    meta = {**doc["metadata"], "labels": PARENT_LABELS, "annotations": PARENT_ANNOTATIONS}
    return {**doc, "metadata": meta}


def test_operator_writes_only_the_status_of_a_pythonapp(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, audit_log: Path
) -> None:
    started = time.time()
    k.apply(tracked(app_doc(namespace)))
    wait(lambda: ready(k, namespace), 90, "Ready")
    k.apply(tracked(app_doc(namespace, replicas=3)))
    app = wait(
        lambda: (a := ready(k, namespace)) and a["status"].get("readyReplicas") == 3 and a,
        90,
        "Ready with 3 replicas",
    )
    shown = k.run(
        "get", "pythonapp", "shop", "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    meta = json.loads(shown.stdout)["metadata"]
    assert meta["uid"] == app["metadata"]["uid"]
    assert meta["generation"] == 2, "only the two applies may change the spec"
    assert meta["labels"] == PARENT_LABELS
    assert meta["annotations"] == PARENT_ANNOTATIONS
    assert not meta.get("finalizers") and not meta.get("ownerReferences")
    managers = {
        (e["manager"], e["operation"], e.get("subresource", "")) for e in meta["managedFields"]
    }
    assert ("kubectl", "Apply", "") in managers
    others = [
        e for e in meta["managedFields"] if (e["manager"], e["operation"]) != ("kubectl", "Apply")
    ]
    assert others, "the operator's status writes should show in managedFields"
    for entry in others:
        assert entry.get("subresource") == "status", entry
        assert set(entry["fieldsV1"]) == {"f:status"}, entry
    # The API server's own record: every write of the operator to a PythonApp went to /status.
    on_apps = [
        c.resource
        for c in audit.writes(audit_log, namespace, since=started - 1)
        if c.resource.split("/")[0] == "pythonapps"
    ]
    assert on_apps, "the audit log shows no status write of the operator"
    assert all(resource == "pythonapps/status" for resource in on_apps), on_apps


def _maps_of(child: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every label, annotation and selector map of a child, by where it sits."""
    spec = child.get("spec") or {}
    selector = spec.get("selector") or {}  # a Service's is the map itself
    template = pod_template(child).get("metadata") or {}  # a Deployment's or a CronJob's
    jobs = (spec.get("jobTemplate") or {}).get("metadata") or {}
    return {
        "metadata.labels": child["metadata"].get("labels") or {},
        "metadata.annotations": child["metadata"].get("annotations") or {},
        "spec.selector": selector.get("matchLabels", selector),
        "spec.podSelector": (spec.get("podSelector") or {}).get("matchLabels") or {},
        "pod template labels": template.get("labels") or {},
        "pod template annotations": template.get("annotations") or {},
        "spec.jobTemplate.metadata.labels": jobs.get("labels") or {},
    }


def test_tracking_labels_and_annotations_never_reach_the_children(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    # autoscaled and exposed, so that every child kind of a web app exists (the
    # HorizontalPodAutoscaler and the route too: an Ingress, as the session's operator has no
    # --gateway for HTTPRoutes), and a scheduled app for the CronJob
    scaled = {"minReplicas": 2, "maxReplicas": 4}
    k.apply(tracked(app_doc(namespace, autoscaling=scaled, expose={"host": "shop.example.com"})))
    k.apply(tracked(cron_doc(namespace, name="nightly")))
    wait(lambda: ready(k, namespace) and ready(k, namespace, "nightly"), 90, "Ready")
    parent = {**PARENT_LABELS, **PARENT_ANNOTATIONS}
    for child_kind in (c for c in CHILD_KINDS if c.kind != "HTTPRoute"):
        app = "nightly" if child_kind.kind == "CronJob" else "shop"
        child = k.get(child_kind.plural, app, namespace)
        assert child is not None, f"no {child_kind.kind} {app}"
        for where, values in _maps_of(child).items():
            leaked = {key for key in parent if key in values}
            # the children's own instance label names the app, never the GitOps instance
            if values.get("app.kubernetes.io/instance") == app:
                leaked.discard("app.kubernetes.io/instance")
            assert not leaked, f"{child_kind.kind} {where} carries the parent's {sorted(leaked)}"


def test_kubectl_get_wide_shows_the_ready_message(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    app = wait(lambda: ready(k, namespace), 90, "Ready")
    message = condition(app, "Ready")["message"]
    narrow = k.run("get", "pyapp", "-n", namespace).stdout
    wide = k.run("get", "pyapp", "-n", namespace, "-o", "wide").stdout
    header, row = wide.splitlines()
    assert header.split()[-2:] == ["PROFILE", "MESSAGE"], wide
    assert row.endswith(message), wide
    assert "MESSAGE" not in narrow and message not in narrow, narrow


def test_kubectl_wait_as_documented_waits_for_the_current_generation(
    operator: OperatorProcess, k: Kubectl, namespace: str
) -> None:
    """deploy/flux/README.md: `kubectl wait --for=condition=Ready` is safe against a status of
    an older spec (kubectl compares the condition's observedGeneration with the object's
    generation); `--for=jsonpath` on status.observedGeneration waits for the operator to see
    a given generation."""
    ns, app = ["-n", namespace], "pythonapp/shop"
    k.apply(app_doc(namespace))
    k.run("wait", "--for=condition=Ready", app, *ns, "--timeout=90s")
    with operator_down(operator):
        k.apply(app_doc(namespace, replicas=3))  # generation 2; the status still says 1
        stale = k.run("wait", "--for=condition=Ready", app, *ns, "--timeout=3s", check=False)
        assert stale.returncode != 0, "kubectl wait passed on the status of generation 1"
    k.run("wait", "--for=jsonpath={.status.observedGeneration}=2", app, *ns, "--timeout=60s")
    k.run("wait", "--for=condition=Ready", app, *ns, "--timeout=90s")


def test_no_status_never_satisfies_kubectl_wait(
    operator: OperatorProcess, k: Kubectl, namespace: str
) -> None:
    with operator_down(operator):
        k.apply(app_doc(namespace))
        proc = k.run(
            "wait", "--for=condition=Ready", "pythonapp/shop", "-n", namespace, "--timeout=3s",
            check=False,
        )  # fmt: skip
        assert proc.returncode != 0


def test_argocd_cm_patch_installs_the_health_check(crd: None, k: Kubectl, namespace: str) -> None:
    """The documented command, on a ConfigMap that already holds other settings."""
    k.run("create", "configmap", "argocd-cm", "-n", namespace, "--from-literal=url=https://cd.test")
    k.run(
        "patch", "configmap", "argocd-cm", "-n", namespace, "--type=merge",
        "--patch-file", str(PATCH),
    )  # fmt: skip
    cm = k.get("configmap", "argocd-cm", namespace)
    assert cm is not None
    assert cm["data"] == {"url": "https://cd.test", KEY: HEALTH_LUA.read_text()}
