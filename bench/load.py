"""Load generation: the PythonApps, edits and unowned objects the benchmark sends.

All requests go through the ``kubernetes`` package's typed APIs with ``_preload_content=False``
(raw JSON, no model layer); objects are created or changed with server-side apply or merge
patches, like a GitOps tool or ``kubectl apply --server-side`` would. A :class:`Batch` runs one
call per item with a fixed number in flight, either all at once (a burst) or started at a fixed
rate (steady load: the rate holds even when calls are slow, up to the pool's size).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pythonapp_operator import GROUP, KIND, PLURAL, VERSION

from .process import BenchError

Obj = dict[str, Any]
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
TRANSIENT = {429, 500, 502, 503, 504}


def image(seed: str) -> str:
    """A digest-pinned image reference, unique per seed (what the operator accepts)."""
    return f"ghcr.io/acme/app:{seed}@sha256:{hashlib.sha256(seed.encode()).hexdigest()}"


#: pods per benchmark app
REPLICAS = 2


def secret_name(app: str) -> str:
    """The Secret each benchmark app references (:func:`secret` makes it)."""
    return f"{app}-secret"


def pythonapp(
    namespace: str, name: str, image_ref: str, *, autoscaled: bool = False, migrate: bool = False
) -> Obj:
    """The benchmark's app: a web app with two replicas, a memory limit and a Secret of its
    own mounted (so the cluster holds one referenced Secret per app; :func:`secret`).
    ``autoscaled``: its replicas are an HorizontalPodAutoscaler's, from two to four (a sixth
    child; kube-controller-manager then polls a metrics API the dev cluster lacks, every 15 s
    for every app, as an autoscaled cluster's control plane does). ``migrate``: a migration
    Job runs with each new image before its Deployment (``spec.migrate``; kwok's Job pods
    complete at once), and stays an hour (its TTL) with its pod: Jobs in the cluster."""
    spec: Obj = {
        "image": image_ref,
        "resources": {"limits": {"memory": "128Mi"}},
        "secrets": [{"name": secret_name(name)}],
    }
    if migrate:
        spec["migrate"] = {"command": ["python", "manage.py", "migrate"]}
    if autoscaled:
        spec["autoscaling"] = {"minReplicas": REPLICAS, "maxReplicas": 2 * REPLICAS}
    else:
        spec["replicas"] = REPLICAS
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


#: the label of every Secret the harness makes, its role: ``app`` (referenced by an app) or
#: ``noise`` (by nobody), so a phase can delete its own in one call
ROLE_LABEL = "bench.pythonapp.dev/role"


def secret(namespace: str, app: str) -> Obj:
    """The small Secret an app references (a database password, say)."""
    meta = {"name": secret_name(app), "namespace": namespace, "labels": {ROLE_LABEL: "app"}}
    password = base64.b64encode(hashlib.sha256(app.encode()).hexdigest().encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"password": password}}


def noise_secrets(namespace: str, count: int, kib: int) -> list[Obj]:
    """``count`` Secrets nobody references, ``kib`` KiB of data each (incompressible, like the
    gzipped Helm release Secrets that fill real clusters)."""
    out = []
    for i in range(count):
        blob = random.Random(i).randbytes(kib * 1024)  # noqa: S311 (filler, not a secret)
        meta = {
            "name": f"noise-secret-{i:05d}",
            "namespace": namespace,
            "labels": {ROLE_LABEL: "noise"},
        }
        data = {"release": base64.b64encode(blob).decode()}
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data})
    return out


def keyed(images: dict[str, str]) -> list[tuple[str, tuple[str, str]]]:
    """Batch items for {app name: image}: keyed by name, the call gets (name, image)."""
    return [(name, (name, image_ref)) for name, image_ref in images.items()]


def retrying(call: Callable[[], Any], attempts: int = 6) -> Any:
    """``call()``, retried with backoff on throttling, server errors and dropped connections."""
    for attempt in range(attempts):
        try:
            return call()
        except ApiException as e:
            if e.status not in TRANSIENT or attempt == attempts - 1:
                raise
        except (urllib3.exceptions.HTTPError, ConnectionError):
            if attempt == attempts - 1:
                raise
        time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


class Client:
    """The few calls the harness and the baseline make, each returning the object as a dict."""

    def __init__(self, api: client.ApiClient, field_manager: str) -> None:
        self.api_client, self.field_manager = api, field_manager
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        apps, policy = client.AppsV1Api(api), client.PolicyV1Api(api)
        net = client.NetworkingV1Api(api)
        self.patchers: dict[str, Callable[..., Any]] = {
            "Deployment": apps.patch_namespaced_deployment,
            "ServiceAccount": self.core.patch_namespaced_service_account,
            "Secret": self.core.patch_namespaced_secret,
            "Service": self.core.patch_namespaced_service,
            "PodDisruptionBudget": policy.patch_namespaced_pod_disruption_budget,
            "NetworkPolicy": net.patch_namespaced_network_policy,
        }

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def create_app(self, body: Obj) -> Obj:
        ns = body["metadata"]["namespace"]
        resp = retrying(
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, body, _preload_content=False
            )
        )
        return _json(resp)

    def set_image(self, namespace: str, name: str, image_ref: str) -> None:
        body = {"spec": {"image": image_ref}}
        retrying(
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body,
                _content_type=MERGE, _preload_content=False,
            )
        )  # fmt: skip

    def patch_app_status(self, namespace: str, name: str, status: Obj) -> None:
        body = {"status": status}
        retrying(
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, body,
                _content_type=MERGE, _preload_content=False,
            )
        )  # fmt: skip

    def apply(self, manifest: Obj) -> Obj:
        """Server-side apply (force) through the kind's typed API."""
        patch = self.patchers[manifest["kind"]]
        meta = manifest["metadata"]
        resp = retrying(
            lambda: patch(
                meta["name"], meta["namespace"], manifest,
                field_manager=self.field_manager, force=True,
                _content_type=APPLY, _preload_content=False,
            )
        )  # fmt: skip
        return _json(resp)


