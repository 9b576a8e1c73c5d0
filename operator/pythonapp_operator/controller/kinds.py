"""The kinds the controller watches, and how much of each it keeps in memory.

One table (:data:`CHILD_KINDS`) drives everything kind-specific: the watches and their
server-side label selector, the cache's trimming, the apply order and the removal of children
the renderer stops producing. The next capabilities (ReplicaSets and Pods for failure reasons,
Secrets for rotation, Jobs for migrations, HorizontalPodAutoscalers) each add one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import GROUP, KIND, PLURAL, VERSION
from ..render import MANAGED_BY

#: only objects carrying this label reach the operator (a server-side label selector)
MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name) of a PythonApp


@dataclass(frozen=True)
class WatchedKind:
    """One kind the operator watches and caches."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    #: keep ``status`` in the cache (only kinds whose status feeds the app's status)
    keep_status: bool = False
    #: apply stage: lower first, children of one stage at once; the Deployment (pods) comes
    #: last, only once its isolation is in place
    order: int = 0
    #: a server-side label selector for its watch ("" = every object in scope)
    selector: str = MANAGED_SELECTOR

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection (every namespace when ``namespace`` is None), or of
        one object when ``name`` is given."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is None:
            return f"{root}/{self.plural}"
        path = f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{path}/{name}" if name else path


APP = WatchedKind(GROUP, VERSION, PLURAL, KIND, keep_status=True, selector="")

#: every kind the renderer may produce, in apply order: the ServiceAccount, NetworkPolicy,
#: Service and PodDisruptionBudget (one stage, applied at once) before the Deployment, so pods
#: never run without them
CHILD_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind("", "v1", "serviceaccounts", "ServiceAccount", order=0),
    WatchedKind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", order=0),
    WatchedKind("", "v1", "services", "Service", order=0),
    WatchedKind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", order=0),
    WatchedKind("apps", "v1", "deployments", "Deployment", keep_status=True, order=1),
)

KINDS_BY_KIND: dict[str, WatchedKind] = {k.kind: k for k in (APP, *CHILD_KINDS)}


def apply_order(manifests: list[Obj]) -> list[Obj]:
    """The children in apply order: by stage, the Deployment last (stable within a stage)."""
    return sorted(manifests, key=lambda m: KINDS_BY_KIND[m["kind"]].order)


# metadata fields compare and status need; everything else (managedFields first) is dropped
_KEPT_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
    "creationTimestamp",
)
_DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})


def trim(kind: WatchedKind, body: Any) -> Obj:
    """The part of an object the cache keeps: never ``managedFields``, status only if needed.

    ``body`` may be any mapping (kopf's Body or a plain dict); the result shares no structure
    with it that the caller could later mutate.
    """
    meta_in = body.get("metadata") or {}
    meta: Obj = {}
    for key in _KEPT_META:
        value = meta_in.get(key)
        if value is None:
            continue
        if key == "annotations":
            value = _plain({k: v for k, v in value.items() if k not in _DROPPED_ANNOTATIONS})
        elif key == "ownerReferences":
            value = [_plain(ref) for ref in value if ref.get("controller")]
        else:
            value = _plain(value)
        meta[key] = value
    out: Obj = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}
    for key, value in body.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        if key == "status" and not kind.keep_status:
            continue
        out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """A deep copy into plain dicts and lists (kopf hands out read-only mapping views)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def controller_of(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_key(obj: Obj) -> Key | None:
    """The PythonApp controlling ``obj``, as a queue key, or None."""
    ref = controller_of(obj)
    if (
        ref is None
        or ref.get("kind") != KIND
        or not str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
    ):
        return None
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (str(namespace), str(ref.get("name"))) if namespace else None


def is_controlled_by(obj: Obj, uid: str) -> bool:
    """True when ``obj``'s controller reference points at the object with ``uid``."""
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid
