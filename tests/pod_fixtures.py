"""Pod statuses captured from the real kubelet (tests/fixtures/pods/, written by
tests/e2e/test_real_pods.py with ``UPDATE_POD_FIXTURES=1``), read as the operator reads pods:
trimmed as the cache keeps them, then judged by :func:`pods.verdict`.

Shared by the unit test that holds the operator's logic to the kubelet's words and by the
real-node tests (which mark their PythonApp checks by what the logic makes of these)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pythonapp_operator.controller import pods
from pythonapp_operator.controller.kinds import KINDS_BY_KIND, trim

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pods"
#: the fixed values test_real_pods.py put in place of each run's own
NAMESPACE, POD, POD_UID = "shop-ns", "shop-5d8c7b9f4-x2x2x", "00000000-0000-0000-0000-000000000000"
DEP_UID, RS_UID = "dep-uid", "rs-uid"
NOW = "2026-01-01T00:10:00Z"


def status(name: str) -> dict[str, Any]:
    """A captured pod ``status``."""
    found: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return found


def pod(name: str) -> dict[str, Any]:
    """The captured status on a pod of the app's current ReplicaSet, as the API sends it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": NAMESPACE,
            "uid": POD_UID,
            "resourceVersion": "1",
            "labels": {"app.kubernetes.io/instance": "shop", "pod-template-hash": "5d8c7b9f4"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "shop-5d8c7b9f4", "uid": RS_UID, "controller": True}
            ],
            "managedFields": [{"manager": "kubelet"}],
        },
        "status": status(name),
    }


def _replicaset() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "shop-5d8c7b9f4",
            "namespace": NAMESPACE,
            "uid": RS_UID,
            "ownerReferences": [
                {"kind": "Deployment", "name": "shop", "uid": DEP_UID, "controller": True}
            ],
        },
        "status": {"replicas": 1},
    }


def verdict(name: str, now: str = NOW) -> pods.Verdict | None:
    """What the operator's pod logic says of the captured pod (one of one)."""
    deployment = {"metadata": {"name": "shop", "namespace": NAMESPACE, "uid": DEP_UID}}
    return pods.verdict(
        deployment,
        [trim(KINDS_BY_KIND["ReplicaSet"], _replicaset())],
        [trim(KINDS_BY_KIND["Pod"], pod(name))],
        now,
    )
