"""kopf glue: kopf runs the process; the controller (:mod:`.manager`) does the watching.

kopf gives the operator its life cycle: start-up and clean-up hooks, signal handling (a clean
exit on SIGTERM), JSON logging. It registers no resource handlers: every watched kind is listed
and watched by the controller's own informers (:mod:`.informer`), because a controller must
know when a listing begins and ends (to notice deletions missed while no watch ran), which
kopf's handlers are never told, and because kopf's per-object tasks were the largest CPU cost
at start-up (notes/controller.md).

Why not kopf's create/update/resume handlers at all: they make kopf write its own annotations
onto every PythonApp (writes, and noise in GitOps diffs), and they are edge-triggered; the
controller's reconcile is level-based.
"""

from __future__ import annotations

from typing import Any

import kopf

from .. import GROUP
from .manager import Controller


class _Holder:
    controller: Controller | None = None
    health: Any = None


HOLDER = _Holder()


def tune(settings: kopf.OperatorSettings) -> None:
    """Production settings for kopf, which serves no resources here.

    Cluster scanning is off: kopf would otherwise list and watch every Namespace and CRD (even
    in namespaced mode, and with no handler to serve), which a namespaced installation has no
    right to do. The controller's informer for PythonApps notices the CRD installed, removed or
    installed late by itself (the health endpoint says which).
    """
    settings.scanning.disabled = True
    # Our own prefix, should a change-tracking handler ever be added; none write today.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    # kopf would otherwise turn log lines into Event objects: writes nobody asked for.
    settings.posting.enabled = False
    settings.networking.request_timeout = 30
