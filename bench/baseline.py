"""The bare-client limit: the operator's writes for N apps, by the fastest honest client.

The ratio the benchmark reports divides the operator's time by this client's, so this client
must be as fast as a client doing the same writes can be, or the ratio flatters the operator.
It makes exactly the writes the operator must make for a new app, with the rules the operator
must keep, and nothing else (no reads, no waiting):

1. create the PythonApp (the harness's write in the operator's run);
2. validate the object the API server returned with the operator's own models and render its
   children with the operator's own renderer (owner references from the returned uid, the hash
   annotation the operator sets: byte for byte the operator's bodies), then server-side apply
   them stage by stage in the operator's apply order, every child of a stage at once, each
   with the operator's create-only precondition (``metadata.resourceVersion``
   :data:`~pythonapp_operator.controller.client.CREATE_ONLY`) and strict field validation.
   The Deployment's stage follows its isolation stage (ServiceAccount, NetworkPolicy, Service,
   PodDisruptionBudget), the rule the operator must keep so pods never run without it: one
   round trip per app, not throughput;
   With ``--migrate`` (``spec.migrate`` on every app) the migration Job, create-only as the
   operator's gate makes it, follows the isolation, and the Deployment waits until the Job is
   Complete (one watch of the namespace's Jobs tells; kwok's pods complete at once);
3. patch the app's status once (the operator's JSON patch with the uid test), computed by the
   operator's own status function from the applied Deployment.

Throughput: one event loop and one aiohttp session (aiohttp is what kopf runs on: no new
dependency) keep at most ``concurrency`` requests in flight across all apps (:class:`Slots`),
so the API server always has that many writes to work on. A waiting request of a later step
goes before an earlier step's (a status patch before a Deployment, before an isolation child,
before a new app's create): apps in progress finish first, so a burst's per-app latency is as
short as the total allows, and new apps never starve the ones begun.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.client import CREATE_ONLY, apply_body
from pythonapp_operator.controller.compare import with_hash
from pythonapp_operator.controller.kinds import APP, KINDS_BY_KIND, apply_order
from pythonapp_operator.controller.reconcile import creating, initial_replicas, utc_now
from pythonapp_operator.controller.status import compute_status
from pythonapp_operator.render import render

from . import watch
from .cluster import api_client
from .load import TRANSIENT, Obj, pythonapp
from .process import BenchError

FIELD_MANAGER = "pythonapp-bench-baseline"
AGENT = "pythonapp-bench/baseline"
JSON = "application/json"
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
ATTEMPTS = 6
#: step of a request in an app's life (a later step is served first, see :class:`Slots`)
CREATE, STATUS = 0, 100


class Slots:
    """At most ``size`` requests in flight; a waiting request with a lower ``priority`` value
    goes first, ties in arrival order (a semaphore whose queue is a heap)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one request must be allowed in flight")
        self.free = size
        self.waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self.arrivals = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (priority, next(self.arrivals), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # granted as it was cancelled: hand the slot on
            raise

    def release(self) -> None:
        while self.waiting:
            _, _, granted = heapq.heappop(self.waiting)
            if not granted.done():  # a cancelled waiter is skipped
                granted.set_result(None)
                return
        self.free += 1

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


def status_patch(uid: str, status: Obj) -> list[Obj]:
    """The operator's status write: a JSON patch that first tests the app's uid."""
    return [
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "add", "path": "/status", "value": status},
    ]


def create_only(manifest: Obj, replicas: int | None = None) -> Obj:
    """The operator's apply body for a child it does not hold yet: hash annotation set,
    create-only precondition (refused with 409 if anything holds the name), and an autoscaled
    Deployment's initial count (``replicas``, :func:`~pythonapp_operator.controller.reconcile.
    initial_replicas`)."""
    hashed = creating(with_hash(manifest), replicas)
    return {**hashed, "metadata": {**hashed["metadata"], "resourceVersion": CREATE_ONLY}}


