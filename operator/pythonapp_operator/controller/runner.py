"""Run the operator in the foreground: pre-flight checks, then kopf with the controller.

Before kopf starts, the runner makes sure there is something to run against, so a missing
kubeconfig or an unreachable API server ends in one line and exit code 2, not in a traceback or
an endless retry. A missing PythonApp CRD is not fatal: the operator runs, says so once, and its
health endpoint reports unhealthy until the CRD appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import kopf
from kopf._core.engines.peering import Identity

from ..api.models import DNS1123_LABEL
from ..routing import RouteDefaults
from .client import ApiError, RestApi
from .kinds import WATCHED_KINDS
from .leader import ElectionConfig, Elector, default_identity, default_namespace
from .manager import Controller, Settings, http_connections
from .rollouts import DEFAULT_MAX_ROLLOUTS

log = logging.getLogger("pythonapp_operator")
EXIT_UNAVAILABLE = 2
#: leadership was lost: controller-runtime's manager exits non-zero too ("leader election lost")
EXIT_LEADERSHIP_LOST = 1


class PreflightError(Exception):
    """Nothing to run against: the message says what is missing."""


def settings_from_env(workers: int | None = None, max_rollouts: int | None = None) -> Settings:
    """Settings from flags and the environment (``PYTHONAPP_*``).

    ``PYTHONAPP_RENDER_EPOCH`` is a test seam, not a setting: it puts an annotation on every
    pod template, standing for a new release that renders differently (tests and upgrade
    rehearsals of ``--max-rollouts``, docs/operations.md)."""
    env = os.environ
    if max_rollouts is None:
        max_rollouts = int(env.get("PYTHONAPP_MAX_ROLLOUTS", str(DEFAULT_MAX_ROLLOUTS)))
    return Settings(
        workers=workers or int(env.get("PYTHONAPP_WORKERS", "16")),
        resync_seconds=float(env.get("PYTHONAPP_RESYNC_SECONDS", "300")),
        backoff_base=float(env.get("PYTHONAPP_BACKOFF_BASE_SECONDS", "1")),
        backoff_max=float(env.get("PYTHONAPP_BACKOFF_MAX_SECONDS", "300")),
        max_rollouts=max_rollouts,
        render_epoch=env.get("PYTHONAPP_RENDER_EPOCH") or None,
    )


def election_from_env(
    enabled: bool = True, name: str | None = None, namespace: str | None = None
) -> ElectionConfig:
    """The leader election's settings from flags and the environment: ``POD_NAME`` and
    ``POD_NAMESPACE`` (the downward API, in a pod), ``PYTHONAPP_LEASE_DURATION_SECONDS``,
    ``PYTHONAPP_RENEW_DEADLINE_SECONDS``, ``PYTHONAPP_RETRY_PERIOD_SECONDS``."""
    env = os.environ
    config = ElectionConfig(
        enabled=enabled,
        name=name or ElectionConfig.name,
        namespace=default_namespace(namespace),
        identity=default_identity(),
        lease_duration=float(env.get("PYTHONAPP_LEASE_DURATION_SECONDS", "15")),
        renew_deadline=float(env.get("PYTHONAPP_RENEW_DEADLINE_SECONDS", "10")),
        retry_period=float(env.get("PYTHONAPP_RETRY_PERIOD_SECONDS", "2")),
    )
    if enabled:
        config.check()
    return config


@dataclass
class _Running:
    """What start-up made and clean-up stops."""

    controller: Controller | None = None
    elector: Elector | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: kopf's stop flag: set when leadership is lost (kopf then stops as on SIGTERM)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


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
    leader_elect: bool = True,
    leader_election_id: str | None = None,
    leader_election_namespace: str | None = None,
    route_defaults: RouteDefaults | None = None,
    max_rollouts: int | None = None,
) -> int:
    """Start kopf with the controller; returns the exit code when the operator stops.

    Without ``--namespace`` the operator watches all namespaces. The health endpoint
    (``/healthz``, ``/readyz``, ``/metrics``) listens on loopback by default; the in-cluster
    Deployment passes ``--health 0.0.0.0:8080``.

    With leader election (the default) every replica lists and watches at once, but only the
    one holding the Lease reconciles (:mod:`.leader`). Exit code 1 when leadership was lost:
    the process must not write any more, and a fresh start stands by behind the new leader.
    """
    # Exact names only: kopf would also take globs ("team-*") and negations ("!kube-system"),
    # but only by listing and watching every Namespace, which a namespaced installation may
    # not do; with scanning off it would silently serve none of them.
    bad = [ns for ns in namespaces if not re.match(DNS1123_LABEL, ns)]
    if bad:
        raise ValueError(f"not a namespace name (exact names only, no patterns): {bad}")
    conf = settings_from_env(workers, max_rollouts)
    if conf.max_rollouts < 0:
        print("pythonapp operator: --max-rollouts must be >= 0 (0: no bound)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if route_defaults is not None:
        conf.route_defaults = route_defaults
    try:
        election = election_from_env(leader_elect, leader_election_id, leader_election_namespace)
    except ValueError as exc:
        print(f"pythonapp operator: leader election: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
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

    running = _Running()

    @kopf.on.startup()
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        handlers.tune(settings)
        watches = watch_client(api, len(namespaces or [None]) * len(WATCHED_KINDS))
        controller = Controller(api, conf, namespaces, watch_api=watches)
        handlers.HOLDER.controller = running.controller = controller
        if election.enabled:
            elector = running.elector = Elector(
                api, election, on_started_leading=controller.start_leading
            )
            controller.leading.clear()
            api.fence = elector.may_write
        from .health import serve  # noqa: PLC0415

        handlers.HOLDER.health = await serve(
            controller, health, metrics or health, elector=running.elector
        )
        controller.start()  # lists and watches at once: a standby's cache is warm
        if running.elector is not None:
            running.tasks.append(
                asyncio.create_task(_elect(running.elector, controller, running.stop))
            )

    @kopf.on.cleanup()
    async def stop(**_: Any) -> None:
        for task in running.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if running.elector is not None:
            running.elector.shut()  # no write from here on, whatever thread it is in
        controller = handlers.HOLDER.controller
        if controller is not None:
            await controller.stop()
        if running.elector is not None:
            await running.elector.release()  # a standby takes over at its next try
        if handlers.HOLDER.health is not None:
            await handlers.HOLDER.health.cleanup()

    kopf.run(
        standalone=True,
        clusterwide=clusterwide,
        namespaces=namespaces,
        stop_flag=running.stop,
        # kopf would name itself with getpass.getuser(), which raises for a uid without a
        # passwd entry: the image's non-root 10001 has none (found running the image on the
        # dev cluster's real node). The process's own identity needs no user database.
        identity=Identity(default_identity()),
    )
    if running.elector is not None and running.elector.lost:
        return EXIT_LEADERSHIP_LOST
    return 0


async def _elect(elector: Elector, controller: Controller, stop: asyncio.Event) -> None:
    """Run the election; once leadership is lost (the elector has shut the write fence and
    said so in the log), stop the workers and the whole operator, which then exits 1."""
    try:
        await elector.run()
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug must not leave a replica that neither leads nor says so
        log.exception("leader election failed")
        elector.shut()
        elector.lost = True
    controller.leading.clear()
    stop.set()  # kopf's own graceful stop, as on SIGTERM; run_operator then returns 1
