"""Cases of the platform policy, shared by the offline rules' tests (tests/unit) and the
admission policy's tests on the API server (tests/deploy), so both readers are held to the same
verdicts and messages."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import IMAGE, make_doc

#: a policy that says something in every rule
POLICY_SPEC: dict[str, Any] = {
    "allowedRegistries": ["ghcr.io/acme/", "registry.example.com/"],
    "resources": {
        "defaultRequests": {"cpu": "200m"},
        "defaultLimits": {"cpu": "500m"},
        "maxLimits": {"cpu": "2", "memory": "2Gi", "ephemeral-storage": "4Gi"},
    },
    "imagePullSecrets": [{"name": "platform-pull"}],
    "expose": {"allowedNamespaces": ["web"]},
}


def policy_doc(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonAppPolicy",
        "metadata": {"name": "cluster"},
        "spec": POLICY_SPEC if spec is None else spec,
    }


def app(namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    doc = make_doc(**spec)
    doc["metadata"]["namespace"] = namespace
    return doc


EXPOSE = {"host": "shop.example.com"}
FOREIGN_IMAGE = IMAGE.replace("ghcr.io/acme/", "docker.io/someone/")

#: (id, app document, [(field path, rule named in the message)]) under POLICY_SPEC
CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("within", app(), []),
    (
        "within-at-the-maximum",
        app(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "2000m", "memory": "2Gi"}}),
        [],
    ),
    ("exposed-where-allowed", app("web", expose=EXPOSE), []),
    ("foreign-registry", app(image=FOREIGN_IMAGE), [("spec.image", "allowedRegistries")]),
    (
        "prefix-is-not-a-substring",
        app(image=IMAGE.replace("ghcr.io/acme/", "ghcr.io/acme-other/")),
        [("spec.image", "allowedRegistries")],
    ),
    (
        "cpu-limit-above",
        app(resources={"limits": {"cpu": 4, "memory": "512Mi"}}),
        [("spec.resources.limits.cpu", "maxLimits")],
    ),
    (
        "memory-limit-above",
        app(resources={"limits": {"memory": "3Gi"}}),
        [("spec.resources.limits.memory", "maxLimits")],
    ),
    (
        "ephemeral-storage-limit-above",
        app(resources={"limits": {"memory": "512Mi", "ephemeral-storage": "8Gi"}}),
        [("spec.resources.limits.ephemeral-storage", "maxLimits")],
    ),
    (
        "cpu-request-above",
        app(resources={"requests": {"cpu": "2500m"}, "limits": {"memory": "512Mi"}}),
        [("spec.resources.requests.cpu", "maxLimits")],
    ),
    (
        "exposed-elsewhere",
        app("team-a", expose=EXPOSE),
        [("spec.expose", "expose.allowedNamespaces")],
    ),
]
