"""The kinds the controller watches, and how much of each it keeps in memory.

One table (:data:`CHILD_KINDS`) drives everything kind-specific: the watches and their
server-side label selector, the cache's trimming, the apply order and the removal of children
the renderer stops producing. Secrets and ConfigMaps, which apps reference by name, are
:data:`REFERENCED_KINDS`. The next capabilities (ReplicaSets and Pods for failure reasons,
Secrets for rotation, HorizontalPodAutoscalers, Jobs for migrations) each add one entry here.
Children named after their app are in :data:`CHILD_KINDS`; kinds with many objects per app
(Jobs, and the pods and ReplicaSets the operator only reads) in :data:`OBSERVED_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import GROUP, KIND, PLURAL, VERSION
from ..api.policy import POLICY_KIND, POLICY_PLURAL
from ..render import MANAGED_BY, MIGRATION_IMAGE_ANNOTATION

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
    #: observed kinds only (never applied, many per app): the label naming their app, which
    #: indexes them in the cache by app; the Deployment controller and the kubelet write them
    app_label: str | None = None
    #: what the cache keeps of one object, when not :func:`trim`'s default: the observed kinds
    #: keep only what status needs, so churn that status does not read compares equal
    trimmer: Callable[[Any], Obj] | None = None
    #: list and watch metadata only (``PartialObjectMetadata``): kinds whose objects may be
    #: large and of which the operator needs only presence and version (Secrets)
    metadata_only: bool = False
    #: the operator works without it: a listing refused by RBAC switches a feature off
    #: (said once) instead of failing
    optional: bool = False
    #: a kind the cluster may not serve (a CRD it may lack, such as the Gateway API's
    #: HTTPRoute): a listing answered 404 empties the kind and is tried again a minute later
    #: (``Settings.crd_poll_seconds``), never an error; whether it is served is the watch's own
    #: answer (:class:`.informer.Missing`), so no separate discovery is needed
    may_be_unserved: bool = False
    #: with ``keep_status``: what of the status the cache keeps (default: all of it)
    status_view: Callable[[Any], Obj] | None = None
    #: a cluster-scoped kind: one informer over the cluster, whatever namespaces are watched
    cluster_scoped: bool = False

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

# -- spec.expose: the routes, and what of their status the app's status reads ------------------


def _route_conditions(conditions: Any) -> list[Obj]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in conditions or []
        if isinstance(c, dict)
    ]


def _http_route_status(status: Any) -> Obj:
    """An HTTPRoute's status as the app's reads it: per parent, its reference and the
    controller's conditions, without times and generations a controller refreshes."""
    parents = [
        {
            "parentRef": dict(p.get("parentRef") or {}),
            "controllerName": p.get("controllerName"),
            "conditions": _route_conditions(p.get("conditions")),
        }
        for p in (status or {}).get("parents") or []
        if isinstance(p, dict)
    ]
    return {"parents": parents}


def _ingress_status(status: Any) -> Obj:
    """An Ingress's status as the app's reads it: the load balancer's addresses."""
    found = (((status or {}).get("loadBalancer") or {}).get("ingress")) or []
    return {
        "loadBalancer": {
            "ingress": [
                {k: i[k] for k in ("ip", "hostname") if i.get(k)}
                for i in found
                if isinstance(i, dict)
            ]
        }
    }


#: the route of ``spec.expose`` (one or the other, :mod:`..routing`), applied with the Service.
#: HTTPRoutes are a CRD the cluster may lack: their watch says whether the API is served. Both
#: are optional: an operator upgraded without the new RBAC rules keeps serving every app, and
#: only an app with spec.expose fails (Forbidden, on its status) until they are granted.
ROUTE_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        keep_status=True,
        order=0,
        optional=True,
        may_be_unserved=True,
        status_view=_http_route_status,
    ),
    WatchedKind(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        keep_status=True,
        order=0,
        optional=True,
        status_view=_ingress_status,
    ),
)
HTTPROUTE_KIND, INGRESS_KIND = ROUTE_KINDS

