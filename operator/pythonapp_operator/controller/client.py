"""The controller's only door to the API server: apply, delete, patch status, post events, get,
and the leader election's Lease.

:class:`KubeApi` is the small interface reconcile depends on; :class:`RestApi` implements it on
the official client's transport (its kubeconfig and in-cluster loading, TLS and auth), without
the generated models or the dynamic client: request bodies are plain dicts, responses are
decoded with ``json.loads`` (the model layer costs more CPU than the request itself, see
notes/controller.md), and nothing is discovered at run time. Every call has a timeout.

Failures become :class:`ApiError` with the API server's status, reason and message, so
reconcile can put them on the PythonApp's status. Retries are not done here: the work queue
retries the whole reconcile with per-app backoff, which is what clears a condition by itself
once its cause goes.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3

from .. import GROUP, KIND, VERSION, __version__
from . import jsonio
from .kinds import APP, CONFIGMAP, KINDS_BY_KIND, SECRET, Obj
from .secretrefs import SecretDigest, configmap_digest, digest

FIELD_MANAGER = "pythonapp-operator"
#: the field manager that holds a Deployment's ``replicas`` between the operator letting go of
#: them and the autoscaler (or a person) writing a new count (reconcile._hand_over_replicas)
HANDOVER_MANAGER = "pythonapp-operator-handover"
#: The resourceVersion precondition of an apply that may only create. An apply of an object
#: that does not exist creates it and ignores the resourceVersion; for one that exists, it is
#: an optimistic lock that fails (409) unless the object is at that version, and no object is
#: ever at version 1 (an empty etcd is at revision 1; its first write is revision 2). Server-side
#: apply has no create-only option; a POST would be one, but it records its fields under an
#: Update manager that later applies could never remove. (The uid precondition cannot serve:
#: the API server refuses a uid on a create.) Proven on the real API server in
#: tests/e2e/test_controller.py.
CREATE_ONLY = "1"
USER_AGENT = f"pythonapp-operator/{__version__}"
#: (connect, read) seconds for every request: a hung API server must not hang a worker
DEFAULT_TIMEOUT = (5.0, 30.0)
#: (connect, read) seconds for a Lease request: a renewal that hangs past the renew deadline is
#: worth nothing, and the elector must get to try again (or give up) in time
LEASE_TIMEOUT = (2.0, 4.0)
#: HTTP methods that change something (the write fence refuses them while not leading)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def lease_path(namespace: str, name: str | None = None) -> str:
    """A ``coordination.k8s.io/v1`` Lease (the collection when ``name`` is None)."""
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


#: characters an apply body carries as ``\u`` escapes: YAML does not take them raw (DEL, the C1
#: controls, U+FEFF/FFFE/FFFF) or reads them as line breaks inside a string (NEL, LS, PS)
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def apply_body(manifest: Obj) -> bytes:
    """A server-side apply body: JSON that the API server's YAML reader reads back unchanged.

    Apply bodies are YAML (``application/apply-patch+yaml``), and JSON is YAML, with one catch:
    ``json.dumps`` writes a character beyond U+FFFF (an emoji) as a UTF-16 surrogate pair
    escape (``\ud83d\udc0d``), which the API server's YAML reader refuses ("found invalid
    Unicode character escape code"): one emoji in an env value made every apply of the app's
    Deployment fail with 400 (found by fuzzing the rendered children on the API server).
    So characters go as UTF-8, and only the few that YAML does not take raw are escaped.
    """
    text = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


@dataclass
class ApiError(Exception):
    """A refused or failed request: HTTP status (0 = no response), reason and message."""

    status: int
    reason: str
    message: str
    causes: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"

    @classmethod
    def from_response(cls, status: int, data: bytes) -> ApiError:
        try:
            body = json.loads(data)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        text = data.decode("utf-8", "replace")[:500]
        return cls(
            status=status,
            reason=str(body.get("reason") or "Unknown"),
            message=str(body.get("message") or text or f"HTTP {status}"),
            causes=list((details or {}).get("causes") or []),
        )

    @property
    def uid_mismatch(self) -> bool:
        """The apply was refused because an object with another uid holds the name."""
        return self.status == 422 and any(c.get("field") == "metadata.uid" for c in self.causes)

    @property
    def name_taken(self) -> bool:
        """A create-only apply (``uid=None``) found an object holding the name. (Matched on the
        API server's words; another 409 with them, a quota's own update conflict, costs one
        look and a new checked apply, never a write to anyone else's object.)"""
        return self.status == 409 and "the object has been modified" in self.message

    @property
    def precondition_failed(self) -> bool:
        """An apply's precondition (its uid, or create-only) did not hold: the name is not
        held by what the caller thought; nothing was changed."""
        return self.uid_mismatch or self.uid_gone or self.name_taken

    @property
    def field_conflict(self) -> bool:
        """A server-side apply without force met a field another manager holds at another
        value."""
        return self.status == 409 and any(
            c.get("reason") == "FieldManagerConflict" for c in self.causes
        )

    @property
    def uid_gone(self) -> bool:
        """The apply named a uid (an object the cache still held) but no object exists."""
        return self.status == 409 and "no existing object was found" in self.message

    @property
    def app_replaced(self) -> bool:
        """A status write's uid test failed: the app it was computed for is gone, and another
        of the same name holds it (nothing was written). The API server answers a failed JSON
        patch operation with a bare 422 (no causes, its generic words; a schema refusal names
        its fields), and the only operation of that patch that can fail is the uid test."""
        return (
            self.status == 422
            and not self.causes
            and self.message == "the server rejected our request due to an error in our request"
        )

    @property
    def namespace_terminating(self) -> bool:
        return self.status == 403 and (
            any(c.get("reason") == "NamespaceTerminating" for c in self.causes)
            or "because it is being terminated" in self.message
        )


class KubeApi(Protocol):
    """What reconcile needs from the API server; a fake implements it for unit tests."""

    def apply(self, manifest: Obj, *, uid: str | None) -> Obj:
        """Server-side apply (field manager ``pythonapp-operator``, force) of one child.

        ``uid`` is a precondition: the uid of the child this app controls, so an object that
        was replaced by someone else's under the same name is never changed (ApiError 422,
        ``uid_mismatch``; 409 ``uid_gone`` when none is there). ``None`` creates only: when
        any object holds the name the apply is refused (ApiError 409, ``name_taken``) and
        nothing is changed.
        """
        ...

    def hand_over_replicas(self, namespace: str, name: str, uid: str, replicas: int) -> None:
        """Apply only a Deployment's ``spec.replicas``, at ``replicas``, under
        :data:`HANDOVER_MANAGER` (not forced), while it is the one with ``uid``. A conflict
        (another manager holds the field at another count: the autoscaler or a person
        was first) is no error: that manager keeps it, which is the point."""
        ...

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete one object if it still has ``uid``; gone already is fine."""
        ...

    def patch_status(self, namespace: str, name: str, status: Obj, uid: str) -> Obj:
        """Set a PythonApp's whole status, only while the app is the one with ``uid``; returns
        the updated app. A same-name successor of a deleted app is never written (ApiError
        422, ``app_replaced``); a deleted app with no successor is a 404."""
        ...

    def event(self, app: Obj, event_type: str, reason: str, message: str, now: str) -> None:
        """Post a core/v1 Event about a PythonApp."""
        ...

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object: only when an apply's precondition failed, to see what holds the name."""
        ...

    def secret_digest(self, namespace: str, name: str) -> SecretDigest | None:
        """A referenced Secret's keys and data hash, or None if it does not exist."""
        ...

    def configmap_digest(self, namespace: str, name: str) -> SecretDigest | None:
        """A referenced ConfigMap's data keys and data hash, or None if it does not exist."""
        ...

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether an object exists, by its metadata alone (an image pull Secret is never
        read: only whether it is there)."""
        ...


#: what a metadata-only list or watch asks for (one object of a watch, or a list's items)
METADATA_ONLY = "application/json;as=PartialObjectMetadata{};g=meta.k8s.io;v=v1,application/json"


def prepare(
    api_client: Any,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
    *,
    accept: str = "application/json",
) -> tuple[str, str, dict[str, str]]:
    """(method, URL, headers) of one request, with the configuration's auth: the one place that
    turns a path into what the official client's transport sends (tests' raw requests too)."""
    url_path = f"{path}?{urlencode(query)}" if query else path
    headers = {"Accept": accept, "Content-Type": content_type}
    method_, url, headers, _, _ = api_client.param_serialize(
        method=method,
        resource_path=url_path,
        header_params=headers,
        auth_settings=["BearerToken"],
    )
    return str(method_), str(url), dict(headers)


class RestApi:
    """:class:`KubeApi` over the official client's configured connection pool."""

    def __init__(
        self,
        api_client: Any = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_in_flight: int = 16,
    ) -> None:
        from kubernetes import client  # noqa: PLC0415 (heavy; only the operator needs it)

        self.api_client = api_client or client.ApiClient()
        self.api_client.user_agent = USER_AGENT
        self.timeout = timeout
        #: requests in flight at once, whatever the threads: a burst of new apps (every worker
        #: fanning out) loads the API server no more than ``max_in_flight`` plain clients
        #: would, while a lone reconcile still makes its independent calls at once
        self.max_in_flight = max_in_flight
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        #: (method, HTTP status or 0) -> requests made
        self.requests: Counter[tuple[str, int]] = Counter()
        self._streams: set[Any] = set()
        #: the write fence: when set, a write (``WRITES``) is refused unless it returns True.
        #: The leader elector sets it, so a replica that is not (or no longer surely) the
        #: leader cannot write, whichever thread a reconcile runs in
        self.fence: Callable[[], bool] | None = None
        self._writes_in_flight = 0
        self._writes_done = threading.Condition(self._lock)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | list[Obj] | bytes | None = None,
        content_type: str = "application/json",
        lease: bool = False,
        accept: str = "application/json",
    ) -> tuple[int, bytes]:
        """One request; (status, body bytes). Transport failures become ApiError(0, ...).

        A write is refused (ApiError 0 ``NotLeader``, nothing sent) while the fence is shut.
        ``lease``: the leader election's own request, which neither the fence nor the
        in-flight limit holds back (a renewal queued behind a burst of reconciles could miss
        its deadline), with its own short timeout.
        """
        method_, url, headers = prepare(
            self.api_client, method, path, query, content_type, accept=accept
        )
        if lease:
            return self._send(
                method, method_=method_, url=url, headers=headers, body=body, timeout=LEASE_TIMEOUT
            )
        fenced = method in WRITES and self.fence is not None
        with self._in_flight:
            if fenced:  # checked once a slot is held: no write waits past a shut fence
                with self._lock:
                    if self.fence is not None and not self.fence():
                        raise ApiError(0, "NotLeader", "not the leader: writes are fenced off")
                    self._writes_in_flight += 1
            try:
                return self._send(
                    method,
                    method_=method_,
                    url=url,
                    headers=headers,
                    body=body,
                    timeout=self.timeout,
                )
            finally:
                if fenced:
                    with self._lock:
                        self._writes_in_flight -= 1
                        self._writes_done.notify_all()

    def _send(
        self,
        method: str,
        *,
        method_: str,
        url: str,
        headers: dict[str, str],
        body: Obj | list[Obj] | bytes | None,
        timeout: tuple[float, float],
    ) -> tuple[int, bytes]:
        try:
            response = self.api_client.rest_client.request(
                method_, url, headers=headers, body=body, _request_timeout=timeout
            )
            payload: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._count(method, 0)
            raise ApiError(0, "Unavailable", f"{type(exc).__name__}: {exc}") from exc
        self._count(method, int(response.status))
        return int(response.status), payload

    @contextmanager
    def stream(
        self,
        path: str,
        *,
        query: dict[str, str],
        read_timeout: float,
        accept: str = "application/json",
    ) -> Iterator[tuple[int, Iterator[bytes]]]:
        """A long-running GET (a watch): (status, its body line by line).

        Not counted against ``max_in_flight`` (a watch is open for minutes; the workers'
        requests must not wait behind it). The connection is released when the block ends;
        :meth:`close_streams` ends every open one at once (shutdown).
        """
        method_, url, headers = prepare(self.api_client, "GET", path, query, accept=accept)
        try:
            response = self.api_client.rest_client.request(
                method_,
                url,
                headers=headers,
                _request_timeout=(self.timeout[0], read_timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._count("WATCH", 0)
            raise ApiError(0, "Unavailable", f"{type(exc).__name__}: {exc}") from exc
        raw = response.response  # the urllib3 response, its body not read yet
        self._count("WATCH", int(response.status))
        with self._lock:
            self._streams.add(raw)
        try:
            yield int(response.status), _lines(raw)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "Unavailable", f"{type(exc).__name__}: {exc}") from exc
        finally:
            with self._lock:
                self._streams.discard(raw)
            raw.release_conn()

    def close_streams(self) -> None:
        """End every open :meth:`stream` (their readers see the end of the body)."""
        with self._lock:
            streams = list(self._streams)
        for raw in streams:
            # a stream may end (and give its connection back) meanwhile: urllib3 then refuses
            # the shutdown (RuntimeError), and there is nothing left to end. A failure here
            # must never stop a clean exit: kopf would retry the clean-up a minute later
            # (found by the fault suite: SIGTERM mid-rollout, exit after 30 s, Lease unreleased)
            with contextlib.suppress(Exception):
                raw.shutdown() if hasattr(raw, "shutdown") else raw.close()

    def drain_writes(self, timeout: float) -> bool:
        """Wait until no fenced write is in flight (after the fence was shut): True if none is.

        The elector calls it before releasing the Lease, so the next leader never writes
        while a write of this replica's is still on its way.
        """
        with self._writes_done:
            return self._writes_done.wait_for(lambda: self._writes_in_flight == 0, timeout)

    def _count(self, method: str, code: int) -> None:
        with self._lock:
            self.requests[method, code] += 1

    def _ok(self, status: int, data: bytes) -> Obj:
        if status >= 300:
            raise ApiError.from_response(status, data)
        result: Obj = jsonio.loads(data)
        return result

    def apply(self, manifest: Obj, *, uid: str | None) -> Obj:
        kind = KINDS_BY_KIND[manifest["kind"]]
        meta = manifest["metadata"]
        precondition = {"uid": uid} if uid else {"resourceVersion": CREATE_ONLY}
        body = {**manifest, "metadata": {**meta, **precondition}}
        status, data = self.request(
            "PATCH",
            kind.path(meta["namespace"], meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"},
            body=apply_body(body),
            content_type="application/apply-patch+yaml",
        )
        return self._ok(status, data)

    def hand_over_replicas(self, namespace: str, name: str, uid: str, replicas: int) -> None:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"replicas": replicas},
        }
        status, data = self.request(
            "PATCH",
            KINDS_BY_KIND["Deployment"].path(namespace, name),
            query={"fieldManager": HANDOVER_MANAGER, "fieldValidation": "Strict"},
            body=apply_body(body),
            content_type="application/apply-patch+yaml",
        )
        if status == 409:
            err = ApiError.from_response(status, data)
            if err.field_conflict:
                return
            raise err
        self._ok(status, data)

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": uid},
            "propagationPolicy": "Background",
        }
        status, data = self.request("DELETE", KINDS_BY_KIND[kind].path(namespace, name), body=body)
        if status != 404:
            self._ok(status, data)

    def patch_status(self, namespace: str, name: str, status: Obj, uid: str) -> Obj:
        # A JSON patch whose first operation tests the uid: the API server applies it to the
        # stored object, so a status meant for a deleted app never lands on a re-created app of
        # the same name. (A uid in a merge patch is no precondition on /status: the status
        # strategy copies the stored metadata over the patched object before it is checked.)
        body: list[Obj] = [
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "add", "path": "/status", "value": status},  # add replaces a present member
        ]
        code, data = self.request(
            "PATCH",
            APP.path(namespace, name) + "/status",
            body=body,
            content_type="application/json-patch+json",
        )
        return self._ok(code, data)

    def event(self, app: Obj, event_type: str, reason: str, message: str, now: str) -> None:
        meta = app["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        status, data = self.request(
            "POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body
        )
        self._ok(status, data)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        status, data = self.request("GET", KINDS_BY_KIND[kind].path(namespace, name))
        if status == 404:
            return None
        return self._ok(status, data)

    def secret_digest(self, namespace: str, name: str) -> SecretDigest | None:
        """Read one Secret and keep only its digest (:mod:`.secretrefs`): the values live in
        this call's locals and nowhere else, never logged (errors carry the API's message)."""
        status, data = self.request("GET", SECRET.path(namespace, name))
        if status == 404:
            return None
        return digest(self._ok(status, data))

    def configmap_digest(self, namespace: str, name: str) -> SecretDigest | None:
        """Read one ConfigMap and keep only its digest."""
        status, data = self.request("GET", CONFIGMAP.path(namespace, name))
        if status == 404:
            return None
        return configmap_digest(self._ok(status, data))

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        """One metadata-only GET (``PartialObjectMetadata``): no data crosses the wire."""
        path = KINDS_BY_KIND[kind].path(namespace, name)
        status, data = self.request("GET", path, accept=METADATA_ONLY.format(""))
        if status == 404:
            return False
        self._ok(status, data)
        return True

    # -- the leader election's Lease (see leader.LeaseApi) -----------------------------------
    def get_lease(self, namespace: str, name: str) -> Obj | None:
        status, data = self.request("GET", lease_path(namespace, name), lease=True)
        if status == 404:
            return None
        return self._ok(status, data)

    def create_lease(self, lease: Obj) -> Obj:
        meta = lease["metadata"]
        status, data = self.request("POST", lease_path(meta["namespace"]), body=lease, lease=True)
        return self._ok(status, data)

    def update_lease(self, lease: Obj) -> Obj:
        """PUT the whole Lease; its ``metadata.resourceVersion`` makes it fail (409) if anyone
        wrote the Lease since it was read: the optimistic lock the election rests on."""
        meta = lease["metadata"]
        status, data = self.request(
            "PUT", lease_path(meta["namespace"], meta["name"]), body=lease, lease=True
        )
        return self._ok(status, data)


def _lines(raw: Any) -> Iterator[bytes]:
    """The non-empty lines of a streamed body, as they arrive (a watch sends one per event)."""
    buffer = b""
    for chunk in raw.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line.strip())
    if buffer.strip():
        yield buffer
