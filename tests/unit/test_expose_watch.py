"""Whether the Gateway API is served is the HTTPRoute watch's own answer (spec.expose).

A real :class:`Controller` with its informers against the in-memory list/watch server
(tests/unit/fake_watch.py), no workers: what is checked is the controller's state, its cache
and which apps are queued, as the API appears and goes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi
from tests.unit.fake_watch import FakeWatchServer
from tests.unit.test_informer import run, until

from pythonapp_operator.controller.kinds import APP, HTTPROUTE_KIND
from pythonapp_operator.controller.manager import Controller, Settings
from pythonapp_operator.routing import Gateway, RouteDefaults

GATEWAY = RouteDefaults(gateway=Gateway("gateway-system", "public"))


def exposed(name: str) -> dict[str, object]:
    doc = make_doc(expose={"host": f"{name}.example.com"})
    doc["metadata"].update(name=name, generation=1)
    return doc


def plain(name: str) -> dict[str, object]:
    doc = make_doc()
    doc["metadata"].update(name=name, generation=1)
    return doc


def route_of(app: dict[str, object]) -> dict[str, object]:
    meta = app["metadata"]
    assert isinstance(meta, dict)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {"app.kubernetes.io/managed-by": "pythonapp-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "pythonapp.dev/v1alpha1",
                    "kind": "PythonApp",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"hostnames": ["x.example.com"]},
    }


def test_an_unserved_gateway_api_neither_blocks_start_up_nor_fails_the_operator() -> None:
    """The HTTPRoute listing answers 404: the cache syncs without it, the operator is healthy,
    and exposed apps get Ingresses; it is listed again later, not retried as an error."""

    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.unserved.add("httproutes")
        server.put("pythonapps", exposed("site"))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.healthy() == (True, "ok")
        assert not c.gateway_api_served and c.routing().kind == "Ingress"
        before = server.requests["GET", 404]
        await until(lambda: server.requests["GET", 404] > before + 1, "listed again")
        assert c.dead is None

    run(test, crd_poll_seconds=0.05)


def test_the_gateway_api_appearing_and_going_moves_exposed_apps_between_route_kinds() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.unserved.add("httproutes")
        site = server.put("pythonapps", exposed("site"))
        server.put("pythonapps", plain("plain"))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        for _ in range(2):  # the start-up's own enqueue of every app
            key = await c.queue.get()
            c.queue.done(key)
        assert len(c.queue) == 0

        server.unserved.clear()  # the CRD is installed
        server.put("httproutes", route_of(site))
        await until(lambda: c.gateway_api_served, "the Gateway API noticed")
        assert c.routing().kind == "HTTPRoute"
        await until(lambda: len(c.queue) > 0, "the exposed app queued")
        assert await c.queue.get() == ("team-a", "site")  # only the one that exposes itself
        c.queue.done(("team-a", "site"))
        await until(lambda: c.store.has(HTTPROUTE_KIND, "team-a", "site"), "its route cached")

        server.unserved.add("httproutes")  # the CRD is deleted (its objects with it)
        server.disconnect()
        await until(lambda: not c.gateway_api_served, "the Gateway API's absence noticed")
        assert not c.store.has(HTTPROUTE_KIND, "team-a", "site")  # the cache holds none
        assert c.routing().kind == "Ingress" and c.healthy() == (True, "ok")
        await until(lambda: len(c.queue) > 0, "the exposed app queued again")
        assert await c.queue.get() == ("team-a", "site")
        assert c.store.has(APP, "team-a", "plain")

    run(test, crd_poll_seconds=0.05, route_defaults=GATEWAY)


def test_without_a_gateway_configured_the_served_api_still_means_ingress() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.gateway_api_served and c.routing().kind == "Ingress"

    run(test, route_defaults=Settings().route_defaults)


class ForbiddingServer(FakeWatchServer):
    """RBAC refuses to list some plurals (an install whose rules predate spec.expose)."""

    def __init__(self, forbidden: set[str]) -> None:
        super().__init__()
        self.forbidden = forbidden

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        if self._parse(path)[0] in self.forbidden:
            return 403, b'{"kind":"Status","code":403,"message":"forbidden: no rule"}'
        return super().request(method, path, **kw)


def test_an_install_without_the_route_rules_keeps_serving_every_app() -> None:
    """Neither route kind may be listed: the cache syncs without them, the operator is
    healthy, exposed apps would get Ingresses (and fail Forbidden on their own status)."""

    async def main() -> None:
        server = ForbiddingServer({"httproutes", "ingresses"})
        server.put("pythonapps", exposed("site"))
        c = Controller(
            FakeApi(),  # type: ignore[arg-type]
            Settings(workers=0, route_defaults=GATEWAY),
            [],
            watch_api=server,  # type: ignore[arg-type]
        )
        try:
            c.start()
            await asyncio.wait_for(c.synced.wait(), 5)
            assert c.healthy() == (True, "ok")
            assert not c.gateway_api_served and c.routing().kind == "Ingress"
            assert c._routes_refused == {"HTTPRoute", "Ingress"}  # said once each
        finally:
            await c.stop()

    asyncio.run(main())
