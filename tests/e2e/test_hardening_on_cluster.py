"""Hardening another writer weakens, on the real API server (issue 17, finding 3): the dev
cluster trial, scripted. A worker's deny-all NetworkPolicy opened to all ingress, an allow-all
rule appended to a web app's, ``hostNetwork: true`` on a pod template: each is put back by the
operator's forced apply (it owns those fields: atomic lists and explicit false values). A
``hostPath`` volume added to a pod template is another writer's entry the operator does not
fight: the app says so (Ready=False, HardeningDrift naming the field) until it goes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, events, ready
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
HOST_PATH = "spec.template.spec.volumes[name=host].hostPath"


def patch(k: Kubectl, what: str, namespace: str, kind_of: str, body: Any) -> None:
    """``kubectl patch`` as another writer would (``what``: ``kind/name``)."""
    k.run("patch", what, "-n", namespace, f"--type={kind_of}", "-p", json.dumps(body))


def drift_corrected(k: Kubectl, namespace: str, kind: str, name: str) -> bool:
    return any(
        e["reason"] == "DriftCorrected"
        and e["type"] == "Normal"
        and f"{kind} {name}" in e["message"]
        for e in events(k, namespace)
    )


def test_network_policies_opened_and_host_network_are_put_back(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait_until: Wait
) -> None:
    k.apply([app_doc(namespace, "web"), app_doc(namespace, "worker", profile="worker")])
    wait_until(lambda: ready(k, namespace, "web") and ready(k, namespace, "worker"), 90, "Ready")
    rendered = (k.get("networkpolicy", "web", namespace) or {})["spec"]["ingress"]
    assert "ingress" not in (k.get("networkpolicy", "worker", namespace) or {})["spec"]

    patch(k, "networkpolicy/worker", namespace, "merge", {"spec": {"ingress": [{}]}})
    patch(k, "networkpolicy/web", namespace, "json", [
        {"op": "add", "path": "/spec/ingress/-", "value": {}}
    ])  # fmt: skip
    patch(k, "deployment/worker", namespace, "merge", {
        "spec": {"template": {"spec": {"hostNetwork": True}}}
    })  # fmt: skip

    def spec(kind: str, name: str) -> dict[str, Any]:
        obj = k.get(kind, name, namespace)
        assert obj is not None, f"{kind} {name} is gone"
        value: dict[str, Any] = obj["spec"]
        return value

    wait_until(
        lambda: "ingress" not in spec("networkpolicy", "worker"),
        30,
        "the worker's policy closed again",
    )
    wait_until(
        lambda: spec("networkpolicy", "web")["ingress"] == rendered,
        30,
        "the web app's policy without the appended rule",
    )
    wait_until(
        lambda: "hostNetwork" not in spec("deployment", "worker")["template"]["spec"],
        30,
        "hostNetwork put back",
    )
    for kind, name in (
        ("NetworkPolicy", "worker"),
        ("NetworkPolicy", "web"),
        ("Deployment", "worker"),
    ):
        wait_until(
            lambda kind=kind, name=name: drift_corrected(k, namespace, kind, name),
            20,
            f"a DriftCorrected event for {kind} {name}",
        )
    # nothing left to report: both apps Ready, no HardeningDrift said
    wait_until(lambda: ready(k, namespace, "web") and ready(k, namespace, "worker"), 90, "Ready")
    assert not [e for e in events(k, namespace) if e["reason"] == "HardeningDrift"]


def test_a_host_path_volume_is_reported_until_it_goes(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait_until: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait_until(lambda: ready(k, namespace), 90, "Ready")
    patch(k, "deployment/shop", namespace, "strategic", {
        "spec": {"template": {"spec": {"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}}}
    })  # fmt: skip

    def reported() -> dict[str, Any] | None:
        app = k.get("pythonapp", "shop", namespace)
        cond = condition(app, "Ready")
        ok = cond.get("status") == "False" and cond.get("reason") == "HardeningDrift"
        return cond if ok and HOST_PATH in cond.get("message", "") else None

    wait_until(reported, 30, "Ready=False HardeningDrift naming the hostPath volume")
    warnings = wait_until(
        lambda: [e for e in events(k, namespace) if e["reason"] == "HardeningDrift"],
        20,
        "a HardeningDrift Warning",
    )
    assert warnings[0]["type"] == "Warning" and HOST_PATH in warnings[0]["message"]
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None  # left alone: the operator does not fight the other writer
    names = [v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]]
    assert "host" in names

    patch(k, "deployment/shop", namespace, "json", [
        {"op": "remove", "path": f"/spec/template/spec/volumes/{names.index('host')}"}
    ])  # fmt: skip
    wait_until(lambda: ready(k, namespace), 90, "Ready again once the volume is gone")
    assert len([e for e in events(k, namespace) if e["reason"] == "HardeningDrift"]) == 1
