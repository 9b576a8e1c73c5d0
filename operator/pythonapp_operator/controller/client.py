"""The controller's only door to the API server: apply, delete, patch status, post events, get.

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

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3

from .. import GROUP, KIND, VERSION, __version__
from .kinds import APP, KINDS_BY_KIND, Obj

FIELD_MANAGER = "pythonapp-operator"
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
    def uid_gone(self) -> bool:
        """The apply named a uid (an object the cache still held) but no object exists."""
        return self.status == 409 and "no existing object was found" in self.message

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

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete one object if it still has ``uid``; gone already is fine."""
        ...

    def patch_status(self, namespace: str, name: str, status: Obj, uid: str) -> Obj:
        """Merge-patch a PythonApp's status subresource; returns the updated app."""
        ...

    def event(self, app: Obj, event_type: str, reason: str, message: str, now: str) -> None:
        """Post a core/v1 Event about a PythonApp."""
        ...

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object: only when an apply's precondition failed, to see what holds the name."""
        ...


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

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """One request; (status, body bytes). Transport failures become ApiError(0, ...)."""
        url_path = f"{path}?{urlencode(query)}" if query else path
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, headers, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=url_path,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            with self._in_flight:
                response = self.api_client.rest_client.request(
                    method_, url, headers=headers, body=body, _request_timeout=self.timeout
                )
                payload: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._count(method, 0)
            raise ApiError(0, "Unavailable", f"{type(exc).__name__}: {exc}") from exc
        self._count(method, int(response.status))
        return int(response.status), payload

    def _count(self, method: str, code: int) -> None:
        with self._lock:
            self.requests[method, code] += 1

    def _ok(self, status: int, data: bytes) -> Obj:
        if status >= 300:
            raise ApiError.from_response(status, data)
        result: Obj = json.loads(data)
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
        # the uid makes the patch fail (409) rather than touch a re-created app of the same name
        body = {"metadata": {"uid": uid}, "status": status}
        code, data = self.request(
            "PATCH",
            APP.path(namespace, name) + "/status",
            body=body,
            content_type="application/merge-patch+json",
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
