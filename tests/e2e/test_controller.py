"""The controller core on a real API server: no takeovers, isolation before pods, failures on
the status that clear by themselves, quiet namespace deletion, no write loops on fields the
server re-spells, metrics, and a cache that only holds what the operator manages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, events, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.controller.client import FIELD_MANAGER, ApiError, RestApi

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]


def stalled_with(k: Kubectl, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    app = k.get("pythonapp", name, namespace)
    cond = condition(app, "Stalled")
    ok = cond.get("status") == "True" and cond.get("reason") == reason
    return app if ok and condition(app, "Ready").get("status") == "False" else None


def warnings(k: Kubectl, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in events(k, namespace) if e["type"] == "Warning" and e["reason"] == reason]


def strip_volatile(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields",)}
    return {**obj, "metadata": meta}


def test_a_service_named_like_the_app_is_never_taken_over(
    operator: OperatorProcess,
    k: Kubectl,
    namespace: str,
    wait: Wait,
    audit_refused: Callable[..., int],
) -> None:
    k.run(
        "create", "service", "clusterip", "shop", "--tcp=80:9090", "-n", namespace
    )  # someone else's Service, selecting their own pods
    theirs = k.get("service", "shop", namespace)
    k.apply(app_doc(namespace))
    app = wait(lambda: stalled_with(k, namespace, "shop", "NotOwned"), 60, "Stalled NotOwned")
    message = condition(app, "Stalled")["message"]
    assert "Service shop already exists" in message and "no controller" in message, message
    # several retries later (this app's refused applies, per the API server): the Service is
    # exactly as it was, the pods never started
    wait(lambda: audit_refused(namespace, "services") >= 3, 60, "3 refused Service applies")
    assert strip_volatile(k.get("service", "shop", namespace)) == strip_volatile(theirs)
    assert k.get("deployment", "shop", namespace) is None
    assert len(warnings(k, namespace, "NotOwned")) == 1  # one event, not one per retry

    k.run("delete", "pythonapp", "shop", "-n", namespace, "--wait=true")
    kept = k.get("service", "shop", namespace)
    assert kept is not None and not kept["metadata"].get("ownerReferences")

    # once the other object goes, the app converges by itself (retries with backoff)
    k.apply(app_doc(namespace))
    wait(lambda: stalled_with(k, namespace, "shop", "NotOwned"), 60, "Stalled again")
    k.run("delete", "service", "shop", "-n", namespace)
    wait(lambda: ready(k, namespace), 90, "Ready once the name is free")


def test_an_app_named_default_leaves_the_default_service_account_alone(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    wait(lambda: k.get("serviceaccount", "default", namespace), 30, "default ServiceAccount")
    k.run(
        "patch",
        "serviceaccount",
        "default",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"imagePullSecrets": [{"name": "registry"}]}),
    )
    before = k.get("serviceaccount", "default", namespace)
    k.apply(app_doc(namespace, name="default"))
    app = wait(lambda: stalled_with(k, namespace, "default", "NotOwned"), 60, "NotOwned")
    assert "ServiceAccount default" in condition(app, "Stalled")["message"]
    k.run("delete", "pythonapp", "default", "-n", namespace, "--wait=true")
    after = k.get("serviceaccount", "default", namespace)
    assert strip_volatile(after) == strip_volatile(before)
    assert after["imagePullSecrets"] == [{"name": "registry"}]  # type: ignore[index]


def test_a_deployment_name_held_by_another_deployment_is_reported(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.run("create", "deployment", "shop", "--image=registry.k8s.io/pause:3.10", "-n", namespace)
    theirs = k.get("deployment", "shop", namespace)
    k.apply(app_doc(namespace))
    app = wait(lambda: stalled_with(k, namespace, "shop", "NotOwned"), 60, "NotOwned")
    assert "Deployment shop already exists" in condition(app, "Ready")["message"]
    now = k.get("deployment", "shop", namespace)
    assert now is not None and theirs is not None
    assert now["metadata"]["generation"] == theirs["metadata"]["generation"]
    assert now["spec"]["template"] == theirs["spec"]["template"]
    assert not now["metadata"].get("ownerReferences")


@pytest.fixture
def rest_api(kubeconfig_path: Path) -> Iterator[RestApi]:
    """The operator's own client, as an admin (so a refusal is the API server's rule, not RBAC)."""
    api = RestApi(config.new_client_from_config(config_file=str(kubeconfig_path)))
    api.api_client.user_agent = "e2e-create-only"  # not counted as the operator's calls
    yield api
    api.api_client.close()


@pytest.mark.parametrize("kind", ["ServiceAccount", "Service"])
def test_an_apply_for_a_child_the_cache_does_not_hold_only_ever_creates(
    rest_api: RestApi, k: Kubectl, namespace: str, kind: str
) -> None:
    """What "no takeover" rests on, proven on the real API server: an apply without a uid (the
    cache holds no such child) creates the object when the name is free, owned by the
    operator's field manager alone, and is refused (409) without changing anything when any
    object holds the name: someone else's, or one of the operator's own."""
    spec: dict[str, Any] = (
        {"automountServiceAccountToken": False}
        if kind == "ServiceAccount"
        else {"spec": {"selector": {"app": "shop"}, "ports": [{"port": 80}]}}
    )
    labels = {"app.kubernetes.io/managed-by": FIELD_MANAGER}

    def manifest(name: str) -> dict[str, Any]:
        meta = {"name": name, "namespace": namespace, "labels": labels}
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, **spec}

    created = rest_api.apply(manifest("free"), uid=None)
    managers = [(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]]
    assert managers == [(FIELD_MANAGER, "Apply")]  # later applies can remove what they drop
    with pytest.raises(ApiError) as again:
        rest_api.apply(manifest("free"), uid=None)
    assert again.value.name_taken, str(again.value)
    mine = rest_api.apply(manifest("free"), uid=created["metadata"]["uid"])  # with its uid: ok
    assert mine["metadata"]["uid"] == created["metadata"]["uid"]

    if kind == "ServiceAccount":
        k.run("create", "serviceaccount", "theirs", "-n", namespace)
    else:
        k.run("create", "service", "clusterip", "theirs", "--tcp=80:9090", "-n", namespace)
    theirs = k.get(kind.lower(), "theirs", namespace)
    with pytest.raises(ApiError) as taken:
        rest_api.apply(manifest("theirs"), uid=None)
    assert taken.value.name_taken and taken.value.status == 409, str(taken.value)
    assert k.get(kind.lower(), "theirs", namespace) == theirs  # not one field, not its version


def test_a_refused_network_policy_keeps_the_pods_away_and_clears_by_itself(
    operator: OperatorProcess,
    k: Kubectl,
    namespace: str,
    wait: Wait,
    audit_refused: Callable[..., int],
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-netpol", "namespace": namespace},
        "spec": {"hard": {"count/networkpolicies.networking.k8s.io": "0"}},
    }
    k.apply(quota)
    wait(
        lambda: (
            (q := k.get("resourcequota", "no-netpol", namespace))
            and (q.get("status") or {}).get("hard")
        ),
        30,
        "the quota to be enforced",
    )
    k.apply(app_doc(namespace))
    app = wait(lambda: stalled_with(k, namespace, "shop", "QuotaExceeded"), 60, "QuotaExceeded")
    message = condition(app, "Ready")["message"]
    assert "NetworkPolicy shop" in message and "exceeded quota" in message, message
    assert k.get("deployment", "shop", namespace) is None  # no pods without their isolation
    wait(lambda: audit_refused(namespace, "networkpolicies") >= 3, 60, "3 refused applies")
    assert len(warnings(k, namespace, "QuotaExceeded")) == 1  # one event, not one per retry
    k.run("delete", "resourcequota", "no-netpol", "-n", namespace)
    app = wait(lambda: ready(k, namespace), 90, "Ready once the quota is gone")
    assert condition(app, "Stalled")["status"] == "False"


def test_deleting_a_namespace_full_of_apps_is_quiet(
    operator: OperatorProcess, k: Kubectl, wait: Wait
) -> None:
    namespace = f"e2e-quiet-{int(time.time() * 1000) % 10**8}"
    k.run("create", "namespace", namespace)
    k.apply([app_doc(namespace, name=f"app-{i}") for i in range(5)])
    for i in range(5):
        wait(lambda i=i: ready(k, namespace, f"app-{i}"), 120, f"app-{i} Ready")
    offset = len(operator.text())
    held = operator.metrics()["pythonapp_cache_objects{kind=PythonApp}"]
    k.run("delete", "namespace", namespace, "--wait=true", "--timeout=120s")
    # the operator has seen every deletion (not only: its queue was empty when asked)
    wait(
        lambda: operator.metrics()["pythonapp_cache_objects{kind=PythonApp}"] <= held - 5,
        60,
        "the 5 apps gone from the operator's cache",
    )
    operator.wait_caught_up()
    since = operator.text()[offset:]
    assert "Traceback" not in since, since[-3000:]
    # other tests' apps may still retry meanwhile (one holds a name on purpose): only this
    # namespace's apps are asked to stay quiet
    ours = [line for line in since.splitlines() if f'"app": "{namespace}/' in line]
    failures = [line for line in ours if "reconcile crashed" in line or "reconcile failed" in line]
    assert not failures, failures[:5]


def test_fields_the_server_re_spells_cause_no_write_loop(
    operator: OperatorProcess,
    k: Kubectl,
    namespace: str,
    wait: Wait,
    audit_writes: Callable[..., int],
) -> None:
    """Quantities in other spellings, an empty env list, explicit defaults: once converged,
    reconciles (forced by touching the app) write nothing."""
    doc = app_doc(
        namespace,
        env=[],
        resources={
            "requests": {"cpu": "0.5", "memory": "1024Mi", "ephemeral-storage": "1G"},
            "limits": {"cpu": "1000m", "memory": "1Gi", "ephemeral-storage": "2e9"},
        },
    )
    k.apply(doc)
    wait(lambda: ready(k, namespace), 90, "Ready")
    operator.wait_caught_up()
    writes_before = audit_writes(namespace, since=0)
    before = operator.metrics()[
        "controller_runtime_reconcile_total{controller=pythonapp,result=success}"
    ]
    for i in range(3):  # metadata-only edits: each is an event, each a full reconcile
        k.run("annotate", "pythonapp", "shop", "-n", namespace, f"touch=t{i}", "--overwrite")
        wait(
            lambda i=i: (
                operator.metrics()[
                    "controller_runtime_reconcile_total{controller=pythonapp,result=success}"
                ]
                > before + i
            ),
            30,
            "a reconcile",
        )
    operator.wait_caught_up()
    assert audit_writes(namespace, since=0) == writes_before


def test_metrics_have_controller_runtime_names(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))  # an app of its own: passes alone too, not by earlier tests
    wait(lambda: ready(k, namespace), 90, "Ready")
    metrics = operator.wait_caught_up().metrics()
    for name in (
        "workqueue_depth{name=pythonapp}",
        "workqueue_adds_total{name=pythonapp}",
        "workqueue_retries_total{name=pythonapp}",
        "workqueue_longest_running_processor_seconds{name=pythonapp}",
        "workqueue_unfinished_work_seconds{name=pythonapp}",
        "workqueue_queue_duration_seconds_count{name=pythonapp}",
        "workqueue_work_duration_seconds_count{name=pythonapp}",
        "controller_runtime_reconcile_total{controller=pythonapp,result=success}",
        "controller_runtime_reconcile_total{controller=pythonapp,result=error}",
        "controller_runtime_reconcile_errors_total{controller=pythonapp}",
        "controller_runtime_reconcile_time_seconds_count{controller=pythonapp}",
        "pythonapp_cache_synced",
        "pythonapp_crd_installed",
    ):
        assert name in metrics, f"{name} missing from /metrics"
    assert metrics["pythonapp_cache_synced"] == 1.0
    assert any(key.startswith("pythonapp_apps{") and value >= 1 for key, value in metrics.items())
    assert metrics["pythonapp_cache_objects{kind=PythonApp}"] >= 1


def test_objects_the_operator_does_not_manage_never_reach_its_cache(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    before = operator.metrics()
    k.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"noise-{i}", "namespace": namespace},
                "spec": {"ports": [{"port": 80}]},
            }
            for i in range(20)
        ]
        + [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"noise-{i}", "namespace": namespace},
            }
            for i in range(20)
        ]
    )
    # a managed object created after the noise arrives: the watch has delivered what it would
    k.apply(app_doc(namespace, name="after"))
    wait(lambda: ready(k, namespace, "after"), 90, "the second app Ready")
    after = operator.metrics()
    for kind in ("Service", "ServiceAccount"):
        key = f"pythonapp_cache_objects{{kind={kind}}}"
        assert after[key] - before[key] <= 1, f"{kind}: {before[key]} -> {after[key]}"
