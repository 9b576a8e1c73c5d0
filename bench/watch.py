"""What the harness sees of PythonApps and Deployments, and when: list + watch, raw JSON.

Every latency the benchmark reports is a difference of two moments at which the harness
*received* a watch event (``time.time()`` on receipt), never of the API server's one-second
timestamps. A :class:`Watch` thread lists one resource in one namespace and then watches it from
that resourceVersion (bookmarks on, re-listing after 410 Gone), through the ``kubernetes``
client's list call with ``watch=True`` and ``_preload_content=False``: the lines are decoded
with ``json.loads``, not the client's model layer, so the harness keeps up with thousands of
Deployment status updates. Each event updates a :class:`Seen`:

- ``added``: when each object was first seen;
- ``image_at``: when each (object, image) pair was first seen, so an edit's latency is
  ``deployment image_at - app image_at`` for the new image;
- ``ready_since``: objects ready now (a kind-specific test), since when.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pythonapp_operator import GROUP, PLURAL, VERSION

Obj = dict[str, Any]
WATCH_SECONDS = 60


def _conditions(obj: Obj) -> dict[str, str]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): str(c.get("status")) for c in conds}


def app_image(obj: Obj) -> str | None:
    image = (obj.get("spec") or {}).get("image")
    return str(image) if image else None


def app_ready(obj: Obj) -> bool:
    """Ready=True for the current generation."""
    status = obj.get("status") or {}
    return _conditions(obj).get("Ready") == "True" and status.get("observedGeneration") == obj[
        "metadata"
    ].get("generation")


def deployment_image(obj: Obj) -> str | None:
    containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers")
    return str(containers[0].get("image")) if containers else None


def deployment_ready(obj: Obj) -> bool:
    """Rolled out: the current generation observed, every replica updated and available."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) == want
        and status.get("availableReplicas", 0) == want
        and status.get("replicas", 0) == want
    )


def job_image(obj: Obj) -> str | None:
    return None


def job_ended(obj: Obj) -> bool:
    """Complete or Failed (which one: :func:`job_failure`)."""
    conditions = _conditions(obj)
    return conditions.get("Complete") == "True" or conditions.get("Failed") == "True"


