"""kopf glue: map every cause onto the one reconcile, and nothing else.

Why raw event handlers (``@kopf.on.event``) rather than create/update/resume handlers: those
make kopf write its own annotations (last-handled configuration, progress) onto every
PythonApp, which GitOps tools then see and which cost writes. Event handlers are level-based
by nature: each event, whatever its cause, asks "is everything as the spec says?", and kopf
writes nothing. The initial listing at start-up is the "resume"; there are no finalizers
(children are garbage-collected through owner references); a resync loop covers anything a
watch could miss. Child objects are watched only to find their owner and reconcile it, never
with change-tracking handlers that would annotate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import kopf

from . import GROUP, KIND, PLURAL, VERSION
from .kube import Cluster
from .reconcile import CHILD_KINDS, reconcile
from .render import MANAGED_BY

log = logging.getLogger("pythonapp_operator")

RESYNC_SECONDS = float(os.environ.get("PYTHONAPP_RESYNC_SECONDS", "300"))
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}

Key = tuple[str, str]


class State:
    """What the handlers share: the client, known apps, and a lock per app."""

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.known: set[Key] = set()
        self.locks: dict[Key, asyncio.Lock] = {}
        self.resync_task: asyncio.Task[None] | None = None
        self.unsettled: set[str] = set()


STATE = State()


async def reconcile_key(key: Key, cause: str) -> None:
    """Reconcile one app, one at a time per app (causes may arrive together)."""
    cluster = STATE.cluster
    if cluster is None:
        return
    lock = STATE.locks.setdefault(key, asyncio.Lock())
    async with lock:
        try:
            outcome = await asyncio.to_thread(reconcile, cluster, *key, unsettled=STATE.unsettled)
        except Exception:
            log.exception("reconcile failed", extra={"app": "/".join(key), "cause": cause})
            return
    if outcome.gone:
        STATE.known.discard(key)
        STATE.locks.pop(key, None)
        return
    if outcome.writes or outcome.problems:
        log.info(
            "reconciled",
            extra={
                "app": "/".join(key),
                "cause": cause,
                "applied": outcome.applied,
                "deleted": outcome.deleted,
                "status_patched": outcome.status_patched,
                "problems": outcome.problems,
            },
        )


async def _resync_forever() -> None:
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        for key in sorted(STATE.known):
            await reconcile_key(key, "resync")


def tune(settings: kopf.OperatorSettings, *, clusterwide: bool) -> None:
    """Production settings; see the module docstring and the README for the reasons.

    ``clusterwide`` is False when the operator was given exact namespaces (``--namespace``).
    Then kopf's cluster scanning is off: kopf otherwise lists and watches all Namespaces (to
    match namespace patterns) and all CRDs (to notice resources appearing or changing) even in
    namespaced mode, and without a cluster-wide grant for that it retries the forbidden lists
    nine times (about a minute during which no app is reconciled) before falling back with
    warnings. With scanning off kopf serves exactly the namespaces given (patterns would be
    ignored: the CLI and runner accept exact names only) and the resources discovered at
    start-up (``/apis`` discovery, open to every authenticated user), so the namespaced
    installation needs no ClusterRole at all. The price, in namespaced mode only: the
    PythonApp CRD must be installed before the operator starts, and a CRD upgrade that adds or
    changes a served version, or a deleted-and-recreated CRD, is seen after a restart.
    Cluster-wide mode keeps scanning on: its ClusterRole lets it watch CRDs and notice the
    PythonApp CRD installed or upgraded while it runs (it never lists Namespaces anyway).
    """
    settings.scanning.disabled = not clusterwide
    # Our own prefix, should a change-tracking handler ever be added; none write today.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # kopf would otherwise turn log lines into Event objects: writes nobody asked for.
    settings.posting.enabled = False
    # Watches end server-side every 5 minutes and are re-established: no silent stalls.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 8


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings (``tune``), the API client and the resync loop, before any watch starts.

    The scope comes from runner.run_operator in kopf's memo (``kopf.run(memo=...)``); a memo
    without it (kopf run by other means) keeps kopf's default, scanning on.
    """
    tune(settings, clusterwide=bool(memo.get("clusterwide", True)))
    STATE.cluster = await asyncio.to_thread(Cluster)
    STATE.resync_task = asyncio.create_task(_resync_forever())


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    """Stop the resync loop on SIGTERM."""
    if STATE.resync_task is not None:
        STATE.resync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await STATE.resync_task


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pythonapp_event(event: kopf.RawEvent, **_: Any) -> None:
    """Any event on a PythonApp (including the start-up listing) -> reconcile it."""
    meta: Any = event["object"]["metadata"]
    key = (str(meta["namespace"]), str(meta["name"]))
    if event["type"] == "DELETED":
        STATE.known.discard(key)
        STATE.locks.pop(key, None)
        return
    STATE.known.add(key)
    await reconcile_key(key, f"pythonapp {event['type'] or 'listed'}")


def _owner(body: Any) -> Key | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller") and GROUP in ref.get("apiVersion", ""):
            return (body["metadata"]["namespace"], ref["name"])
    return None


async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """A child changed or went away -> reconcile its owner (drift, recreation, status)."""
    key = _owner(body)
    if key is None or key not in STATE.known:
        return  # the owner's own event will reconcile it
    await reconcile_key(key, f"{body.get('kind', 'child')} {event['type'] or 'listed'}")


for _child in CHILD_KINDS:
    _group, _, _version = _child.api_version.rpartition("/")
    kopf.on.event(_group, _version, _child.plural, labels=MANAGED)(child_event)