def _json(resp: Any) -> Obj:
    data: Obj = json.loads(resp.data)
    return data


class Started(Protocol):
    """Calls made in the background (a :class:`Batch`, or the bare client's apps)."""

    @property
    def done(self) -> int:
        """Calls returned so far; raises the first error at once."""
        ...

    def wait(self) -> dict[str, float]:
        """When each call returned, once all have; raises the first error."""
        ...


class Batch:
    """``call(item)`` for every item, ``concurrency`` in flight, at once or ``rate`` per second.

    Runs in the background; ``returned[key]`` is when each call returned. The first error stops
    the submission of new calls and is raised by :meth:`wait`.
    """

    def __init__(
        self,
        items: list[tuple[str, Any]],
        call: Callable[[Any], Any],
        concurrency: int,
        rate: float | None = None,
    ) -> None:
        self.items, self.call, self.rate = items, call, rate
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load")
        self.returned: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.t0 = time.time()
        self.futures: list[Future[None]] = []
        self.submitter = threading.Thread(target=self._submit, name="submit", daemon=True)
        self.submitter.start()

    def _submit(self) -> None:
        for i, (key, item) in enumerate(self.items):
            if self.error is not None:
                break
            if self.rate:
                delay = self.t0 + i / self.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            self.futures.append(self.pool.submit(self._one, key, item))

    def _one(self, key: str, item: Any) -> None:
        start = time.time()
        try:
            self.call(item)
        except BaseException as e:  # reported by wait()
            with self.lock:
                self.error = self.error or e
            return
        with self.lock:
            self.started[key] = start
            self.returned[key] = time.time()

    @property
    def done(self) -> int:
        """Calls returned so far; raises the first error at once (no waiting for a timeout)."""
        with self.lock:
            if self.error is not None:
                raise BenchError(f"a request failed: {self.error}") from self.error
            return len(self.returned)

    def wait(self) -> dict[str, float]:
        self.submitter.join()
        for f in list(self.futures):
            f.result()
        self.pool.shutdown()
        if self.error is not None:
            raise BenchError(f"a request failed: {self.error}") from self.error
        return self.returned


def noise(namespaces: list[str], count: int) -> list[Obj]:
    """``count`` objects the operator does not own: Deployments (no replicas, so no pods),
    Services and ServiceAccounts in turn, spread over ``namespaces``."""
    out: list[Obj] = []
    for i in range(count):
        ns, name = namespaces[i % len(namespaces)], f"noise-{i:05d}"
        meta = {"name": name, "namespace": ns, "labels": {"app": name}}
        kind = ("Deployment", "Service", "ServiceAccount")[i % 3]
        if kind == "Deployment":
            pod = {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
            }
            spec: Obj = {"replicas": 0, "selector": {"matchLabels": {"app": name}}, "template": pod}
            out.append({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec})
        elif kind == "Service":
            spec = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec})
        else:
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta})
    return out
