"""Operator upgrades roll apps at a bounded pace: the rollout gate and the records it reads.

A new operator release that renders a pod template differently (a new default, a new
hardening field) would otherwise change every app's Deployment at once, and every app's pods
would restart together. Such a change is the operator's, not the app's: nothing the app's
author did asks for it, so it can wait for a slot. The reconcile tells it apart from the
changes that must never wait by what the Deployment records of its last apply (annotations on
the Deployment's own metadata, never on its pod template, which would roll the pods):

- :data:`TEMPLATE_HASH_ANNOTATION`: a hash of the pod template the operator applied. Equal to
  the new render's: the template does not change (drift put back, a metadata-only change),
  nothing rolls, nothing waits;
- :data:`GENERATION_ANNOTATION`: the PythonApp ``metadata.generation`` the Deployment was
  rendered for. Another generation: the app's author changed the spec; it never waits.

A template change with the same generation is the operator's own, unless the container image
moves (the migrations gate let a new image through) or a Secret's checksum annotation moves
(``rotation: restart``): those are the app's, and never wait either. What is left is
:func:`render_only`. The reconcile asks the :class:`RolloutGate` for a slot for it; without
one the Deployment is not applied at all (the other children are), and the app waits.

A slot is held until the Deployment's rollout is finished as ``kubectl rollout status`` says
(:func:`rollout_finished`), the Deployment goes, the app goes or its generation moves. A
rollout that never finishes keeps its slot: an upgrade whose new template breaks pods stops
after ``limit`` apps, like a canary, while the old ReplicaSets keep serving (``maxUnavailable``
is 0). The gate lives in memory, and a restarted operator rebuilds it from what the API server
shows: a Deployment carrying :data:`PACED_ANNOTATION` (put on by a paced apply only, and
dropped by the next apply of any other kind) whose rollout is unfinished holds a slot again
(:meth:`RolloutGate.adopt`).

Pure but for the gate's lock: the reconciles of different apps run on threads at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..render import SECRET_HASH_PREFIX
from .compare import is_subset

log = logging.getLogger("pythonapp_operator")

Obj = dict[str, Any]
Key = tuple[str, str]

#: on the Deployment: a hash of the pod template the operator last applied
TEMPLATE_HASH_ANNOTATION = "pythonapp.dev/template-hash"
#: on the Deployment: the PythonApp metadata.generation it was rendered for
GENERATION_ANNOTATION = "pythonapp.dev/rendered-generation"
#: on the Deployment, from a paced apply only (not part of the desired state): the app
#: generation whose render-only rollout the gate admitted; read back after a restart
PACED_ANNOTATION = "pythonapp.dev/paced-rollout"
#: on the pod template, only when the test seam PYTHONAPP_RENDER_EPOCH is set: stands for "a
#: new operator release renders the template differently" in tests and rehearsals
RENDER_EPOCH_ANNOTATION = "pythonapp.dev/render-epoch"
#: the Ready/Reconciling reason of an app whose render-only rollout waits for a slot
ROLLOUT_QUEUED = "RolloutQueued"
#: a waiting app is looked at again after this long even if no slot was offered to it (a
#: fallback: a freed slot is offered to the apps waiting longest at once)
QUEUED_RECHECK_SECONDS = 300.0
#: ``--max-rollouts`` when not given: bounded by default (0 means no bound)
DEFAULT_MAX_ROLLOUTS = 10


def template_hash(template: Obj) -> str:
    """A stable hash of a rendered pod template."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def stamp(manifest: Obj, generation: int | None, epoch: str | None = None) -> Obj:
    """The rendered Deployment with its records (:data:`TEMPLATE_HASH_ANNOTATION`,
    :data:`GENERATION_ANNOTATION`) on its metadata, and the render epoch on its template when
    the test seam asks for one. Any other manifest is returned as it is."""
    if manifest.get("kind") != "Deployment":
        return manifest
    spec = dict(manifest["spec"])
    template = spec["template"]
    if epoch:
        tmeta = dict(template.get("metadata") or {})
        tmeta["annotations"] = {**(tmeta.get("annotations") or {}), RENDER_EPOCH_ANNOTATION: epoch}
        template = {**template, "metadata": tmeta}
        spec["template"] = template
    meta = dict(manifest["metadata"])
    records = {TEMPLATE_HASH_ANNOTATION: template_hash(template)}
    if generation is not None:
        records[GENERATION_ANNOTATION] = str(generation)
    meta["annotations"] = {**(meta.get("annotations") or {}), **records}
    return {**manifest, "metadata": meta, "spec": spec}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _template(obj: Mapping[str, Any]) -> Obj:
    template: Obj = (obj.get("spec") or {}).get("template") or {}
    return template


def _images(template: Obj) -> list[Any]:
    return [c.get("image") for c in (template.get("spec") or {}).get("containers") or []]


def _checksums(template: Obj) -> dict[str, Any]:
    notes = (template.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in notes.items() if k.startswith(SECRET_HASH_PREFIX)}


def template_changes(desired: Obj, live: Obj) -> bool:
    """Applying ``desired`` changes the live pod template (and so rolls the pods). Read from
    the live Deployment's record of what was applied; a Deployment without one (applied by
    an older release) is compared field by field."""
    recorded = _annotations(live).get(TEMPLATE_HASH_ANNOTATION)
    wanted = _annotations(desired).get(TEMPLATE_HASH_ANNOTATION)
    if recorded is not None and wanted is not None:
        return bool(recorded != wanted)
    return not is_subset(_template(desired), _template(live))


