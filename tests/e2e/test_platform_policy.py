"""The platform policy on the real API server, with the operator running: its defaults reach
the app's Deployment, a narrower policy stalls an app it no longer admits (PolicyViolation)
with what runs left as it is, and the policy going puts the app back as before.

The PythonAppPolicy is cluster-wide: the test stops the session's operator (`operator_down`)
and runs one of its own on its namespace, and deletes the policy when done, whatever happens,
so no other test's app ever sees it. The policy's CRD is applied (and left: without an object
it changes nothing).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import wait_for
from tests.e2e.conftest import ROOT, Kubectl, operator_down
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess
from tests.policy_cases import policy_doc

pytestmark = pytest.mark.cluster


def pod_spec(k: Kubectl, namespace: str) -> dict[str, Any]:
    deployment = k.get("deployment", "shop", namespace) or {}
    spec: dict[str, Any] = deployment.get("spec", {}).get("template", {}).get("spec", {})
    return spec


def cpu_limit(k: Kubectl, namespace: str) -> str | None:
    containers = pod_spec(k, namespace).get("containers") or [{}]
    limit: str | None = containers[0].get("resources", {}).get("limits", {}).get("cpu")
    return limit


def test_defaults_then_a_violation_reported_never_torn_down_then_back(
    operator: OperatorProcess,
    k: Kubectl,
    kubeconfig_path: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    wait = wait_for
    k.run("apply", "--server-side", "-f", str(ROOT / "crds" / "pythonapppolicies.yaml"))
    k.run(
        "wait",
        "--for=condition=Established",
        "crd/pythonapppolicies.pythonapp.dev",
        "--timeout=60s",
    )
    args = [
        "--namespace", namespace,
        "--leader-election-namespace", namespace,
        "--leader-election-id", f"policy-{secrets.token_hex(3)}",
    ]  # fmt: skip
    with operator_down(operator):
        op = OperatorProcess(kubeconfig_path, tmp_path / "operator.log", args).wait_healthy()
        try:
            k.apply(app_doc(namespace))
            wait(lambda: ready(k, namespace), 60, "the app Ready without a policy")
            assert cpu_limit(k, namespace) == "1" and "imagePullSecrets" not in pod_spec(
                k, namespace
            )

            defaults = {
                "resources": {"defaultLimits": {"cpu": "500m"}},
                "imagePullSecrets": [{"name": "platform-pull"}],
            }
            k.apply(policy_doc(defaults))
            wait(lambda: cpu_limit(k, namespace) == "500m", 60, "the policy's default limit")
            assert pod_spec(k, namespace)["imagePullSecrets"] == [{"name": "platform-pull"}]
            wait(lambda: ready(k, namespace), 60, "the app Ready under the policy")

            before = k.get("deployment", "shop", namespace) or {}
            k.apply(policy_doc({**defaults, "allowedRegistries": ["registry.example.com/"]}))

            def stalled() -> dict[str, Any] | None:
                app = k.get("pythonapp", "shop", namespace)
                cond = condition(app, "Stalled")
                return cond if cond.get("reason") == "PolicyViolation" else None

            cond = wait(stalled, 60, "the app Stalled with reason PolicyViolation")
            assert cond["status"] == "True"
            assert cond["message"].startswith(
                "spec.image: pythonapp-platform-policy: allowedRegistries: "
            ), cond
            app = k.get("pythonapp", "shop", namespace)
            assert condition(app, "Ready")["status"] == "False"
            after = k.get("deployment", "shop", namespace) or {}
            assert after["metadata"]["uid"] == before["metadata"]["uid"]
            assert after["metadata"]["generation"] == before["metadata"]["generation"]
            assert after["spec"] == before["spec"]  # never torn down, never changed

            k.run("delete", "pythonapppolicy", "cluster")
            wait(lambda: cpu_limit(k, namespace) == "1", 60, "the built-in default back")
            wait(lambda: ready(k, namespace), 60, "the app Ready again without the policy")
            assert "imagePullSecrets" not in pod_spec(k, namespace)
        finally:
            k.run("delete", "pythonapppolicy", "cluster", "--ignore-not-found")
            assert op.stop() == 0, op.tail()
