"""The controller at run time: cache, work queue, workers, resync, CRD watch, metrics.

The kopf handlers (:mod:`.handlers`) only call :meth:`Controller.observe`; everything else
happens here, the way controller-runtime's manager runs a controller:

- the watches fill the :class:`~.cache.Store`; a change that matters enqueues the app's key
  (an app event: the app; a child event: its controlling app);
- ``workers`` tasks take keys from the :class:`~.workqueue.WorkQueue` and run the reconcile in
  a thread pool of the same size (the official client is synchronous), from a snapshot of the
  cache; write responses go back into the cache at once;
- a failed reconcile is retried with per-key backoff; a success resets it;
- no worker starts before every watched kind is listed: at start-up the controller lists each
  kind itself (one paged LIST per kind and scope, JSON straight into the trimmed cache), so a
  restart over converged apps reconciles from a complete cache, at once, and writes nothing.
  kopf's own listing then arrives as events for objects already held (no change, no work);
  kopf's per-object event machinery is what made a start over 3,000 objects take 87 s;
- the resync enqueues every app with jitter over a window rather than walking them in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import GROUP, VERSION
from .cache import Change, Entry, Store
from .client import ApiError, RestApi
from .fanout import ThreadFanout
from .kinds import APP, CHILD_KINDS, Key, WatchedKind, owner_key, trim
from .metrics import Metrics
from .reconcile import Memory, Outcome, Snapshot, reconcile
from .workqueue import ShutDown, WorkQueue

log = logging.getLogger("pythonapp_operator")


#: objects per page when listing (here and in kopf): a page is parsed whole, and 50
#: Deployments with their managedFields are ~3.5 MB of dicts
LIST_PAGE = 50


def fanout_threads(workers: int) -> int:
    """Threads shared by the workers' fan-outs (a new app's four isolation applies at once,
    the worker's own thread making one of them): two per worker. Requests in flight stay
    bounded by the client's own limit."""
    return 2 * workers


def http_connections(workers: int) -> int:
    """HTTP connections to keep: one per request that may be in flight (``workers``, see
    :attr:`RestApi.max_in_flight`) and a few for the listing and the CRD watch, so none is
    opened and dropped per request."""
    return workers + 4


@dataclass
class Settings:
    """Knobs of the controller (CLI flags and environment, see runner)."""

    workers: int = 16
    resync_seconds: float = 300.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    crd_poll_seconds: float = 60.0
    #: status-only child changes within this window make one reconcile (one status write)
    status_coalesce_seconds: float = 1.0


