"""What a watch event does: update the cache, and enqueue the app it concerns, or nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi

from pythonapp_operator.controller import manager
from pythonapp_operator.controller.kinds import APP, KINDS_BY_KIND
from pythonapp_operator.controller.manager import Controller, Settings

DEPLOYMENT = KINDS_BY_KIND["Deployment"]


def app(rv: str = "1") -> dict[str, Any]:
    doc = make_doc()
    doc["metadata"] |= {"uid": "app-uid", "resourceVersion": rv, "generation": 1}
    return doc


def child(rv: str, replicas: int = 0, owner: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "shop",
        "namespace": "team-a",
        "uid": "d1",
        "resourceVersion": rv,
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "pythonapp.dev/v1alpha1",
                "kind": "PythonApp",
                "name": "shop",
                "uid": "app-uid",
                "controller": True,
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"replicas": 2},
        "status": {"readyReplicas": replicas},
    }


def controller() -> Controller:
    settings = Settings(workers=1, status_coalesce_seconds=0.05)
    return Controller(FakeApi(), settings, [])  # type: ignore[arg-type]


def test_events_enqueue_the_app_they_concern_once_and_echoes_nothing() -> None:
    async def main() -> None:
        c = controller()
        c.observe(APP, app("1"), None)
        c.observe(DEPLOYMENT, child("2"), None)
        assert len(c.queue) == 1  # the app, once
        await c.queue.get()
        c.queue.done(("team-a", "shop"))
        c.observe(DEPLOYMENT, child("2"), "MODIFIED")  # the echo of our own apply
        assert len(c.queue) == 0
        c.observe(DEPLOYMENT, child("3", replicas=1), "MODIFIED")  # a pod became ready
        c.observe(DEPLOYMENT, child("4", replicas=2), "MODIFIED")  # and the next one
        assert len(c.queue) == 0 and c.queue.waiting == 1  # status churn is gathered
        assert await asyncio.wait_for(c.queue.get(), 5) == ("team-a", "shop")
        c.queue.done(("team-a", "shop"))
        assert c.queue.idle() and c.queue.waiting == 0  # one reconcile for both
        c.observe(DEPLOYMENT, child("5", replicas=2), "DELETED")  # someone deleted it
        assert len(c.queue) == 1 and c.store.get(DEPLOYMENT, "team-a", "shop") is None

    asyncio.run(main())


def test_a_child_without_our_app_as_controller_enqueues_nothing() -> None:
    async def main() -> None:
        c = controller()
        c.observe(DEPLOYMENT, child("2", owner=False), None)
        assert len(c.queue) == 0

    asyncio.run(main())


def test_a_deleted_app_is_forgotten() -> None:
    async def main() -> None:
        c = controller()
        c.observe(APP, app("1"), None)
        c.queue.add_rate_limited(("team-a", "shop"))
        c.observe(APP, app("2"), "DELETED")
        assert c.store.get(APP, "team-a", "shop") is None
        assert c.queue.failures(("team-a", "shop")) == 0

    asyncio.run(main())


def test_an_event_for_what_the_cache_already_holds_is_not_even_trimmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trimmed: list[str] = []
    real_trim = manager.trim

    def counting_trim(kind: Any, body: Any) -> Any:
        trimmed.append(body["metadata"]["resourceVersion"])
        return real_trim(kind, body)

    monkeypatch.setattr(manager, "trim", counting_trim)
    c = controller()
    c.observe(DEPLOYMENT, child("5"), None)
    c.observe(DEPLOYMENT, child("5"), "MODIFIED")  # the echo of a write already cached
    c.observe(DEPLOYMENT, child("4"), "MODIFIED")  # a late, older event
    assert trimmed == ["5"]
    c.observe(DEPLOYMENT, child("6", replicas=1), "MODIFIED")  # newer: taken
    replaced = child("3")
    replaced["metadata"]["uid"] = "d2"  # deleted and created again: another object
    c.observe(DEPLOYMENT, replaced, "MODIFIED")
    assert trimmed == ["5", "6", "3"]
    assert c.store.get(DEPLOYMENT, "team-a", "shop")["metadata"]["uid"] == "d2"  # type: ignore[index]
    c.observe(DEPLOYMENT, replaced, "DELETED")  # a deletion is never skipped
    assert not c.store.has(DEPLOYMENT, "team-a", "shop")
