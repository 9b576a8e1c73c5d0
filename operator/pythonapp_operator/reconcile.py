"""One level-based, idempotent reconcile of one PythonApp.

Every cause (the app created, changed or found at start-up, a child changed or deleted, the
periodic resync) ends here, and the same steps run every time:

1. read the PythonApp fresh; validate it with the models;
2. invalid -> mark it Stalled with the reason, post a Warning event once, touch nothing else;
3. render the full desired set (pure) and apply each child that is missing, changed or drifted
   with server-side apply (one field manager, force); a drift fix posts a Normal event;
4. delete owned children the desired set no longer holds (the Service of a web app turned
   worker);
5. compute the status from the Deployment the API server reports; patch it only if it differs.

A reconcile that finds everything in place makes no write at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .compare import HASH_ANNOTATION, is_subset, needs_apply, with_hash
from .kube import Cluster
from .render import render
from .status import compute_status, status_differs
from .validation import validate_document

log = logging.getLogger(__name__)


class ChildKind(NamedTuple):
    """A kind the renderer may produce."""

    api_version: str
    kind: str
    plural: str


#: every kind the renderer may produce: children it stops producing are removed, and the
#: handlers watch each of them for drift and deletion
CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("apps/v1", "Deployment", "deployments"),
    ChildKind("v1", "ServiceAccount", "serviceaccounts"),
    ChildKind("v1", "Service", "services"),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
)


def utc_now() -> str:
    """RFC 3339 in UTC, seconds precision (what Kubernetes uses)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Outcome:
    """What one reconcile did; the handlers log it, tests assert on it."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_patched: bool = False
    problems: list[str] = field(default_factory=list)
    gone: bool = False

    @property
    def writes(self) -> int:
        """Writes this reconcile made (events not counted)."""
        return len(self.applied) + len(self.deleted) + int(self.status_patched)


def _stalled(status: dict[str, Any]) -> tuple[str, str] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Stalled":
            return cond.get("status", ""), cond.get("message", "")
    return None


def _is_owned_by(obj: dict[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def reconcile(
    cluster: Cluster,
    namespace: str,
    name: str,
    now: Callable[[], str] = utc_now,
    unsettled: set[str] | None = None,
) -> Outcome:
    """Bring one PythonApp's children and status in line with its spec.

    ``unsettled`` (kept by the caller across reconciles) breaks write loops: a child that still
    differs right after it was applied (the API server re-spells a field the comparison does
    not know) is logged once and not re-applied for drift until its desired hash changes.
    """
    unsettled = set() if unsettled is None else unsettled
    outcome = Outcome()
    body = cluster.get_app(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        outcome.gone = True  # garbage collection removes the children
        return outcome
    meta = body["metadata"]
    uid = meta["uid"]
    previous = body.get("status") or {}

    app, problems = validate_document({k: v for k, v in body.items() if k != "status"})
    if app is None:
        # Invalid: report it, touch nothing else (what runs keeps running).
        outcome.problems = [f"{p.path}: {p.message}" for p in problems]
        deployment = cluster.get("apps/v1", "Deployment", namespace, name)
        if deployment is not None and not _is_owned_by(deployment, uid):
            deployment = None
        status = _sync_status(cluster, body, outcome, deployment, now)
        if status is not None and _stalled(previous) != _stalled(status):
            # once per new verdict, not per pod change
            cluster.event(body, "Warning", "InvalidSpec", "; ".join(outcome.problems), now())
        return outcome

    deployment_live = _apply_children(
        cluster, body, render(app), outcome=outcome, now=now, unsettled=unsettled
    )
    _sync_status(cluster, body, outcome, deployment_live, now)
    return outcome


def _apply_children(
    cluster: Cluster,
    body: dict[str, Any],
    desired: list[dict[str, Any]],
    *,
    outcome: Outcome,
    now: Callable[[], str],
    unsettled: set[str],
) -> dict[str, Any] | None:
    """Apply what is missing, changed or drifted; delete owned kinds no longer rendered.

    Returns the live Deployment (status is computed from it).
    """
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    previous = body.get("status") or {}
    deployment_live: dict[str, Any] | None = None
    for manifest in desired:
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        live = cluster.get(api_version, kind, namespace, name)
        why = needs_apply(manifest, live)
        applied = with_hash(manifest)
        marker = f"{namespace}/{kind}/{name}/{applied['metadata']['annotations'][HASH_ANNOTATION]}"
        if why == "drift" and marker in unsettled:
            why = None
        if why is not None:
            live = cluster.apply(applied)
            outcome.applied.append(f"{kind}/{name} ({why})")
            if not is_subset(manifest, live):
                unsettled.add(marker)
                log.error(
                    "applied child still differs from the render; not re-applying it for "
                    "drift until the spec changes (please report this)",
                    extra={"app": f"{namespace}/{name}", "kind": kind},
                )
            if why == "drift":
                cluster.event(
                    body,
                    "Normal",
                    "DriftCorrected",
                    f"{kind} {name} was edited outside the operator; "
                    "fields the operator owns were put back.",
                    now(),
                )
            elif why == "missing" and previous.get("observedGeneration") is not None:
                cluster.event(body, "Normal", "Recreated", f"{kind} {name} was recreated.", now())
        if kind == "Deployment":
            deployment_live = live

    wanted = {(m["apiVersion"], m["kind"]) for m in desired}
    for child in CHILD_KINDS:
        if (child.api_version, child.kind) in wanted:
            continue
        stale = cluster.get(child.api_version, child.kind, namespace, name)
        if stale is not None and _is_owned_by(stale, uid):
            cluster.delete(child.api_version, child.kind, namespace, name, stale["metadata"]["uid"])
            outcome.deleted.append(f"{child.kind}/{name}")
    return deployment_live


def _sync_status(
    cluster: Cluster,
    body: dict[str, Any],
    outcome: Outcome,
    deployment: dict[str, Any] | None,
    now: Callable[[], str],
) -> dict[str, Any] | None:
    """Patch the status if it changed; the new status, or None when nothing was written."""
    meta, previous = body["metadata"], body.get("status") or {}
    status = compute_status(
        generation=meta.get("generation"),
        problems=outcome.problems,
        deployment=deployment,
        previous=previous,
        now=now(),
    )
    if not status_differs(previous, status):
        return None
    cluster.patch_status(meta["namespace"], meta["name"], status)
    outcome.status_patched = True
    return status
