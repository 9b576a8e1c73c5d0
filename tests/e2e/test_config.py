"""Image pull Secrets and ConfigMaps on the real API server: the pull Secrets on the pods the
ReplicaSet creates, a missing pull Secret, ConfigMap or key named on the PythonApp and cleared
once it is created, a ConfigMap data change that rolls the pods once with rotation restart and
not at all with rotation none, and a pull Secret change that rolls nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.render import CONFIG_HASH_PREFIX, CONFIG_VERSIONS_ANNOTATION

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
SETTINGS = CONFIG_HASH_PREFIX + "config-settings"
PULL = [{"name": "regcred"}]
CONFIG = [{"name": "settings", "env": [{"name": "LOG_LEVEL", "key": "log-level"}]}]


def pull_secret(namespace: str, auths: str = "{}") -> dict[str, Any]:
    config = json.dumps({"auths": {"registry.example.com": {"auth": auths}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": namespace},
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }


def configmap(namespace: str, name: str = "settings", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def said(k: Kubectl, namespace: str, reason: str, words: str) -> dict[str, Any] | None:
    """The app, once its Ready condition has ``reason`` and a message containing ``words``."""
    app = k.get("pythonapp", "shop", namespace)
    ready_ = condition(app, "Ready")
    if ready_.get("reason") == reason and words in ready_.get("message", ""):
        return app
    return None


def deployment(k: Kubectl, namespace: str) -> dict[str, Any]:
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    return dep


def annotations(k: Kubectl, namespace: str) -> dict[str, str]:
    found: dict[str, str] = deployment(k, namespace)["spec"]["template"]["metadata"]["annotations"]
    return found


def pods(k: Kubectl, namespace: str) -> list[dict[str, Any]]:
    proc = k.run("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=shop", "-o", "json")
    items: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
    return items


def test_the_pods_carry_the_pull_secrets(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(pull_secret(namespace))
    k.apply(app_doc(namespace, imagePullSecrets=PULL))
    wait(lambda: ready(k, namespace), 90, "Ready")
    created = wait(lambda: pods(k, namespace) or None, 60, "the app's pods")
    for pod in created:
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}], pod["metadata"]["name"]


def test_a_missing_pull_secret_is_named_then_clears_and_its_changes_roll_nothing(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(configmap(namespace, **{"log-level": "info"}))
    k.apply(app_doc(namespace, imagePullSecrets=PULL, config=CONFIG))
    app = wait(lambda: said(k, namespace, "SecretMissing", "Secret regcred"), 60, "SecretMissing")
    message = condition(app, "Ready")["message"]
    assert "Secret regcred (spec.imagePullSecrets[0]) does not exist" in message, message
    assert k.get("deployment", "shop", namespace) is None  # no pod that could not pull
    k.apply(pull_secret(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready once the pull Secret exists")
    # never read, so never hashed nor recorded: nothing of it can move the pod template
    dep = deployment(k, namespace)
    assert not [a for a in annotations(k, namespace) if "regcred" in a]
    assert "regcred" not in dep["metadata"]["annotations"].get(CONFIG_VERSIONS_ANNOTATION, "")
    generation = dep["metadata"]["generation"]
    first = annotations(k, namespace)[SETTINGS]
    # new registry credentials, then (after them, on the same watch order) new settings: the
    # settings roll the pods once, the credentials not at all
    k.apply(pull_secret(namespace, auths="ZGVtbzpuZXc="))
    k.apply(configmap(namespace, **{"log-level": "debug"}))
    wait(lambda: annotations(k, namespace)[SETTINGS] != first, 30, "the settings' roll")
    wait(lambda: ready(k, namespace), 90, "Ready after the roll")
    assert deployment(k, namespace)["metadata"]["generation"] == generation + 1


def test_a_missing_configmap_and_key_are_named_then_clear(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace, config=CONFIG))
    app = wait(
        lambda: said(k, namespace, "ConfigMissing", "ConfigMap settings"), 60, "ConfigMissing"
    )
    message = condition(app, "Ready")["message"]
    assert "ConfigMap settings (spec.config[0]) does not exist" in message, message
    assert k.get("deployment", "shop", namespace) is None
    k.apply(configmap(namespace, other="x"))  # there, without the key the app maps
    wait(
        lambda: said(k, namespace, "ConfigMissing", "ConfigMap settings has no key log-level"),
        60,
        "the missing key named",
    )
    k.apply(configmap(namespace, other="x", **{"log-level": "info"}))
    wait(lambda: ready(k, namespace), 90, "Ready once the ConfigMap has its key")
    env = deployment(k, namespace)["spec"]["template"]["spec"]["containers"][0]["env"]
    ref = {"configMapKeyRef": {"name": "settings", "key": "log-level"}}
    assert {"name": "LOG_LEVEL", "valueFrom": ref} in env


def test_a_configmap_change_rolls_once_with_restart_and_not_with_none(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    """Two ConfigMaps: ``static`` (rotation none) changes first, then ``settings`` (restart):
    the pods roll once, for the settings; the static change made no roll of its own."""
    k.apply(configmap(namespace, **{"log-level": "info"}))
    k.apply(configmap(namespace, "static", banner="hello"))
    config = [*CONFIG, {"name": "static", "rotation": "none"}]
    k.apply(app_doc(namespace, config=config))
    wait(lambda: ready(k, namespace), 90, "Ready")
    dep = deployment(k, namespace)
    generation = dep["metadata"]["generation"]
    first = annotations(k, namespace)[SETTINGS]
    assert CONFIG_HASH_PREFIX + "config-static" not in annotations(k, namespace)
    mounts = dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "config-static", "mountPath": "/etc/config/static", "readOnly": True} in mounts
    k.apply(configmap(namespace, "static", banner="changed"))
    k.apply(configmap(namespace, **{"log-level": "debug"}))
    wait(lambda: annotations(k, namespace)[SETTINGS] != first, 30, "the settings' roll")
    wait(lambda: ready(k, namespace), 90, "Ready after the roll")
    assert deployment(k, namespace)["metadata"]["generation"] == generation + 1
    assert CONFIG_HASH_PREFIX + "config-static" not in annotations(k, namespace)
