"""The operator's HTTP endpoint: ``/healthz`` (liveness), ``/readyz`` and ``/metrics``.

- ``/healthz``: 200 while the operator can do its job; 503 with one line saying why when it
  cannot (the PythonApp CRD is not installed, or was deleted while running);
- ``/readyz``: 200 once every watched kind is listed (the cache is synced) and healthy, on a
  standby too (as controller-runtime's standbys are): a replica that is never Ready would block
  every rolling update under the PodDisruptionBudget, and a standby with a warm cache is exactly
  what a takeover needs. Its body says which role the replica has ("ok (leader)", "ok (standby;
  leader: <identity>)"); ``pythonapp_leader`` (1 or 0) is the signal to alert and count on;
- ``/metrics``: Prometheus text format (:mod:`.metrics`).

The same routes answer on the ``--health`` address and, when given, the ``--metrics`` one (the
in-cluster Deployment names them ``health`` and ``metrics``, so a NetworkPolicy and a scrape
config can tell them apart).

Served by aiohttp on the operator's own event loop (aiohttp is what kopf itself runs on).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .leader import Elector
from .manager import Controller


def role(controller: Controller, elector: Elector | None) -> str:
    """The replica's role for /readyz: ``(leader)`` or ``(standby; leader: X)``; nothing when
    leader election is off."""
    if elector is None:
        return ""
    if controller.leading.is_set():
        return " (leader)"
    return f" (standby; leader: {elector.leader or 'none yet'})"


def app(controller: Controller, elector: Elector | None = None) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, why = controller.healthy()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = controller.healthy()
        if ok and not controller.synced.is_set():
            ok, why = False, "listing the watched kinds"
        if ok:
            why += role(controller, elector)
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(controller.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    application.router.add_get("/metrics", metrics)
    return application


async def serve(
    controller: Controller, *addresses: str, elector: Elector | None = None
) -> web.AppRunner:
    """Serve every endpoint on each ``host:port`` given (health, and metrics if it differs).

    The runner is kept to stop the listeners at shutdown.
    """
    runner = web.AppRunner(app(controller, elector), access_log=None)
    await runner.setup()
    for address in dict.fromkeys(addresses):  # once each, in order
        host, _, port = address.rpartition(":")
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    return runner
