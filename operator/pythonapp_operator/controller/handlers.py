"""kopf glue: watches feed the controller's cache; nothing else happens here.

Why raw watch handlers (``@kopf.on.event``) rather than
create/update/resume handlers: those make kopf write its own annotations onto every
PythonApp (writes, and noise in GitOps diffs), and they are edge-triggered. Here every event
only updates the cache and enqueues a key; the controller's level-based reconcile does the rest
(:mod:`.manager`).

Each watched kind gets one event handler: kopf calls it for every listed, changed or deleted
object, and it hands the object to the controller's cache (:meth:`Controller.observe`). The
controller lists every kind itself before its workers start (:meth:`Controller.prime`), so
kopf's own listing finds the cache already filled and causes no work.

Children are watched with a server-side label selector (``app.kubernetes.io/managed-by``), so
objects the operator does not manage never reach it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from .. import GROUP
from .kinds import APP, CHILD_KINDS, WatchedKind
from .manager import LIST_PAGE, Controller

log = logging.getLogger("pythonapp_operator")


class _Holder:
    controller: Controller | None = None
    health: Any = None


HOLDER = _Holder()


def tune(settings: kopf.OperatorSettings, *, clusterwide: bool) -> None:
    """Production settings for kopf.

    ``clusterwide`` is False when the operator was given exact namespaces (``--namespace``).
    Then kopf's cluster scanning is off: kopf otherwise lists and watches all Namespaces (to
    match namespace patterns) and all CRDs even in namespaced mode, and without a cluster-wide
    grant for that it retries the forbidden lists for about a minute. With scanning off kopf
    serves exactly the namespaces given and the resources discovered at start-up, so the
    namespaced installation needs no ClusterRole at all; the PythonApp CRD must then be
    installed before the operator starts (the health endpoint says so until it is, and the
    kubelet restarts the pod). Cluster-wide mode keeps scanning on and notices the CRD
    installed or upgraded while it runs.
    """
    settings.scanning.disabled = not clusterwide
    # Our own prefix, should a change-tracking handler ever be added; none write today.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    # kopf would otherwise turn log lines into Event objects: writes nobody asked for.
    settings.posting.enabled = False
    # Watches end server-side every 5 minutes and are re-established: no silent stalls.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    # Only managed children reach the operator: filtered by the API server, not in Python.
    for kind in (APP, *CHILD_KINDS):
        if kind.selector:
            settings.watching.label_selectors[kind.api_version, kind.plural] = kind.selector
    # Memory at start-up. kopf lists every watched kind too (besides the controller's own
    # listing, see Controller.prime), holds each page parsed while it hands the objects out,
    # and keeps one task per object alive, holding that object's last full body (with
    # managedFields), until it has been idle for ``idle_timeout``. A page of 500 Deployments
    # is ~36 MB of dicts (tracemalloc), and at start-up every object gets its task at once: a
    # restart over 500 converged apps peaked at 157 MiB RSS. Small pages, at most 64 objects'
    # tasks at a time and a short idle time bound that (with the compact cache: ~100 MiB at
    # 500 apps; docs/benchmark.md).
    settings.watching.chunk_size = LIST_PAGE
    # (safe here: a worker limit below the number of objects deadlocks start-up only with
    # @kopf.index handlers, kopf#1243, and there are none)
    settings.queueing.worker_limit = 64
    settings.queueing.idle_timeout = 0.1
    settings.persistence.diffbase_storage = NoDiffBase()


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled" essence: there are no change-detecting handlers to diff for.

    kopf builds each event's essence (a deep copy of the whole body, managedFields
    included, then trimmed) to diff it for on.create/on.update/on.field handlers; with event
    handlers only, the diff is never read. That copy was 11.7 % of the operator's CPU in a
    500-app burst (py-spy --gil, `python -m bench --profile-gil`).
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _register(kind: WatchedKind) -> None:
    # kopf's own filter repeats the server-side selector (kopf matches handlers client-side
    # too; both must agree)
    labels = dict([kind.selector.split("=", 1)]) if kind.selector else None

    async def event(event: kopf.RawEvent, **_: Any) -> None:
        if HOLDER.controller is not None:
            HOLDER.controller.observe(kind, event["object"], event["type"])

    kopf.on.event(kind.api_version, kind.plural, labels=labels, id=f"events-{kind.plural}")(event)


for _kind in (APP, *CHILD_KINDS):
    _register(_kind)
