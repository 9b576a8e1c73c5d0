"""The operator's only door to the API server: get, apply, delete, patch status, post events.

Everything Kubernetes-specific the reconciler needs, behind small typed methods, so
``reconcile`` reads as the rules it implements and tests can count what it does. Transient
failures (throttling, API server restarts, dropped connections) are retried with backoff by
tenacity; real refusals (403, 422) surface at once.
"""

from __future__ import annotations

import logging
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from . import GROUP, KIND, VERSION, __version__

FIELD_MANAGER = "pythonapp-operator"
log = logging.getLogger(__name__)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, DynamicApiError | ApiException):
        return getattr(exc, "status", None) in {429, 500, 502, 503, 504}
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


_retry = retry(
    retry=retry_if_exception(_transient),
    stop=stop_after_attempt(5),
    wait=wait_exponential(multiplier=0.2, max=5),
    reraise=True,
)


def load_api_client() -> client.ApiClient:
    """In-cluster config when running in a pod, else ``$KUBECONFIG`` / ``~/.kube/config``."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Cluster:
    """A thin, retrying wrapper over the dynamic client."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or load_api_client()
        # Tells the operator's requests apart in audit logs and API server metrics.
        self.api_client.user_agent = f"pythonapp-operator/{__version__}"
        self.dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api_client)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    @_retry
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        try:
            obj = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        result: dict[str, Any] = obj.to_dict()
        return result

    def get_app(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A PythonApp, fresh from the API server."""
        return self.get(f"{GROUP}/{VERSION}", KIND, namespace, name)

    @_retry
    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with the operator's field manager, taking ownership (force)."""
        res = self._resource(manifest["apiVersion"], manifest["kind"])
        obj = res.server_side_apply(
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        result: dict[str, Any] = obj.to_dict()
        return result

    @_retry
    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete one object, only if it is still the one we looked at (uid precondition)."""
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace, body=body)
        except NotFoundError:
            return

    @_retry
    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the PythonApp's status subresource."""
        res = self._resource(f"{GROUP}/{VERSION}", KIND)
        obj = res.status.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )
        result: dict[str, Any] = obj.to_dict()
        return result

    @_retry
    def event(
        self, app: dict[str, Any], event_type: str, reason: str, message: str, now: str
    ) -> None:
        """Post a core/v1 Event about a PythonApp (shown by ``kubectl describe pyapp``)."""
        meta = app["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": app.get("apiVersion", f"{GROUP}/{VERSION}"),
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
        # The generated client accepts plain dicts; its type hints say CoreV1Event.
        self.core.create_namespaced_event(meta["namespace"], body)  # type: ignore[arg-type]