def stages(app_obj: Obj) -> list[list[Obj]]:
    """The app's rendered children, grouped in the operator's apply stages (the Deployment's
    last); ``app_obj`` is the PythonApp as the API server returned it."""
    app, problems = validate_document({k: v for k, v in app_obj.items() if k != "status"})
    if app is None:
        meta = app_obj.get("metadata") or {}
        raise BenchError(f"{meta.get('namespace')}/{meta.get('name')}: {problems}")
    ordered = apply_order(render(app))
    return [
        list(group)
        for _, group in itertools.groupby(ordered, key=lambda m: KINDS_BY_KIND[m["kind"]].order)
    ]


class Jobs:
    """Which of a namespace's Jobs ended, in the bare client's event loop: one
    :class:`~.watch.Watch` of them (under the bare client's own identity, so its read is
    counted as the bare client's), whose thread hands each ended Job over."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.ended: dict[str, str | None] = {}  # name -> why it failed (None: Complete)
        self.changed = asyncio.Event()
        self.api = api_client(kubeconfig, AGENT, pool=1)
        self.watch = watch.start(watch.jobs(self.api, namespace), on_ready=self._ended)

    def _ended(self, name: str, job: Obj) -> None:  # on the watch's thread
        self.loop.call_soon_threadsafe(self._record, name, watch.job_failure(job))

    def _record(self, name: str, failure: str | None) -> None:
        self.ended[name] = failure
        self.changed.set()

    def stop(self) -> None:
        self.watch.stop()
        self.api.close()  # type: ignore[no-untyped-call]

    async def complete(self, name: str) -> None:
        while name not in self.ended:
            self.changed.clear()
            await self.changed.wait()
        if self.ended[name] is not None:
            raise BenchError(f"migration Job {name} failed: {self.ended[name]}")


def ssl_context(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    """(API server URL, TLS context with the kubeconfig's CA and client certificate)."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return str(cfg.host).rstrip("/"), context


class Apps:
    """Apps being made in the background: when each was done, the first error."""

    def __init__(self) -> None:
        self.returned: dict[str, float] = {}
        self.lock = threading.Lock()
        self.future: Future[None] | None = None

    def finished(self, name: str) -> None:
        with self.lock:
            self.returned[name] = time.time()

    def _raise(self) -> None:
        future = self.future
        if future is not None and future.done() and future.exception() is not None:
            error = future.exception()
            raise BenchError(f"a request failed: {error}") from error

    @property
    def done(self) -> int:
        """Apps finished so far; raises the first error at once."""
        self._raise()
        with self.lock:
            return len(self.returned)

    def wait(self) -> dict[str, float]:
        assert self.future is not None
        with contextlib.suppress(Exception):
            self.future.result()
        self._raise()
        return self.returned


class BareClient:
    """The bare client: an event loop in its own thread, one aiohttp session, ``concurrency``
    requests in flight across everything it is given (:meth:`start`)."""

    def __init__(
        self,
        kubeconfig: Path,
        concurrency: int,
        *,
        autoscaled: bool = False,
        migrate: bool = False,
    ) -> None:
        self.base, self.ssl = ssl_context(kubeconfig)
        self.kubeconfig = kubeconfig
        self.concurrency = concurrency
        self.autoscaled = autoscaled
        self.migrate = migrate
        self.jobs: Jobs | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bare-client")
        self.thread.daemon = True
        self.thread.start()
        self.session, self.slots = self._run(self._open()).result()

    def _run(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _open(self) -> tuple[aiohttp.ClientSession, Slots]:
        connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=self.ssl)
        session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": AGENT},
            timeout=aiohttp.ClientTimeout(total=60),
        )
        return session, Slots(self.concurrency)

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.stop()
        self._run(self.session.close()).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def start(self, namespace: str, images: dict[str, str], rate: float | None = None) -> Apps:
        """Make every app of {name: image}: all at once, or started ``rate`` per second."""
        apps = Apps()
        apps.future = self._run(self._all(apps, namespace, images, rate))
        return apps

    async def _all(
        self, apps: Apps, namespace: str, images: dict[str, str], rate: float | None
    ) -> None:
        if self.migrate and self.jobs is None:
            self.jobs = Jobs(self.kubeconfig, namespace)
        t0 = time.time()
        async with asyncio.TaskGroup() as tasks:  # the first error cancels the rest
            for i, (name, image_ref) in enumerate(images.items()):
                if rate:
                    await asyncio.sleep(max(t0 + i / rate - time.time(), 0))
                tasks.create_task(self._one(apps, namespace, name, image_ref))

    async def _one(self, apps: Apps, namespace: str, name: str, image_ref: str) -> None:
        app = pythonapp(
            namespace, name, image_ref, autoscaled=self.autoscaled, migrate=self.migrate
        )
        body = json.dumps(app).encode()
        created = await self._send("POST", APP.path(namespace), body, JSON, CREATE, parse=True)
        assert created is not None  # parsed
        deployment: Obj | None = None
        grouped = stages(created)
        every = [m for stage in grouped for m in stage]
        jobs = [m for m in every if m["kind"] == "Job"]
        grouped = [s for s in ([m for m in st if m["kind"] != "Job"] for st in grouped) if s]
        for step, stage in enumerate(grouped, start=1):
            if jobs and any(m["kind"] == "Deployment" for m in stage):
                # the gate: the new image's migration Job first, the Deployment once it is done
                assert self.jobs is not None
                for job in jobs:
                    await self._apply(job, step, parse=False)
                    await self.jobs.complete(job["metadata"]["name"])
            lives = await asyncio.gather(
                *(
                    self._apply(
                        m,
                        step,
                        parse=m["kind"] == "Deployment",
                        replicas=initial_replicas(m, every),
                    )
                    for m in stage
                )
            )
            for manifest, live in zip(stage, lives, strict=True):
                if manifest["kind"] == "Deployment":
                    deployment = live
        status = compute_status(
            generation=created["metadata"].get("generation"),
            problems=[],
            deployment=deployment,
            previous={},
            now=utc_now(),
        )
        patch = json.dumps(status_patch(created["metadata"]["uid"], status)).encode()
        await self._send("PATCH", APP.path(namespace, name) + "/status", patch, JSON_PATCH, STATUS)
        apps.finished(name)

    async def _apply(
        self, manifest: Obj, step: int, parse: bool, replicas: int | None = None
    ) -> Obj | None:
        meta = manifest["metadata"]
        path = KINDS_BY_KIND[manifest["kind"]].path(meta["namespace"], meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        body = apply_body(create_only(manifest, replicas))
        return await self._send("PATCH", path, body, APPLY, step, query=query, parse=parse)

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes,
        content_type: str,
        step: int,
        *,
        query: dict[str, str] | None = None,
        parse: bool = False,
    ) -> Obj | None:
        """One write, retried with backoff on throttling, server errors and dropped
        connections (the wait outside the slot); the answer decoded only if ``parse``."""
        for attempt in range(ATTEMPTS):
            failure: str
            async with self.slots.slot(-step):
                try:
                    async with self.session.request(
                        method,
                        self.base + path,
                        params=query,
                        data=body,
                        headers={"Content-Type": content_type},
                    ) as resp:
                        data = await resp.read()
                        code = resp.status
                    failure = f"{code} {data[:300].decode(errors='replace')}"
                except (TimeoutError, aiohttp.ClientError, OSError) as e:
                    code, failure = 0, f"{type(e).__name__}: {e}"
            if 200 <= code < 300:
                if not parse:
                    return None
                result: Obj = json.loads(data)
                return result
            if (code and code not in TRANSIENT) or attempt == ATTEMPTS - 1:
                raise BenchError(f"{method} {path}: {failure}")
            await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")
