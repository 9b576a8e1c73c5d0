"""Generate the PythonApp CustomResourceDefinition from the pydantic models.

The CRD is an artefact, never edited by hand: ``pythonapp crd`` prints it and
``crds/pythonapps.yaml`` must be byte-identical (a test keeps them in step).

Pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema. The conversion
inlines ``$ref``s, turns ``X | None`` into an optional ``X``, drops ``title``/``default`` and
``additionalProperties: false`` (not allowed in structural schemas; unknown fields are refused by
kubectl's strict field validation and by the operator's models), and keeps every
``x-kubernetes-*`` extension the models declare, including the CEL rules.

Defaults are deliberately not written into the CRD: several depend on the profile (port,
probes, preStop drain), and API-server defaulting would add fields a GitOps repo never wrote.
The operator applies them; the descriptions document them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .. import GROUP, KIND, PLURAL, VERSION
from . import policy
from .models import DNS1035_LABEL, MSG_NAME, PythonAppSpec, PythonAppStatus, cel

Schema = dict[str, Any]

_DROP = {"title", "default", "additionalProperties", "examples"}


def _structural(node: Any, defs: dict[str, Schema]) -> Any:
    """Recursively convert a pydantic JSON-schema node into a structural schema node."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = {**_structural(target, defs)}
        for key, value in node.items():  # field-level keys (description...) win
            merged[key] = _structural(value, defs)
        node = merged
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"cannot make a structural schema from anyOf {options!r}")
        inner = _structural(options[0], defs)
        node = {**inner, **{k: v for k, v in node.items() if k not in inner or k == "description"}}
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _structural(value, defs)
    if "properties" in out:
        out.setdefault("type", "object")
    if "description" in out:
        out["description"] = " ".join(str(out["description"]).split())
    return _ordered(out)


_KEY_ORDER = (
    "description",
    "type",
    "x-kubernetes-int-or-string",
    "enum",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "required",
    "properties",
    "items",
    "x-kubernetes-validations",
    "rule",
    "message",
    "fieldPath",
)


def _ordered(schema: Schema) -> Schema:
    """Stable, readable key order (description first, rules last)."""
    rank = {key: i for i, key in enumerate(_KEY_ORDER)}
    return dict(sorted(schema.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def openapi_schema(model: type[BaseModel]) -> Schema:
    """Structural schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    result: Schema = _structural(raw, defs)
    return result


def printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get pyapp`` shows."""
    ready = '.status.conditions[?(@.type=="Ready")]'
    return [
        {"name": "Image", "type": "string", "jsonPath": ".status.shortImage"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
        {"name": "Status", "type": "string", "jsonPath": f"{ready}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        # a scheduled app's last run (Running, Succeeded, Failed, Stopped); empty for the others
        {
            "name": "Last Run",
            "type": "string",
            "jsonPath": ".status.cron.lastRun.result",
            "priority": 1,
        },
        {"name": "Profile", "type": "string", "jsonPath": ".spec.profile", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": f"{ready}.message", "priority": 1},
    ]


def scale_subresource() -> dict[str, str]:
    """``kubectl scale pyapp NAME --replicas N`` (and anything speaking the Scale API) sets
    ``spec.replicas``; it reads the running pods and their selector from the status. While
    ``spec.autoscaling`` is set, the spec's transition rule refuses the change: the API server
    runs the CRD's validation, CEL included, on a write through /scale too (proven in
    tests/e2e/test_autoscaling.py)."""
    return {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition."""
    spec_schema = openapi_schema(PythonAppSpec)
    status_schema = openapi_schema(PythonAppStatus)
    root: Schema = {
        "description": "PythonApp runs a Python web app, worker or scheduled job hardened by "
        "default: a digest-pinned image, read-only Secrets, probes, limits and restricted Pod "
        "Security. The operator turns it into a Deployment, ServiceAccount, Service, "
        "PodDisruptionBudget, NetworkPolicy and HorizontalPodAutoscaler and keeps them so; "
        "with spec.migrate, a migration Job runs before each new image rolls out; a scheduled "
        "app (profile: cron) gets a CronJob instead of the Deployment.",
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"description": "APIVersion of this object.", "type": "string"},
            "kind": {"description": "Kind of this object.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": [
            cel(
                "self.metadata.name.size() <= 63 && "
                f"self.metadata.name.matches(r'{DNS1035_LABEL}')",
                f"metadata.name {MSG_NAME}",
            )
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "pythonapp-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["pyapp"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": scale_subresource()},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def policy_crd() -> dict[str, Any]:
    """The PythonAppPolicy CustomResourceDefinition (``pythonapp crd --policy``): cluster-scoped,
    one object named ``cluster`` (:mod:`.policy` says why), no status (nothing reports on it:
    the apps it refuses say so on their own status)."""
    root: Schema = {
        "description": "PythonAppPolicy is the platform's policy for every PythonApp of the "
        "cluster, said once: allowed image registries, default and maximum resources, default "
        "image pull Secrets, route defaults and the namespaces that may expose apps. Read by "
        "the operator (defaults; an app it no longer admits is Stalled with reason "
        "PolicyViolation, never torn down) and by the pythonapp-platform-policy admission "
        "policy (refused at apply). One object, named cluster.",
        "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion of this object.", "type": "string"},
            "kind": {"description": "Kind of this object.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(policy.PythonAppPolicySpec),
        },
        "x-kubernetes-validations": [policy.NAME_RULE],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{policy.POLICY_PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "pythonapp-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": policy.POLICY_KIND,
                "listKind": f"{policy.POLICY_KIND}List",
                "plural": policy.POLICY_PLURAL,
                "singular": policy.POLICY_KIND.lower(),
                "shortNames": ["pyapppolicy"],
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