def render_only(
    desired: Obj, live: Obj, *, generation: int | None, observed_generation: int | None
) -> bool:
    """Applying ``desired`` (stamped, :func:`stamp`) over ``live`` would roll the pods for a
    change of the operator's own: the template changes while the app's generation, image and
    Secret checksums do not. ``observed_generation`` (the app's ``status``) stands in for a
    generation record that a Deployment applied by an older release lacks."""
    if not template_changes(desired, live):
        return False
    recorded = _int(_annotations(live).get(GENERATION_ANNOTATION))
    rendered_for = recorded if recorded is not None else observed_generation
    if generation is None or rendered_for != generation:
        return False  # the app's author changed the spec
    before, after = _template(live), _template(desired)
    if _images(before) != _images(after):
        return False  # a new image (the migrations gate passed it), or the image drifted
    return _checksums(before) == _checksums(after)  # else a Secret rotation


def rollout_finished(deployment: Mapping[str, Any]) -> bool:
    """The Deployment's rollout is finished, as ``kubectl rollout status`` says: its
    controller saw the latest template, every pod is updated and available, no old one left."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    updated = st.get("updatedReplicas", 0)
    return bool(
        st.get("observedGeneration", 0) >= meta.get("generation", 0)
        and updated >= replicas
        and st.get("replicas", 0) <= updated
        and st.get("availableReplicas", 0) >= updated
    )


def paced_generation(deployment: Mapping[str, Any]) -> int | None:
    """The generation a paced apply recorded on this Deployment, if any."""
    return _int(_annotations(deployment).get(PACED_ANNOTATION))


@dataclass(frozen=True)
class Counts:
    """What the gate holds: for the metrics and the log."""

    limit: int
    active: int
    pending: int
    admitted: int


class RolloutGate:
    """At most ``limit`` render-only rollouts at once (0: no bound).

    ``active``: app key -> the app generation its slot was taken for. ``waiting``: app keys
    refused a slot, oldest first (their order decides who is offered a freed slot first).
    Thread-safe: reconciles of different apps call it from their threads.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"the rollout limit must be >= 0, not {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._active: dict[Key, int] = {}
        self._waiting: dict[Key, None] = {}
        self._admitted = 0

    @property
    def bounded(self) -> bool:
        return self.limit > 0

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self.limit, len(self._active), len(self._waiting), self._admitted)

    def holds(self, key: Key) -> int | None:
        """The generation ``key``'s slot was taken for, or None when it holds none."""
        with self._lock:
            return self._active.get(key)

    def admit(self, key: Key, generation: int) -> bool:
        """A slot for ``key``'s render-only rollout: True when it holds one (now or already);
        False when all are taken (``key`` then waits, in arrival order)."""
        with self._lock:
            if key in self._active:
                self._active[key] = generation
                return True
            if self.limit and len(self._active) >= self.limit:
                self._waiting.setdefault(key, None)
                return False
            self._waiting.pop(key, None)
            self._active[key] = generation
            self._admitted += 1
            counts = Counts(self.limit, len(self._active), len(self._waiting), self._admitted)
        log.info(
            "operator upgrade: rollout admitted",
            extra={"app": "/".join(key), "generation": generation, **_fields(counts)},
        )
        return True

    def adopt(self, key: Key, generation: int) -> None:
        """After a restart: ``key``'s paced rollout, found unfinished, holds a slot again
        (even beyond the limit: it runs already)."""
        with self._lock:
            self._waiting.pop(key, None)
            self._active[key] = generation

    def release(self, key: Key, why: str) -> bool:
        """``key`` gives back its slot (its rollout finished, or it no longer needs one);
        True when it held one."""
        with self._lock:
            if self._active.pop(key, None) is None:
                return False
            counts = Counts(self.limit, len(self._active), len(self._waiting), self._admitted)
        log.info(
            "operator upgrade: rollout slot released",
            extra={"app": "/".join(key), "why": why, **_fields(counts)},
        )
        if counts.active == 0 and counts.pending == 0:
            log.info("operator upgrade: every paced rollout finished", extra=_fields(counts))
        return True

    def withdraw(self, key: Key) -> None:
        """``key`` no longer waits (its change is not render-only any more, or was made)."""
        if key in self._waiting:  # a cheap look first: most reconciles wait for nothing
            with self._lock:
                self._waiting.pop(key, None)

    def forget(self, key: Key) -> bool:
        """The app went: it neither waits nor holds a slot. True when it held one."""
        self.withdraw(key)
        return self.release(key, "the app was deleted")

    def next_waiting(self) -> list[Key]:
        """The oldest waiting keys, as many as there are free slots: the ones to look at
        again now that a slot is free."""
        if not self._waiting:  # a cheap look first: nothing waits but during an upgrade
            return []
        with self._lock:
            free = len(self._waiting) if not self.limit else self.limit - len(self._active)
            return list(self._waiting)[: max(0, free)]


def _fields(counts: Counts) -> dict[str, int]:
    return {"active": counts.active, "pending": counts.pending, "limit": counts.limit}
