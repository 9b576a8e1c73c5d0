"""Informers and the store: presence is the watch's word alone (issue 17, finding 2).

Each test drives a real :class:`Controller` with its informers against an in-memory list/watch
server (tests/unit/fake_watch.py); the controller runs no workers, so what is checked is what
the cache holds and which apps are queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi
from tests.unit.fake_watch import FakeWatchServer

from pythonapp_operator.controller.cache import Store
from pythonapp_operator.controller.kinds import APP, KINDS_BY_KIND
from pythonapp_operator.controller.manager import Controller, Settings
from pythonapp_operator.controller.reconcile import Memory

DEPLOYMENT = KINDS_BY_KIND["Deployment"]
KEY = ("team-a", "shop")


def app_doc() -> dict[str, Any]:
    doc = make_doc()
    doc["metadata"]["generation"] = 1
    return doc


def deployment_of(app: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "shop",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "pythonapp-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "pythonapp.dev/v1alpha1",
                    "kind": "PythonApp",
                    "name": "shop",
                    "uid": app["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": 2},
    }


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def run(test: Callable[[Controller, FakeWatchServer], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        server = FakeWatchServer()
        controller = Controller(
            FakeApi(),  # type: ignore[arg-type]
            Settings(workers=0, **settings),
            [],
            watch_api=server,  # type: ignore[arg-type]
        )
        try:
            await test(controller, server)
        finally:
            await controller.stop()

    asyncio.run(main())


def test_a_relist_after_410_forgets_what_was_deleted_in_the_gap() -> None:
    """kopf sent no DELETED for an object removed while its watch was down; a relist did not
    replace the cache, so a deleted child looked present (and verified) for ever."""

    async def test(c: Controller, server: FakeWatchServer) -> None:
        app = server.put("pythonapps", app_doc())
        server.put("deployments", deployment_of(app))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.store.has(DEPLOYMENT, *KEY)
        await c.queue.get()
        c.queue.done(KEY)
        server.delete("deployments", *KEY, seen=False)  # compacted away: no DELETED event
        server.disconnect()  # the watch resumes from before it: 410, then a listing
        await until(lambda: not c.store.has(DEPLOYMENT, *KEY), "the deployment forgotten")
        assert len(c.queue) == 1  # its app, to recreate it
        assert c.store.has(APP, *KEY)  # still listed: kept

    run(test)


def test_a_relist_forgets_a_deleted_app_and_its_memory() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.put("pythonapps", app_doc())
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        c.memories[KEY] = Memory()
        server.delete("pythonapps", *KEY, seen=False)
        server.disconnect()
        await until(lambda: not c.store.has(APP, *KEY), "the app forgotten")
        assert KEY not in c.memories

    run(test)


def test_watch_events_after_the_listing_update_the_cache_in_order() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        app = server.put("pythonapps", app_doc())
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        await c.queue.get()
        c.queue.done(KEY)
        server.put("deployments", deployment_of(app))
        await until(lambda: c.store.has(DEPLOYMENT, *KEY), "the deployment seen")
        server.delete("deployments", *KEY)
        await until(lambda: not c.store.has(DEPLOYMENT, *KEY), "the deletion seen")
        assert len(c.queue) == 1

    run(test)


def test_the_crd_installed_late_is_noticed_without_a_restart() -> None:
    """Namespaced mode with the CRD installed after start: healthy but watching nothing."""

    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.unserved.add("pythonapps")
        c.start()
        await until(lambda: not c.crd_installed, "the missing CRD noticed")
        assert not c.healthy()[0] and "CRD" in c.healthy()[1]
        assert not c.synced.is_set()  # no worker runs on a cache that lacks the apps
        server.unserved.clear()
        server.put("pythonapps", app_doc())
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.healthy() == (True, "ok") and c.store.has(APP, *KEY)

    run(test, crd_poll_seconds=0.05)


def test_an_informer_that_dies_makes_the_controller_unhealthy_with_the_cause() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError("a bug")

        server.request = broken  # type: ignore[method-assign]
        c.start()
        await until(lambda: c.dead is not None, "the informer's death noticed")
        ok, why = c.healthy()
        assert not ok and "RuntimeError: a bug" in why

    run(test)


def test_a_task_that_ends_makes_the_controller_unhealthy_with_the_cause() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        async def broken() -> None:
            raise ValueError("lost")

        c.start()
        c._spawn(broken(), "resync")
        await until(lambda: c.dead is not None, "the task's end noticed")
        assert "resync" in c.healthy()[1] and "ValueError: lost" in c.healthy()[1]

    run(test)


def test_a_deleted_object_is_never_revived_by_a_late_write_response_or_listing() -> None:
    store = Store()
    app = app_doc()
    app["metadata"] |= {"uid": "a1", "resourceVersion": "5"}
    child = deployment_of(app)
    child["metadata"] |= {"uid": "d1", "resourceVersion": "7"}
    store.upsert(DEPLOYMENT, child)
    assert store.delete(DEPLOYMENT, *KEY, "d1")
    late = {**child, "metadata": {**child["metadata"], "resourceVersion": "8"}}
    assert not store.upsert(DEPLOYMENT, late)  # the write's response came after the DELETED
    assert not store.has(DEPLOYMENT, *KEY)
    # a DELETED seen before the object ever was (the listing raced it)
    store.delete(DEPLOYMENT, "team-b", "other", "d2")
    other = {**child, "metadata": {**child["metadata"], "namespace": "team-b", "uid": "d2"}}
    changed, removed = store.replace(DEPLOYMENT, None, [store.encode(DEPLOYMENT, other)], "9")
    assert not changed and not removed and not store.has(DEPLOYMENT, "team-b", "other")


def test_a_listing_keeps_what_was_written_after_it_was_taken() -> None:
    store = Store()
    app = app_doc()
    app["metadata"] |= {"uid": "a1", "resourceVersion": "5"}
    child = deployment_of(app)
    child["metadata"] |= {"uid": "d1", "resourceVersion": "12"}
    store.upsert(DEPLOYMENT, child)  # a create's response, at 12
    _, removed = store.replace(DEPLOYMENT, None, [], "11")  # a listing taken at 11
    assert not removed and store.has(DEPLOYMENT, *KEY)
    _, removed = store.replace(DEPLOYMENT, "team-b", [], "13")  # another namespace's listing
    assert not removed and store.has(DEPLOYMENT, *KEY)
    _, removed = store.replace(DEPLOYMENT, "team-a", [], "13")
    assert [k for k, _ in removed] == [KEY] and not store.has(DEPLOYMENT, *KEY)
