"""The controller at run time: informers, cache, work queue, workers, resync, health.

The way controller-runtime's manager runs a controller:

- one :class:`~.informer.Informer` per watched kind and scope lists and watches it on a thread
  of its own and hands every change to the event loop, where the :class:`~.cache.Store` is
  updated and the key of the app it concerns is enqueued (an app event: the app; a child
  event: its controlling app). A listing replaces the kind's contents, so a deletion missed
  while no watch ran is noticed;
- ``workers`` tasks take keys from the :class:`~.workqueue.WorkQueue` and run the reconcile in
  a thread pool of the same size (the official client is synchronous), from a snapshot of the
  cache and the app's own :class:`~.reconcile.Memory`; write responses go back into the cache
  at once (never reviving an object whose deletion was seen);
- a failed reconcile is retried with per-key backoff; a success resets it;
- no worker starts before every informer has listed once, so a restart over converged apps
  reconciles from a complete cache, at once, and writes nothing;
- the resync enqueues every app with jitter over a window rather than walking them in turn;
- the rollout gate (:mod:`.rollouts`, ``--max-rollouts``) is shared by the workers: rebuilt
  from the cached Deployments when the cache is synced and when this replica starts leading,
  and a free slot is offered to the apps waiting longest after every reconcile;
- a task or informer that dies makes the controller unhealthy, with the cause (``/healthz``
  fails and the kubelet restarts the pod), never a silent operator with nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .. import GROUP, VERSION
from ..api.policy import POLICY_NAME, PythonAppPolicySpec, policy_from
from ..platformpolicy import describe as describe_policy
from ..platformpolicy import route_defaults as policy_route_defaults
from ..routing import RouteDefaults, Routing
from .cache import Change, Entry, Store
from .client import RestApi
from .failures import CONFIG_MISSING, SECRET_MISSING
from .fanout import ThreadFanout
from .informer import Delta, Died, Event, Forbidden, Informer, Listed, Missing
from .kinds import (
    APP,
    CHILD_KINDS,
    CONFIGMAP,
    HTTPROUTE_KIND,
    KINDS_BY_KIND,
    OBSERVED_KINDS,
    POLICY,
    ROUTE_KINDS,
    SECRET,
    WATCHED_KINDS,
    Key,
    WatchedKind,
    owner_key,
    trim,
)
from .metrics import Metrics
from .reconcile import Memory, Outcome, Snapshot, reconcile
from .referenced import References, config_names, secret_names
from .rollouts import DEFAULT_MAX_ROLLOUTS, RolloutGate, paced_generation, rollout_finished
from .workqueue import ShutDown, WorkQueue

log = logging.getLogger("pythonapp_operator")
DEPLOYMENT = KINDS_BY_KIND["Deployment"]

#: the reason an app reports for a missing object of each referenced kind
_MISSING_REASON = {SECRET.kind: SECRET_MISSING, CONFIGMAP.kind: CONFIG_MISSING}


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


def _observed_change(kind: WatchedKind) -> Change:
    """How a change of an app-labelled kind is queued: a pod's or ReplicaSet's only feeds the
    status (gathered over ``status_coalesce_seconds``); a Job's decides the migrations gate
    (its trimmed status is only whether it ended), so the rollout it holds back goes at once
    rather than a coalescing delay and a place behind the status work later."""
    return Change.OTHER if kind.kind == "Job" else Change.STATUS


@dataclass
class Settings:
    """Knobs of the controller (CLI flags and environment, see runner)."""

    workers: int = 16
    resync_seconds: float = 300.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    #: how soon a kind that is not served is listed again: the PythonApp CRD (at most 10 s),
    #: a kind that may be unserved (the Gateway API's HTTPRoutes: a GET per scope a minute)
    crd_poll_seconds: float = 60.0
    #: status-only child changes within this window make one reconcile (one status write)
    status_coalesce_seconds: float = 1.0
    #: the platform's defaults for spec.expose (:mod:`..routing`; the operator's options)
    route_defaults: RouteDefaults = field(default_factory=RouteDefaults)
    #: render-only rollouts (an operator upgrade) at once; 0: no bound (:mod:`.rollouts`)
    max_rollouts: int = DEFAULT_MAX_ROLLOUTS
    #: the test seam PYTHONAPP_RENDER_EPOCH: a pod template annotation standing for a new
    #: release's render (:data:`.rollouts.RENDER_EPOCH_ANNOTATION`); None in production
    render_epoch: str | None = None


class Controller:
    """One running controller; created at start-up, shared with the health endpoint."""

    def __init__(
        self,
        api: RestApi,
        settings: Settings,
        namespaces: list[str],
        watch_api: RestApi | None = None,
    ) -> None:
        self.api, self.settings, self.namespaces = api, settings, namespaces
        #: the informers' own connections: a watch holds one for minutes
        self.watch_api = watch_api or api
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue(
            base_delay=settings.backoff_base, max_delay=settings.backoff_max
        )
        #: per app, what its reconciles remember (:class:`Memory`); kept on the loop's thread
        self.memories: dict[Key, Memory] = {}
        #: paces render-only rollouts (an operator upgrade); None: no bound
        self.pacer = RolloutGate(settings.max_rollouts) if settings.max_rollouts > 0 else None
        self.metrics = Metrics()
        self.metrics.watch(
            self.queue,
            self.store,
            self.flags,
            lambda: Counter(api.requests),
            rollouts=self.pacer.counts if self.pacer is not None else None,
        )
        self.synced = asyncio.Event()
        #: set while this replica may write (it leads, or leader election is off): the workers,
        #: the only writers, take no key while it is clear; the cache fills regardless (leader.py)
        self.leading = asyncio.Event()
        self.leading.set()
        self.crd_installed = True
        #: per referenced kind (Secrets, ConfigMaps): who names which, whether the operator
        #: may read them (RBAC decides; an install that grants none works without the check
        #: and rotation), the digests shared by every app's reconcile (:mod:`.referenced`)
        self.secrets = References(SECRET, secret_names)
        self.configmaps = References(CONFIGMAP, config_names)
        self.references = {SECRET.kind: self.secrets, CONFIGMAP.kind: self.configmaps}
        #: the cluster serves the Gateway API's HTTPRoutes and the operator may list them: its
        #: HTTPRoute watch says so (a listing, or a 404 / 403 that is tried again later)
        self.gateway_api_served = False
        #: route kinds RBAC refused to list, said once each
        self._routes_refused: set[str] = set()
        #: the platform policy as last parsed: ((uid, resourceVersion) of the object, its spec)
        self._policy: tuple[tuple[str | None, str | None] | None, PythonAppPolicySpec | None] = (
            None,
            None,
        )
        #: why the operator works without a platform policy (no CRD, no RBAC), said once each
        self._policy_said: set[str] = set()
        self._policy_announced = False
        #: why the controller can no longer do its job (a task or an informer died), if so
        self.dead: str | None = None
        self._last_failure: dict[Key, str] = {}
        self._executor = ThreadPoolExecutor(
            max(1, settings.workers), thread_name_prefix="reconcile"
        )
        self._fanout = ThreadFanout(fanout_threads(max(1, settings.workers)))
        self._tasks: list[asyncio.Task[None]] = []
        scopes: list[str | None] = list(namespaces) or [None]
        self.informers = [
            Informer(
                kind,
                scope,
                self.watch_api,
                self.store,
                self._deliver,
                # the PythonApp CRD is awaited (nothing works without it); a kind that may be
                # unserved (the Gateway API) is looked for again on a slow refresh
                missing_wait=min(10.0, settings.crd_poll_seconds)
                if kind is APP
                else settings.crd_poll_seconds,
            )
            for kind in WATCHED_KINDS
            for scope in ([None] if kind.cluster_scoped else scopes)
        ]
        self._unlisted = {id(i) for i in self.informers}
        self._by_scope = {(i.kind.kind, i.namespace): id(i) for i in self.informers}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- state -------------------------------------------------------------------------------
    def flags(self) -> dict[str, bool]:
        return {
            "cache_synced": self.synced.is_set(),
            "caught_up": self.caught_up(),
            "crd_installed": self.crd_installed,
            "secrets_readable": self.secrets.readable,
            "configmaps_readable": self.configmaps.readable,
            "gateway_api_served": self.gateway_api_served,
            "leader": self.leading.is_set(),
        }

    def caught_up(self) -> bool:
        """Every kind listed and every key queued so far processed (retries may still wait)."""
        return self.synced.is_set() and self.queue.idle()

    def healthy(self) -> tuple[bool, str]:
        if self.dead is not None:
            return False, f"the controller stopped working: {self.dead}; restart the operator"
        if not self.crd_installed:
            return False, (
                f"the PythonApp CRD ({APP.plural}.{GROUP}/{VERSION}) is not installed: "
                "kubectl apply -f crds/pythonapps.yaml"
            )
        return True, "ok"

    # -- what the informers say (on the loop's thread) ---------------------------------------
    def _deliver(self, delta: Delta) -> None:
        """Called on an informer's thread: hand the delta to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_delta, delta)

    def on_delta(self, delta: Delta) -> None:
        """One listing, event, missing kind or dead informer, on the loop's thread."""
        if isinstance(delta, Event):
            self._on_event(delta)
        elif isinstance(delta, Listed):
            self._on_listed(delta)
        elif isinstance(delta, Missing):
            if delta.kind is not APP:
                self._unserved(delta)
            elif self.crd_installed:
                self.crd_installed = False
                log.error(self.healthy()[1])
        elif isinstance(delta, Forbidden):
            self._forbidden(delta)
        elif isinstance(delta, Died):
            self._died(f"the {delta.kind.kind} informer: {delta.cause}")

    @property
    def secrets_readable(self) -> bool:
        """The operator may list Secrets: the Secret check and rotation are on."""
        return self.secrets.readable

    def _forbidden(self, delta: Forbidden) -> None:
        """An optional kind may not be listed: its feature is off, said once; the cache counts
        as synced without it (apps must not wait for what they will never get)."""
        if delta.kind in ROUTE_KINDS:
            self._routes_forbidden(delta)
        if delta.kind is POLICY:
            self._without_policy(
                "forbidden",
                f"the operator may not list {POLICY.plural}.{GROUP}: the platform policy is "
                "not applied (its defaults, PolicyViolation); grant get, list and watch on "
                "them (deploy/README.md)",
                delta.message,
            )
        refs = self.references.get(delta.kind.kind)
        if refs is not None and refs.readable:
            refs.readable = False
            log.warning(
                f"the operator may not list {refs.kind.kind}s: the {refs.kind.kind} check "
                f"({_MISSING_REASON[refs.kind.kind]}) and rotation are off; grant list, watch "
                f"and get on {refs.plural} to turn them on (deploy/README.md)",
                extra={"error": delta.message},
            )
            for key in self.store.keys(APP):  # reconcile them without the check
                self._enqueue_app(APP, key, Change.OTHER)
        self._mark_listed(delta.kind, None)

    # -- the platform policy ------------------------------------------------------------------
    def policy(self) -> PythonAppPolicySpec | None:
        """The platform policy now: the spec of the PythonAppPolicy ``cluster`` as cached
        (parsed once per version), None without one."""
        entry = self.store.objects.get(POLICY.kind, {}).get(("", POLICY_NAME))
        version = None if entry is None else (entry.uid, entry.rv_text)
        if version == self._policy[0]:
            return self._policy[1]
        spec: PythonAppPolicySpec | None = None
        obj = self.store.get(POLICY, "", POLICY_NAME)
        if obj is not None:
            try:
                spec = policy_from(obj).spec
            except ValidationError as exc:  # the CRD refuses what the models refuse: a bug
                log.error(
                    "the platform policy cannot be read; working without it",
                    extra={"error": str(exc).replace("\n", "; ")},
                )
        self._policy = (version, spec)
        return spec

    def _without_policy(self, why: str, message: str, error: str | None = None) -> None:
        """The operator works without the platform policy (no CRD, no RBAC): said once; a
        warning when RBAC refuses it (an install may have lost a grant it meant to give),
        information when the CRD is not installed (a cluster that has no policy)."""
        if why in self._policy_said:
            return
        self._policy_said.add(why)
        level = logging.WARNING if error else logging.INFO
        log.log(level, message, extra={"error": error} if error else {})
        self._policy_changed()

    def _policy_changed(self) -> None:
        """The policy object appeared, changed or went: said, and every app is reconciled
        (its defaults and its verdict may change; nothing is torn down)."""
        before = self._policy[1]
        now = self.policy()
        if before == now and self._policy_announced:
            return  # a new version of the same policy (its metadata): nothing to do
        self._policy_announced = True
        log.info("platform policy", extra={"policy": dict(describe_policy(now))})
        if not self.synced.is_set():
            return  # every app is reconciled once the cache is synced
        for key in self.store.keys(APP):
            self._enqueue_app(APP, key, Change.OTHER)

    # -- spec.expose: is the Gateway API served? ---------------------------------------------
    def routing(self) -> Routing:
        """What decides the apps' routes now (:mod:`..routing`): the operator's options, the
        platform policy filling what they leave unset."""
        defaults = policy_route_defaults(self.settings.route_defaults, self.policy())
        return Routing(defaults, self.gateway_api_served)

    def _unserved(self, delta: Missing) -> None:
        """A kind that may be unserved is not (its CRD is not installed, or was removed): the
        cache holds none of it (the API server deleted them with their CRD), the apps that
        expose themselves get an Ingress instead, and the listing is tried again later."""
        _, removed = self.store.replace(delta.kind, delta.namespace, [], "")
        if self.synced.is_set():
            for key, entry in removed:
                self._gone(delta.kind, key, entry)
        if delta.kind is POLICY:
            self._without_policy(
                "unserved",
                f"the {POLICY.plural}.{GROUP} CRD is not installed: no platform policy "
                "(kubectl apply -f crds/pythonapppolicies.yaml to have one)",
            )
        if delta.kind is HTTPROUTE_KIND:
            self._gateway_api(False, "the cluster does not serve the Gateway API's HTTPRoutes")
        self._mark_listed(delta.kind, delta.namespace)

    def _routes_forbidden(self, delta: Forbidden) -> None:
        """RBAC refuses to list a route kind (an install whose rules predate spec.expose):
        the cache holds none of it (the operator cannot see them), said once; without
        HTTPRoutes exposed apps get Ingresses; without Ingresses they fail with Forbidden."""
        _, removed = self.store.replace(delta.kind, None, [], "")
        if self.synced.is_set():
            for key, entry in removed:
                self._gone(delta.kind, key, entry)
        if delta.kind.kind not in self._routes_refused:
            self._routes_refused.add(delta.kind.kind)
            log.warning(
                f"the operator may not list {delta.kind.plural}.{delta.kind.group}: apps with "
                "spec.expose "
                + (
                    "get Ingresses instead of HTTPRoutes"
                    if delta.kind is HTTPROUTE_KIND
                    else "fail (Forbidden) until it is granted"
                )
                + "; grant get, list, watch, create, patch and delete (deploy/README.md)",
                extra={"error": delta.message},
            )
        if delta.kind is HTTPROUTE_KIND:
            self._gateway_api(False, "the operator may not list HTTPRoutes")

    def _gateway_api(self, served: bool, why: str) -> None:
        """The Gateway API appeared or went: said once, and every app that exposes itself is
        reconciled (its route changes kind; the other one is removed as stale)."""
        if served == self.gateway_api_served:
            return
        self.gateway_api_served = served
        log.info(
            why,
            extra={
                "routes": self.routing().kind,
                "defaults": self.settings.route_defaults.describe(),
            },
        )
        for key in self.store.keys(APP):
            app = self.store.get(APP, *key) or {}
            if (app.get("spec") or {}).get("expose") is not None:
                self._enqueue_app(APP, key, Change.OTHER)

    def observe(self, kind: WatchedKind, body: Mapping[str, Any], event_type: str) -> None:
        """A watch event as the API server sends it (tests, and anything outside an informer)."""
        meta = body.get("metadata") or {}
        key, entry = self.store.encode(kind, trim(kind, body))
        self._on_event(
            Event(
                kind,
                event_type,
                key,
                meta.get("uid"),
                meta.get("resourceVersion"),
                None if event_type == "DELETED" else entry,
            )
        )

    def _on_event(self, event: Event) -> None:
        """Urgent: a new or edited app, a child deleted or edited by someone (what a person
        waits for). Not urgent, and gathered over ``status_coalesce_seconds``: a child whose
        status alone changed (pods starting make several such events per app in a few
        seconds; one reconcile, one status write, reports them all)."""
        kind, key = event.kind, event.key
        refs = self.references.get(kind.kind)
        if refs is not None and kind is refs.kind:
            self._on_referenced(refs, event)
            return
        if event.type == "DELETED":
            gone = self.store.delete(kind, *key, event.uid)
            if gone is not None:
                self._gone(kind, key, gone)
            return
        if event.entry is None:
            return
        change = self.store.put(kind, key, event.entry)
        if change:
            self._enqueue(kind, key, change)

    def _on_referenced(self, refs: References, event: Event) -> None:
        """A Secret or ConfigMap appeared, changed (its data, or only its metadata: the watch
        cannot tell) or went: the apps referencing it are reconciled (a reconcile reads it
        again only if its version moved, and writes only if its data did)."""
        key, kind = event.key, refs.kind
        held = self.store.objects.get(kind.kind, {}).get(key)
        if event.type == "DELETED":
            self.store.delete(kind, *key, event.uid)
            refs.digests.forget(*key)
        elif event.entry is not None:
            self.store.put(kind, key, event.entry)
        now = self.store.objects.get(kind.kind, {}).get(key)
        if (held and (held.uid, held.rv)) != (now and (now.uid, now.rv)):
            self._referenced_changed(refs, key)

    def _referenced_changed(self, refs: References, key: Key) -> None:
        for app in sorted(refs.users.get(key, ())):
            self._enqueue_app(refs.kind, (key[0], app), Change.OTHER)

    def _gone(self, kind: WatchedKind, key: Key, entry: Entry) -> None:
        """An object was deleted. A child bears its app's name (one per kind), so the app of
        that name is enqueued, whoever owned what was deleted: its own child is recreated, and
        an app that was NotOwned can now create the name that was held. A pod or ReplicaSet
        gone changes what the app's status says, no more: its app is enqueued with the
        status-only changes; a migration Job gone may let the gate start the next: urgent."""
        if kind is APP:
            self._forget(key)
        elif kind is POLICY:
            self._policy_changed()
        elif kind.app_label is not None:
            if entry.app is not None:
                self._enqueue_app(kind, (key[0], entry.app), _observed_change(kind))
        elif self.synced.is_set() and self.store.has(APP, *key):
            self.queue.add(key, urgent=True)

    def _on_listed(self, listed: Listed) -> None:
        kind = listed.kind
        refs = self.references.get(kind.kind)
        if refs is not None and kind is refs.kind:
            self._on_referenced_listed(refs, listed)
            return
        changed, removed = self.store.replace(
            kind, listed.namespace, listed.items, listed.resource_version
        )
        if kind in ROUTE_KINDS:
            self._routes_refused.discard(kind.kind)
        if kind is HTTPROUTE_KIND:
            self._gateway_api(True, "the cluster serves the Gateway API's HTTPRoutes")
        if kind is APP and not self.crd_installed:
            self.crd_installed = True
            log.info("the PythonApp CRD is installed")
        if self.synced.is_set():
            for key, change in changed:
                self._enqueue(kind, key, change)
            for key, entry in removed:
                self._gone(kind, key, entry)
            if changed or removed:
                log.info(
                    "listed again",
                    extra={
                        "kind": kind.kind,
                        "namespace": listed.namespace or "all",
                        "changed": len(changed),
                        "removed": len(removed),
                    },
                )
            return
        self._mark_listed(kind, listed.namespace)

    def _on_referenced_listed(self, refs: References, listed: Listed) -> None:
        kind = refs.kind
        if not refs.readable:
            refs.readable = True
            log.info(
                f"the operator may list {kind.kind}s: the {kind.kind} check and rotation are on"
            )
        held = self.store.objects.get(kind.kind, {})
        before = {k: (held[k].uid, held[k].rv) for k in refs.users if k in held}
        self.store.replace(kind, listed.namespace, listed.items, listed.resource_version)
        # a version moves without the trimmed content changing: compare versions
        held = self.store.objects.get(kind.kind, {})
        for key in list(refs.users):
            now = (held[key].uid, held[key].rv) if key in held else None
            if before.get(key) != now:
                refs.digests.forget(*key)
                self._referenced_changed(refs, key)
        self._mark_listed(kind, listed.namespace)

    def _mark_listed(self, kind: WatchedKind, namespace: str | None) -> None:
        """One informer has listed (or its kind is forbidden): once all have, start."""
        if namespace is None and kind.optional:
            for informer in self.informers:
                if informer.kind is kind:
                    self._unlisted.discard(id(informer))
        else:
            self._unlisted.discard(self._by_scope.get((kind.kind, namespace), 0))
        if not self._unlisted and not self.synced.is_set():
            self.mark_synced()

    def _enqueue(self, kind: WatchedKind, key: Key, change: Change) -> None:
        if kind is POLICY:
            self._policy_changed()
            return
        if not self.synced.is_set():
            return  # every app is enqueued once every kind is listed
        if kind is APP:
            owner: Key | None = key
        elif kind.app_label is not None:
            # what the pods say only feeds the status: gathered like status-only changes; a
            # migration Job's only changes (created, ended) open or shut the gate a rollout
            # waits on: urgent
            held = self.store.objects.get(kind.kind, {}).get(key)
            owner = None if held is None or held.app is None else (key[0], held.app)
            change = _observed_change(kind)
        else:
            child = self.store.get(kind, *key)
            owner = owner_key(child) if child is not None else None
        if owner is not None:
            self._enqueue_app(kind, owner, change)

    def _enqueue_app(self, kind: WatchedKind, owner: Key, change: Change) -> None:
        if not self.synced.is_set() or not self.store.has(APP, *owner):
            return
        if change is Change.OTHER:
            self.queue.add(owner, urgent=True)
        else:
            self.queue.add_after(owner, self.settings.status_coalesce_seconds)

    def _forget(self, key: Key) -> None:
        for refs in self.references.values():
            refs.use(key, ())
        self.queue.forget(key)
        self._last_failure.pop(key, None)
        self.memories.pop(key, None)
        if self.pacer is not None and self.pacer.forget(key):
            self._offer_slots()

    def _offer_slots(self) -> None:
        """While a rollout slot is free and apps wait, the apps waiting longest (as many as
        there are free slots) are looked at now. Cheap when none waits; a key already queued
        is queued once."""
        if self.pacer is None:
            return
        for waiting in self.pacer.next_waiting():
            if self.store.has(APP, *waiting):
                self.queue.add(waiting, urgent=True)
            else:
                self.pacer.forget(waiting)

    def _adopt_rollouts(self) -> None:
        """At start-up, from the cache (the API server's state, not a memory): every paced
        rollout a previous operator admitted and that has not finished holds a slot again."""
        if self.pacer is None:
            return
        adopted = 0
        for key in self.store.keys(APP):
            deployment = self.store.get(DEPLOYMENT, *key)
            if deployment is None:
                continue
            generation = paced_generation(deployment)
            if generation is not None and not rollout_finished(deployment):
                self.pacer.adopt(key, generation)
                adopted += 1
        if adopted:
            log.info(
                "operator upgrade: unfinished paced rollouts found at start-up hold their slots",
                extra={"active": adopted, "limit": self.pacer.limit},
            )

    def start_leading(self) -> None:
        """This replica now leads (on the loop's thread, before its workers take a key): the
        paced rollouts its predecessor left unfinished hold their slots here too."""
        if self.synced.is_set():
            self._adopt_rollouts()
        self.leading.set()

    def mark_synced(self) -> None:
        """Every informer has listed once: enqueue every app, let the workers run."""
        if not self.synced.is_set():
            self.synced.set()
            log.info("cache synced", extra={"apps": self.store.count(APP)})
            self._adopt_rollouts()
            for key in self.store.keys(APP):
                self.queue.add(key)

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        log.info(
            "routes for spec.expose",
            extra={"defaults": self.settings.route_defaults.describe()},
        )
        for informer in self.informers:
            informer.start()
        for i in range(self.settings.workers):
            self._spawn(self._worker(i), f"worker {i}")
        self._spawn(self._resync_forever(), "resync")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(functools.partial(self._task_done, name))
        self._tasks.append(task)

    def _task_done(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.queue.is_shut_down:
            return
        exc = task.exception()
        cause = f"{type(exc).__name__}: {exc}" if exc is not None else "it returned"
        log.error("a controller task ended", extra={"task": name, "cause": cause}, exc_info=exc)
        self._died(f"task {name!r} ended ({cause})")

    def _died(self, why: str) -> None:
        if self.dead is None:
            self.dead = why
            log.error("the controller stopped working; /healthz fails", extra={"cause": why})

    async def stop(self) -> None:
        self.queue.shutdown()
        for informer in self.informers:
            informer.stop()
        self.watch_api.close_streams()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # reported already
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
                    self._forget(key)
                    continue
                memory = self.memories.setdefault(key, Memory())
                outcome = await loop.run_in_executor(
                    self._executor,
                    functools.partial(
                        reconcile,
                        self.api,
                        snap,
                        memory,
                        fanout=self._fanout,
                        digests=self.secrets.digests,
                        config_digests=self.configmaps.digests,
                        pacer=self.pacer,
                        epoch=self.settings.render_epoch,
                    ),
                )
                self._absorb(key, outcome)
                result = self._finish(key, outcome)
            except Exception:
                result = "error"
                log.exception("reconcile crashed", extra={"app": "/".join(key)})
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
                self.metrics.observe(result, time.monotonic() - started)

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
        observed = {kind.kind: self.store.members_of(kind, *key) for kind in OBSERVED_KINDS}
        secrets, configmaps = (
            self._referenced(refs, key, app) for refs in self.references.values()
        )
        return Snapshot(
            app,
            children,
            versions,
            observed,
            secrets,
            configmaps,
            self.routing(),
            policy=self.policy(),
        )

    def _referenced(
        self, refs: References, key: Key, app: Mapping[str, Any]
    ) -> dict[str, tuple[str, str] | None] | None:
        """The objects of ``refs``' kind the app names, as the watch last saw them (name ->
        (uid, resourceVersion), None when absent); None when the kind may not be read."""
        names = refs.names_of(app)
        refs.use(key, names)
        if not refs.readable:
            return None
        held = self.store.objects.get(refs.kind.kind, {})
        seen: dict[str, tuple[str, str] | None] = {}
        for name in names:
            entry = held.get((key[0], name))
            seen[name] = None if entry is None else (entry.uid or "", entry.rv_text or "")
        return seen

    def _absorb(self, key: Key, outcome: Outcome) -> None:
        """Write responses into the cache, and what they tell.

        The response of the app's status patch carries the app as it is now: if its content
        differs from what the reconcile read (someone edited the spec meanwhile), the app is
        queued again here, because the edit's own watch event, older than the response, will
        be skipped as already held.
        """
        for kind, obj in outcome.written:
            change = self.store.upsert(kind, trim(kind, obj))
            if kind is APP and change is Change.OTHER:
                self.queue.add(key, urgent=True)
        for kind, namespace, name, uid in outcome.removed:
            if self.store.delete(kind, namespace, name, uid) is not None and kind is APP:
                self._forget((namespace, name))
        if not self.store.has(APP, *key) or outcome.gone:
            self.memories.pop(key, None)

    def _finish(self, key: Key, outcome: Outcome) -> str:
        app = "/".join(key)
        if outcome.gone:
            self.queue.forget(key)
            return "success"
        failure = outcome.failure
        # a slot freed (this app's rollout finished), or one offered before went unused (the
        # app offered it no longer waits): the apps waiting longest are looked at now
        self._offer_slots()
        if failure is None:
            self.queue.forget(key)
            if outcome.recheck_after is not None:
                self.queue.add_after(key, outcome.recheck_after)
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
                    "error": failure.message,
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
