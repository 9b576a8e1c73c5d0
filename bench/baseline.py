"""The bare-client limit: the same work as the operator, done by the fastest plain client.

For every app, one worker thread (``concurrency`` of them) creates the PythonApp, validates the
object the API server returned with the operator's own models, renders its children with the
operator's own renderer (owner references from the returned uid, the hash annotation the
operator sets: byte for byte what the operator applies), server-side-applies each child one
after the other in the operator's apply order (the Deployment last, after its ServiceAccount,
NetworkPolicy, Service and PodDisruptionBudget: the rule the operator must keep, so pods never
run without their isolation), and patches the app's status once, computed by the
operator's own status function from the applied Deployment. No reads, no waiting: how fast
the API server lets a client do what the operator must do. ``ratio_to_baseline`` divides the
operator's time to every Deployment by this client's, measured by the same watch.
"""

from __future__ import annotations

from typing import Any

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.compare import with_hash
from pythonapp_operator.controller.kinds import apply_order
from pythonapp_operator.controller.reconcile import utc_now
from pythonapp_operator.controller.status import compute_status
from pythonapp_operator.render import render

from .load import Batch, Client, keyed, pythonapp
from .process import BenchError


def reconcile_once(api: Client, namespace: str, name: str, image_ref: str) -> None:
    """Create one app and everything the operator would make for it."""
    created = api.create_app(pythonapp(namespace, name, image_ref))
    app, problems = validate_document({k: v for k, v in created.items() if k != "status"})
    if app is None:
        raise BenchError(f"{namespace}/{name}: {problems}")
    deployment: dict[str, Any] | None = None
    for manifest in apply_order(render(app)):
        live = api.apply(with_hash(manifest))
        if manifest["kind"] == "Deployment":
            deployment = live
    status = compute_status(
        generation=created["metadata"].get("generation"),
        problems=[],
        deployment=deployment,
        previous={},
        now=utc_now(),
    )
    api.patch_app_status(namespace, name, status)


def start(api: Client, namespace: str, images: dict[str, str], concurrency: int) -> Batch:
    """All apps at once, ``concurrency`` in flight, in the background."""
    return Batch(
        keyed(images),
        lambda item: reconcile_once(api, namespace, item[0], item[1]),
        concurrency,
    )