#: every kind the renderer may produce, in apply order: the ServiceAccount, NetworkPolicy,
#: Service, PodDisruptionBudget and HorizontalPodAutoscaler (one stage, applied at once) before
#: the Deployment, so pods never run without them, and the operator lets go of a Deployment's
#: replicas only once the autoscaler that takes them over exists. (The HPA's status, rewritten
#: by its controller every 15 s, is not kept: it changes nothing the operator compares.)
CHILD_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind("", "v1", "serviceaccounts", "ServiceAccount", order=0),
    WatchedKind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", order=0),
    WatchedKind("", "v1", "services", "Service", order=0),
    WatchedKind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", order=0),
    WatchedKind(
        "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", order=0
    ),
    WatchedKind("apps", "v1", "deployments", "Deployment", keep_status=True, order=1),
    *ROUTE_KINDS,
    # a scheduled app's workload, in the Deployment's place (its status feeds the app's)
    WatchedKind("batch", "v1", "cronjobs", "CronJob", keep_status=True, order=1),
)

#: the kinds that run the app's pods, one per app: which one depends on the profile
WORKLOAD_KINDS = ("Deployment", "CronJob")

#: the label every child and pod carries naming its app (unique per app in a namespace)
INSTANCE_LABEL = "app.kubernetes.io/instance"
#: what part of the app an observed object belongs to (a scheduled run's Job and pods say
#: ``cron``, a migration's ``migration``): kept so the two are told apart
COMPONENT_LABEL = "app.kubernetes.io/component"


def _trim_replicaset(body: Any) -> Obj:
    """A ReplicaSet as status reads it: which Deployment owns it, its revision, and whether
    pods could be created (``ReplicaFailure``: Pod Security, a quota or a webhook refused
    them, words seen nowhere else)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    failures = [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in status.get("conditions") or []
        if c.get("type") == "ReplicaFailure"
    ]
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    out_meta = _observed_meta(meta)
    if revision is not None:
        out_meta["annotations"] = {REVISION_ANNOTATION: str(revision)}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": out_meta,
        "status": {"conditions": failures},
    }


def _trim_pod(body: Any) -> Obj:
    """A Pod as status reads it: its phase, conditions and containers' states, without the
    timestamps kubelets refresh (a status that only moved in time compares equal, and makes
    no reconcile). A running container keeps its start time: it changes only on a restart,
    and says how long a pod has failed its readiness."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    out: Obj = {
        "phase": status.get("phase"),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
            for c in status.get("conditions") or []
        ],
    }
    for field in ("initContainerStatuses", "containerStatuses"):
        listed = [_trim_container(c) for c in status.get(field) or []]
        if listed:
            out[field] = listed
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _observed_meta(meta), "status": out}


def _trim_container(status: Any) -> Obj:
    out: Obj = {
        "name": status.get("name"),
        "ready": bool(status.get("ready")),
        "restartCount": int(status.get("restartCount") or 0),
    }
    if status.get("started") is not None:
        out["started"] = bool(status.get("started"))
    state = _trim_state(status.get("state") or {}, keep_start=True)
    if state:
        out["state"] = state
    last = _trim_state(status.get("lastState") or {}, keep_start=False)
    if last.get("terminated"):
        out["lastState"] = {"terminated": last["terminated"]}
    return out


def _trim_state(state: Any, *, keep_start: bool) -> Obj:
    if state.get("waiting") is not None:
        waiting = state["waiting"] or {}
        return {"waiting": {k: waiting[k] for k in ("reason", "message") if waiting.get(k)}}
    if state.get("terminated") is not None:
        term = state["terminated"] or {}
        return {
            "terminated": {
                k: term[k] for k in ("reason", "exitCode", "signal", "message") if k in term
            }
        }
    if state.get("running") is not None:
        started = (state["running"] or {}).get("startedAt")
        return {"running": {"startedAt": started} if keep_start and started else {}}
    return {}


def _observed_meta(meta: Any) -> Obj:
    out: Obj = {
        k: _plain(meta[k])
        for k in ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")
        if meta.get(k) is not None
    }
    labels = meta.get("labels") or {}
    if labels.get(INSTANCE_LABEL) is not None:
        out["labels"] = {
            k: str(labels[k]) for k in (INSTANCE_LABEL, COMPONENT_LABEL) if labels.get(k)
        }
    refs = [
        {k: ref.get(k) for k in ("kind", "name", "uid", "controller")}
        for ref in meta.get("ownerReferences") or []
        if ref.get("controller")
    ]
    if refs:
        out["ownerReferences"] = refs
    return out


#: the Deployment controller's revision of a ReplicaSet (and of its Deployment)
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def _trim_job(body: Any) -> Obj:
    """A Job as the migrations gate (:mod:`.migration`) and a scheduled app's status
    (:mod:`.cron`) read it: the image a migration migrates to, when it was created (the newest
    run is the last one), whether it runs, and how it ended (the Complete or Failed condition,
    with its reason and time), without the counters and times that move while it runs."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    out_meta = _observed_meta(meta)
    if meta.get("creationTimestamp"):
        out_meta["creationTimestamp"] = str(meta["creationTimestamp"])
    image = (meta.get("annotations") or {}).get(MIGRATION_IMAGE_ANNOTATION)
    if image is not None:
        out_meta["annotations"] = {MIGRATION_IMAGE_ANNOTATION: str(image)}
    ended = [
        {
            k: c.get(k)
            for k in ("type", "status", "reason", "message", "lastTransitionTime")
            if c.get(k) is not None
        }
        for c in status.get("conditions") or []
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
    ]
    out_status: Obj = {"conditions": ended}
    if status.get("completionTime"):
        out_status["completionTime"] = status["completionTime"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": out_meta, "status": out_status}


#: kinds indexed by their app label (many per app), trimmed hard. ReplicaSets and Pods the
#: operator never writes: what the Deployment controller and the kubelets say about the app's
#: pods. Jobs are the migrations gate's (:mod:`.migration`): one per image and command, so not
#: named after the app, created (create-only) and deleted by the gate alone.
OBSERVED_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        keep_status=True,
        app_label=INSTANCE_LABEL,
        trimmer=_trim_replicaset,
    ),
    WatchedKind(
        "", "v1", "pods", "Pod", keep_status=True, app_label=INSTANCE_LABEL, trimmer=_trim_pod
    ),
    WatchedKind(
        "batch", "v1", "jobs", "Job", keep_status=True, app_label=INSTANCE_LABEL, trimmer=_trim_job
    ),
)


def _metadata_trimmer(kind: str) -> Callable[[Any], Obj]:
    """What the cache keeps of a referenced object (a Secret, a ConfigMap): its name, uid and
    resourceVersion; labels and annotations are dropped as they are parsed (a
    ``last-applied-configuration`` annotation may hold the values themselves)."""

    def trim_metadata(body: Any) -> Obj:
        meta = body.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {
                k: str(meta[k])
                for k in ("name", "namespace", "uid", "resourceVersion")
                if meta.get(k) is not None
            },
        }

    return trim_metadata


#: Secrets, by metadata only and every one in scope (they carry no label of ours): whether a
#: referenced one exists, and its version (a change rolls the app: :mod:`.secretrefs`)
SECRET = WatchedKind(
    "",
    "v1",
    "secrets",
    "Secret",
    selector="",
    trimmer=_metadata_trimmer("Secret"),
    metadata_only=True,
    optional=True,
)

#: ConfigMaps, the same way (:mod:`.secretrefs` says why not a full watch): whether a referenced
#: one exists, and its version (a change rolls the app with ``rotation: restart``)
CONFIGMAP = WatchedKind(
    "",
    "v1",
    "configmaps",
    "ConfigMap",
    selector="",
    trimmer=_metadata_trimmer("ConfigMap"),
    metadata_only=True,
    optional=True,
)

#: kinds the apps reference by name (never children): optional, watched by metadata
REFERENCED_KINDS: tuple[WatchedKind, ...] = (SECRET, CONFIGMAP)

#: the platform policy (PythonAppPolicy ``cluster``, :mod:`..api.policy`): one cluster-scoped
#: object, cheap to watch; optional (an installation whose RBAC predates it, or the namespaced
#: one, which grants nothing cluster-wide, works without it) and maybe unserved (its CRD not
#: installed): either way, no policy, said once
POLICY = WatchedKind(
    GROUP,
    VERSION,
    POLICY_PLURAL,
    POLICY_KIND,
    selector="",
    optional=True,
    may_be_unserved=True,
    cluster_scoped=True,
)

#: every kind the controller lists and watches (one informer each per scope; one in all for a
#: cluster-scoped kind)
WATCHED_KINDS: tuple[WatchedKind, ...] = (
    APP,
    *CHILD_KINDS,
    *OBSERVED_KINDS,
    *REFERENCED_KINDS,
    POLICY,
)

KINDS_BY_KIND: dict[str, WatchedKind] = {k.kind: k for k in WATCHED_KINDS}


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
    if kind.trimmer is not None:
        return kind.trimmer(body)
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
        if key == "status" and kind.status_view is not None:
            out[key] = kind.status_view(value)
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