class Controller:
    """One running controller; created at start-up, shared with the handlers."""

    def __init__(self, api: RestApi, settings: Settings, namespaces: list[str]) -> None:
        self.api, self.settings, self.namespaces = api, settings, namespaces
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue(
            base_delay=settings.backoff_base, max_delay=settings.backoff_max
        )
        self.memory = Memory()
        self.metrics = Metrics()
        self.metrics.watch(self.queue, self.store, self.flags, lambda: Counter(api.requests))
        self.synced = asyncio.Event()
        #: set while this replica may write (it leads, or leader election is off): the workers,
        #: the only writers, take no key while it is clear; the cache fills regardless (leader.py)
        self.leading = asyncio.Event()
        self.leading.set()
        self.crd_installed = True
        self._last_failure: dict[Key, str] = {}
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="reconcile")
        self._fanout = ThreadFanout(fanout_threads(settings.workers))
        self._tasks: list[asyncio.Task[None]] = []

    # -- state -------------------------------------------------------------------------------
    def flags(self) -> dict[str, bool]:
        return {
            "cache_synced": self.synced.is_set(),
            "caught_up": self.caught_up(),
            "crd_installed": self.crd_installed,
            "leader": self.leading.is_set(),
        }

    def caught_up(self) -> bool:
        """Every kind listed and every key queued so far processed (retries may still wait)."""
        return self.synced.is_set() and self.queue.idle()

    def healthy(self) -> tuple[bool, str]:
        if not self.crd_installed:
            return False, (
                f"the PythonApp CRD ({APP.plural}.{GROUP}/{VERSION}) is not installed: "
                "kubectl apply -f crds/pythonapps.yaml"
            )
        return True, "ok"

    # -- watch events ------------------------------------------------------------------------
    def observe(self, kind: WatchedKind, body: Mapping[str, Any], event_type: str | None) -> None:
        """A watch event (or a listed object): update the cache, enqueue whom it concerns.

        Urgent: a new or edited app, a child deleted or edited by someone (what a person waits
        for). Not urgent, and gathered over ``status_coalesce_seconds``: a child whose status
        alone changed (pods starting make several such events per app in a few seconds; one
        reconcile, one status write, reports them all).
        """
        meta = body.get("metadata") or {}
        key: Key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event_type != "DELETED" and self.store.holds(
            kind, key, meta.get("uid"), meta.get("resourceVersion")
        ):
            return  # an echo of our own write, or listed already: nothing to do
        obj = trim(kind, body)
        if event_type == "DELETED":
            if not self.store.delete(kind, *key, meta.get("uid")):
                return
            if kind is APP:
                self._forget(key)
                return
            change = Change.OTHER
        else:
            change = self.store.upsert(kind, obj)
            if not change:
                return  # an echo of our own write, or nothing that matters changed
        owner = key if kind is APP else owner_key(obj)
        if owner is None or not self.store.has(APP, *owner):
            return
        if change is Change.OTHER:
            self.queue.add(owner, urgent=True)
        else:
            self.queue.add_after(owner, self.settings.status_coalesce_seconds)

    def _forget(self, key: Key) -> None:
        self.queue.forget(key)
        self._last_failure.pop(key, None)
        self.memory.forget(*key)

    def mark_synced(self) -> None:
        """Every watched kind has been listed: the workers may start."""
        if not self.synced.is_set():
            self.synced.set()
            log.info("cache synced", extra={"apps": self.store.count(APP)})

    async def prime(self) -> None:
        """List every watched kind into the cache, enqueue every app, then let workers run.

        Retried with backoff until the API server answers (the health endpoint stays up).
        """
        loop = asyncio.get_running_loop()
        delay = 1.0
        while True:
            try:
                listed = await loop.run_in_executor(self._executor, self._list_all)
                break
            except ApiError as err:
                log.warning(
                    "listing failed; retrying", extra={"error": str(err), "retry_in": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        for kind, key, entry in listed:
            self.store.put(kind, key, entry)
        self.mark_synced()
        for key in self.store.keys(APP):
            self.queue.add(key)

    def _list_all(self) -> list[tuple[WatchedKind, Key, Entry]]:
        """Every watched object, already in the cache's compact form.

        Each page is encoded as soon as it is parsed: holding the listed objects as dicts until
        the end would hold the whole cache as dicts (~5x its compact size) at once, which at
        2,000 apps made a restart peak at 172 MiB RSS.
        """
        out: list[tuple[WatchedKind, Key, Entry]] = []
        scopes: list[str | None] = list(self.namespaces) or [None]
        for kind in (APP, *CHILD_KINDS):
            for namespace in scopes:
                query = {"limit": str(LIST_PAGE)}
                if kind.selector:
                    query["labelSelector"] = kind.selector
                while True:
                    status, data = self.api.request("GET", kind.path(namespace), query=query)
                    if status == 404 and kind is APP:
                        break  # no CRD yet: nothing to list (the health endpoint says so)
                    if status >= 300:
                        raise ApiError.from_response(status, data)
                    page = json.loads(data)
                    for item in page.get("items") or []:
                        out.append((kind, *self.store.encode(kind, trim(kind, item))))
                    token = (page.get("metadata") or {}).get("continue")
                    if not token:
                        break
                    query = {**query, "continue": token}
        return out

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(i)) for i in range(self.settings.workers)]
        self._tasks.append(loop.create_task(self.prime()))
        self._tasks.append(loop.create_task(self._resync_forever()))
        self._tasks.append(loop.create_task(self._watch_crd()))

    async def stop(self) -> None:
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ShutDown):
                await task
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._fanout.shutdown()

    async def _worker(self, number: int) -> None:
        await self.synced.wait()
        loop = asyncio.get_running_loop()
        while True:
            await self.leading.wait()
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            started = time.monotonic()
            result = "success"
            try:
                snap = self.snapshot(key)
                if snap is None:
                    self.queue.forget(key)
                    continue
                outcome = await loop.run_in_executor(
                    self._executor,
                    functools.partial(reconcile, self.api, snap, self.memory, fanout=self._fanout),
                )
                self._absorb(outcome)
                result = self._finish(key, outcome)
            except Exception:
                result = "error"
                log.exception("reconcile crashed", extra={"app": "/".join(key)})
                self.queue.add_rate_limited(key)
            finally:
                self.metrics.observe(result, time.monotonic() - started)
                self.queue.done(key)

    def snapshot(self, key: Key) -> Snapshot | None:
        app = self.store.get(APP, *key)
        if app is None:
            return None
        children, versions = {}, {}
        for kind in CHILD_KINDS:
            child = self.store.get(kind, *key)
            if child is not None:
                children[kind.kind] = child
                versions[kind.kind] = self.store.version(kind, *key)
        return Snapshot(app, children, versions)

    def _absorb(self, outcome: Outcome) -> None:
        for kind, obj in outcome.written:
            self.store.upsert(kind, trim(kind, obj))
        for kind, namespace, name, uid in outcome.removed:
            self.store.delete(kind, namespace, name, uid)

    def _finish(self, key: Key, outcome: Outcome) -> str:
        app = "/".join(key)
        if outcome.gone:
            self.queue.forget(key)
            return "success"
        failure = outcome.failure
        if failure is None:
            self.queue.forget(key)
            if self._last_failure.pop(key, None) is not None:
                log.info("recovered", extra={"app": app})
            if outcome.writes:
                log.info(
                    "reconciled",
                    extra={
                        "app": app,
                        "applied": outcome.applied,
                        "deleted": outcome.deleted,
                        "status_patched": outcome.status_patched,
                        "problems": outcome.problems,
                    },
                )
            return "success"
        delay = self.queue.add_rate_limited(key)
        said = f"{failure.reason}: {failure.message}"
        if self._last_failure.get(key) != said:
            self._last_failure[key] = said
            log.warning(
                "reconcile failed; retrying with backoff",
                extra={
                    "app": app,
                    "reason": failure.reason,
                    "message": failure.message,
                    "retry_in_seconds": round(delay, 1),
                },
            )
        return "requeue"

    async def _resync_forever(self) -> None:
        """Every ``resync_seconds``, enqueue every app, spread over a window with jitter."""
        period = self.settings.resync_seconds
        window = min(60.0, period / 2)
        await self.synced.wait()
        while True:
            await asyncio.sleep(period)
            for key in self.store.keys(APP):
                self.queue.add_after(key, random.random() * window)  # noqa: S311 (jitter)

    async def _watch_crd(self) -> None:
        """Keep ``crd_installed`` true to the API server (the health endpoint reports it)."""
        loop = asyncio.get_running_loop()
        path = f"/apis/{GROUP}/{VERSION}"
        while True:
            try:
                status, _ = await loop.run_in_executor(
                    self._executor, lambda: self.api.request("GET", path)
                )
                installed = status != 404
            except ApiError:
                installed = self.crd_installed  # unreachable: say nothing new
            if installed != self.crd_installed:
                self.crd_installed = installed
                if installed:
                    log.info("the PythonApp CRD is installed")
                else:
                    log.error(self.healthy()[1])
            await asyncio.sleep(
                self.settings.crd_poll_seconds
                if installed
                else min(10.0, self.settings.crd_poll_seconds)
            )