def job_failure(obj: Obj) -> str | None:
    """Why a Job failed (its Failed condition's message or reason), or None."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Failed" and c.get("status") == "True":
            return str(c.get("message") or c.get("reason") or "Failed")
    return None


@dataclass(frozen=True)
class Kind:
    """One resource to watch: how to list it, its image, when it is ready."""

    name: str
    lister: Callable[..., Any]
    image: Callable[[Obj], str | None]
    ready: Callable[[Obj], bool]


def pythonapps(api: client.ApiClient, namespace: str) -> Kind:
    custom = client.CustomObjectsApi(api)

    def lister(**kw: Any) -> Any:
        return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kw)

    return Kind("pythonapps", lister, app_image, app_ready)


def deployments(api: client.ApiClient, namespace: str) -> Kind:
    apps = client.AppsV1Api(api)

    def lister(**kw: Any) -> Any:
        return apps.list_namespaced_deployment(namespace, **kw)

    return Kind("deployments", lister, deployment_image, deployment_ready)


def jobs(api: client.ApiClient, namespace: str) -> Kind:
    """Jobs, ready once ended (the bare client's migrations gate under ``--migrate``)."""
    batch = client.BatchV1Api(api)

    def lister(**kw: Any) -> Any:
        return batch.list_namespaced_job(namespace, **kw)

    return Kind("jobs", lister, job_image, job_ended)


@dataclass
class Seen:
    """What one watch saw, with receipt times (see the module docstring)."""

    kind: Kind
    added: dict[str, float] = field(default_factory=dict)
    image_at: dict[tuple[str, str], float] = field(default_factory=dict)
    image: dict[str, str] = field(default_factory=dict)
    ready_since: dict[str, float] = field(default_factory=dict)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: told (on the watch's thread) of each object that turns ready, with the object
    on_ready: Callable[[str, Obj], None] | None = None

    def record(self, event_type: str, obj: Obj, when: float) -> None:
        name = str(obj["metadata"]["name"])
        with self.lock:
            self.events += 1
            if event_type == "DELETED":
                self.ready_since.pop(name, None)
                self.image.pop(name, None)
                return
            self.added.setdefault(name, when)
            image = self.kind.image(obj)
            if image is not None:
                self.image_at.setdefault((name, image), when)
                self.image[name] = image
            if self.kind.ready(obj):
                if name not in self.ready_since and self.on_ready is not None:
                    self.on_ready(name, obj)
                self.ready_since.setdefault(name, when)
            else:
                self.ready_since.pop(name, None)

    def count_added(self, names: list[str]) -> int:
        with self.lock:
            return sum(1 for n in names if n in self.added)

    def count_with_image(self, wanted: dict[str, str]) -> int:
        with self.lock:
            return sum(1 for n, img in wanted.items() if (n, img) in self.image_at)

    def count_ready(self, wanted: dict[str, str | None]) -> int:
        """Objects ready now, showing the wanted image (None: any image)."""
        with self.lock:
            return sum(
                1
                for n, img in wanted.items()
                if n in self.ready_since and (img is None or self.image.get(n) == img)
            )

    def last_added(self, names: list[str]) -> float:
        with self.lock:
            return max(self.added[n] for n in names)

    def last_image(self, wanted: dict[str, str]) -> float:
        with self.lock:
            return max(self.image_at[(n, img)] for n, img in wanted.items())

    def last_ready(self, names: list[str]) -> float:
        with self.lock:
            return max(self.ready_since[n] for n in names)


def _lines(resp: Any) -> Iterator[bytes]:
    rest = b""
    for chunk in resp.stream(65536, decode_content=True):
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from (line for line in lines if line.strip())


class Watch(threading.Thread):
    """List + watch one resource into a :class:`Seen` until :meth:`stop`."""

    def __init__(self, kind: Kind, on_ready: Callable[[str, Obj], None] | None = None) -> None:
        super().__init__(name=f"watch-{kind.name}", daemon=True)
        self.seen = Seen(kind, on_ready=on_ready)
        self.listed = threading.Event()
        self.stopped = threading.Event()
        self.resp: Any = None

    def run(self) -> None:
        lister = self.seen.kind.lister
        rv: str | None = None
        while not self.stopped.is_set():
            try:
                if rv is None:
                    body = json.loads(lister(_preload_content=False, _request_timeout=60).data)
                    when = time.time()
                    for item in body.get("items", []):
                        self.seen.record("LISTED", item, when)
                    rv = str(body["metadata"]["resourceVersion"])
                    self.listed.set()
                self.resp = lister(
                    watch=True,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                    _request_timeout=(10, WATCH_SECONDS + 30),
                )
                for line in _lines(self.resp):
                    when = time.time()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        rv = None if obj.get("code") == 410 else rv
                        break
                    rv = str(obj["metadata"]["resourceVersion"])
                    if event.get("type") != "BOOKMARK":
                        self.seen.record(str(event["type"]), obj, when)
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError):
                if not self.stopped.is_set():
                    time.sleep(0.5)

    def stop(self) -> None:
        self.stopped.set()
        resp = self.resp
        if resp is not None:
            try:
                resp.shutdown()
            except (AttributeError, OSError):
                resp.release_conn()


def start(
    kind: Kind, timeout: float = 60.0, on_ready: Callable[[str, Obj], None] | None = None
) -> Watch:
    """A running watch whose initial list is done (so later creations arrive as events)."""
    w = Watch(kind, on_ready)
    w.start()
    if not w.listed.wait(timeout):
        w.stop()
        raise TimeoutError(f"listing {kind.name} took more than {timeout:.0f}s")
    return w
