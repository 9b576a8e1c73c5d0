"""Secrets checked before pods fail, and rotated per reference, on the real API server: the
metadata-only watch, the read of a named Secret once per change, SecretMissing that resolves
by itself, a data change that rolls the pods once, a metadata change that rolls nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.render import SECRET_HASH_PREFIX

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
ANNOTATION = SECRET_HASH_PREFIX + "secret-db"
DB = [{"name": "db", "env": [{"name": "DB_PASSWORD", "key": "password"}]}]


def secret(namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def missing(k: Kubectl, namespace: str) -> dict[str, Any] | None:
    app = k.get("pythonapp", "shop", namespace)
    return app if condition(app, "Ready").get("reason") == "SecretMissing" else None


def template(k: Kubectl, namespace: str) -> dict[str, Any]:
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    found: dict[str, Any] = dep["spec"]["template"]
    return found


def test_a_missing_secret_waits_without_pods_then_goes_on(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace, secrets=DB))
    app = wait(lambda: missing(k, namespace), 60, "SecretMissing")
    message = condition(app, "Ready")["message"]
    assert "Secret db (spec.secrets[0]) does not exist" in message, message
    assert k.get("deployment", "shop", namespace) is None  # no pod that cannot start
    k.apply(secret(namespace, user="app"))  # there, but without the key the app maps
    app = wait(
        lambda: (
            "has no key password"
            in condition(k.get("pythonapp", "shop", namespace), "Ready").get("message", "")
        ),
        60,
        "the missing key named",
    )
    k.apply(secret(namespace, user="app", password="one"))
    wait(lambda: ready(k, namespace), 90, "Ready once the Secret has its key")
    assert ANNOTATION in template(k, namespace)["metadata"]["annotations"]


def test_a_rotated_secret_rolls_the_pods_once_and_a_label_rolls_nothing(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(secret(namespace, password="one"))
    k.apply(app_doc(namespace, secrets=DB))
    wait(lambda: ready(k, namespace), 90, "Ready")
    first = template(k, namespace)["metadata"]["annotations"][ANNOTATION]
    generation = k.get("deployment", "shop", namespace)["metadata"]["generation"]  # type: ignore[index]
    k.run("label", "secret", "db", "-n", namespace, "team=a")  # a new version, the same data
    k.apply(secret(namespace, password="two"))
    wait(
        lambda: template(k, namespace)["metadata"]["annotations"][ANNOTATION] != first,
        30,
        "the pod template to carry the new hash",
    )
    wait(lambda: ready(k, namespace), 90, "Ready after the roll")
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None and dep["metadata"]["generation"] == generation + 1  # one roll
    # the hash is no value: the Secret's data appears nowhere in what the operator wrote
    written = json.dumps([dep, k.get("pythonapp", "shop", namespace)])
    assert base64.b64encode(b"two").decode() not in written


def test_a_spec_change_onto_a_missing_secret_keeps_the_running_version(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace))
    wait(lambda: ready(k, namespace), 90, "Ready")
    before = template(k, namespace)
    k.apply(app_doc(namespace, secrets=DB))
    app = wait(lambda: missing(k, namespace), 60, "SecretMissing")
    assert "the running version keeps serving" in condition(app, "Ready")["message"]
    assert template(k, namespace) == before
