"""Run the operator in the foreground: pre-flight checks, then kopf with the controller.

Before kopf starts, the runner makes sure there is something to run against, so a missing
kubeconfig or an unreachable API server ends in one line and exit code 2, not in a traceback or
an endless retry. A missing PythonApp CRD is not fatal: the operator runs, says so once, and its
health endpoint reports unhealthy until the CRD appears.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import kopf

from ..api.models import DNS1123_LABEL
from .client import ApiError, RestApi
from .kinds import CHILD_KINDS
from .manager import Controller, Settings, http_connections

log = logging.getLogger("pythonapp_operator")
EXIT_UNAVAILABLE = 2


class PreflightError(Exception):
    """Nothing to run against: the message says what is missing."""


def settings_from_env(workers: int | None = None) -> Settings:
    """Settings from flags and the environment (``PYTHONAPP_*``)."""
    env = os.environ
    return Settings(
        workers=workers or int(env.get("PYTHONAPP_WORKERS", "16")),
        resync_seconds=float(env.get("PYTHONAPP_RESYNC_SECONDS", "300")),
        backoff_base=float(env.get("PYTHONAPP_BACKOFF_BASE_SECONDS", "1")),
        backoff_max=float(env.get("PYTHONAPP_BACKOFF_MAX_SECONDS", "300")),
    )


def connect(workers: int) -> RestApi:
    """Load the kubeconfig (in-cluster first) and check the API server answers."""
    from kubernetes import client, config  # noqa: PLC0415

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise PreflightError(
                "no Kubernetes configuration: set KUBECONFIG (or ~/.kube/config), or run in a "
                f"pod with a ServiceAccount ({exc})"
            ) from exc
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = http_connections(workers)
    api = RestApi(client.ApiClient(cfg), max_in_flight=workers)
    try:
        status, _ = api.request("GET", "/version")
    except ApiError as exc:
        raise PreflightError(f"the API server at {cfg.host} is unreachable: {exc.message}") from exc
    if status >= 400 and status not in (401, 403):
        raise PreflightError(f"the API server at {cfg.host} answered HTTP {status} to /version")
    return api


def watch_client(api: RestApi, watches: int) -> RestApi:
    """A client of its own for the informers' watches (each holds a connection for minutes),
    on the same configuration: the workers' pool is never short of a connection."""
    import copy  # noqa: PLC0415

    from kubernetes import client  # noqa: PLC0415

    cfg = copy.copy(api.api_client.configuration)
    cfg.connection_pool_maxsize = watches + 2
    return RestApi(client.ApiClient(cfg), timeout=api.timeout)


def run_operator(
    namespaces: list[str],
    all_namespaces: bool,
    *,
    health: str = "127.0.0.1:8080",
    verbose: bool = False,
    workers: int | None = None,
    metrics: str | None = None,
) -> int:
    """Start kopf with the controller; returns the exit code when the operator stops.

    Without ``--namespace`` the operator watches all namespaces. The health endpoint
    (``/healthz``, ``/readyz``, ``/metrics``) listens on loopback by default; the in-cluster
    Deployment passes ``--health 0.0.0.0:8080``.
    """
    # Exact names only: kopf would also take globs ("team-*") and negations ("!kube-system"),
    # but only by listing and watching every Namespace, which a namespaced installation may
    # not do; with scanning off it would silently serve none of them.
    bad = [ns for ns in namespaces if not re.match(DNS1123_LABEL, ns)]
    if bad:
        raise ValueError(f"not a namespace name (exact names only, no patterns): {bad}")
    conf = settings_from_env(workers)
    try:
        api = connect(conf.workers)
    except PreflightError as exc:
        print(f"pythonapp operator: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    clusterwide = all_namespaces or not namespaces
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
    if not verbose:
        # "Handler ... succeeded" for every watch event drowns what matters; our own
        # "reconciled" line says what was done.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    from . import handlers  # noqa: PLC0415

    @kopf.on.startup()
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        handlers.tune(settings)
        watches = watch_client(api, len(namespaces or [None]) * (1 + len(CHILD_KINDS)))
        controller = Controller(api, conf, namespaces, watch_api=watches)
        handlers.HOLDER.controller = controller
        from .health import serve  # noqa: PLC0415

        handlers.HOLDER.health = await serve(controller, health, metrics or health)
        controller.start()

    @kopf.on.cleanup()
    async def stop(**_: Any) -> None:
        controller = handlers.HOLDER.controller
        if controller is not None:
            await controller.stop()
        if handlers.HOLDER.health is not None:
            await handlers.HOLDER.health.cleanup()

    kopf.run(standalone=True, clusterwide=clusterwide, namespaces=namespaces)
    return 0
