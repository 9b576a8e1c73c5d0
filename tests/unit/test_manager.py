"""What a watch event does: update the cache, and enqueue the app it concerns, or nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi

from pythonapp_operator.controller import informer
from pythonapp_operator.controller.informer import Forbidden, Informer
from pythonapp_operator.controller.kinds import APP, CONFIGMAP, KINDS_BY_KIND, SECRET
from pythonapp_operator.controller.manager import Controller, Settings
from pythonapp_operator.controller.reconcile import Memory, Outcome, reconcile
from pythonapp_operator.controller.status import Failure

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
    """A controller whose cache is synced (nothing listed): every event enqueues."""
    settings = Settings(workers=1, status_coalesce_seconds=0.05)
    c = Controller(FakeApi(), settings, [])  # type: ignore[arg-type]
    c.mark_synced()
    return c


def test_events_enqueue_the_app_they_concern_once_and_echoes_nothing() -> None:
    async def main() -> None:
        c = controller()
        c.observe(APP, app("1"), "ADDED")
        c.observe(DEPLOYMENT, child("2"), "ADDED")
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
        c.observe(DEPLOYMENT, child("2", owner=False), "ADDED")
        assert len(c.queue) == 0

    asyncio.run(main())


def test_a_deleted_app_is_forgotten() -> None:
    async def main() -> None:
        c = controller()
        c.observe(APP, app("1"), "ADDED")
        c.queue.add_rate_limited(("team-a", "shop"))
        c.observe(APP, app("2"), "DELETED")
        assert c.store.get(APP, "team-a", "shop") is None
        assert c.queue.failures(("team-a", "shop")) == 0

    asyncio.run(main())


def test_an_event_for_what_the_cache_already_holds_is_not_even_trimmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trimmed: list[str] = []
    real_trim = informer.trim

    def counting_trim(kind: Any, body: Any) -> Any:
        trimmed.append(body["metadata"]["resourceVersion"])
        return real_trim(kind, body)

    monkeypatch.setattr(informer, "trim", counting_trim)
    c = controller()
    watch = Informer(DEPLOYMENT, None, c.api, c.store, c.on_delta)  # type: ignore[arg-type]

    def event(kind: str, obj: dict[str, Any]) -> None:
        watch._event({"type": kind, "object": obj}, "1")

    event("ADDED", child("5"))
    event("MODIFIED", child("5"))  # the echo of a write already cached
    event("MODIFIED", child("4"))  # a late, older event
    assert trimmed == ["5"]
    event("MODIFIED", child("6", replicas=1))  # newer: taken
    replaced = child("3")
    replaced["metadata"]["uid"] = "d2"  # deleted and created again: another object
    event("MODIFIED", replaced)
    assert trimmed == ["5", "6", "3"]
    assert c.store.get(DEPLOYMENT, "team-a", "shop")["metadata"]["uid"] == "d2"  # type: ignore[index]
    event("DELETED", replaced)  # a deletion is never skipped
    assert not c.store.has(DEPLOYMENT, "team-a", "shop")


KEY = ("team-a", "shop")


def _reconcile(c: Controller) -> Outcome:
    """What a worker does with one key, without the worker, up to the absorbing."""
    snap = c.snapshot(KEY)
    assert snap is not None
    return reconcile(c.api, snap, c.memories.setdefault(KEY, Memory()))  # type: ignore[arg-type]


def _stored_app(c: Controller) -> tuple[FakeApi, dict[str, Any]]:
    """The app stored on the fake API server and seen by the controller's cache."""
    api: FakeApi = c.api  # type: ignore[assignment]
    stored = api.put(app("1"))
    c.observe(APP, stored, "ADDED")
    return api, stored


def test_a_spec_edit_absorbed_with_the_status_response_is_queued_again() -> None:
    """Finding 4: the app's own status-patch response already carried the new spec; the edit's
    watch event, older than the response, was then skipped as held, and the new generation
    waited for the resync (5 of 30 apps in a fault run)."""

    async def main() -> None:
        c = controller()
        api, _ = _stored_app(c)
        assert await c.queue.get() == KEY
        # the user edits the spec after the reconcile took its snapshot (the cache still holds
        # generation 1), before its status write
        edited = api.objects["PythonApp", "team-a", "shop"]
        edited["spec"]["replicas"] = 5
        edited["metadata"]["generation"] = 2
        edited["metadata"]["resourceVersion"] = "150"
        c._absorb(KEY, _reconcile(c))
        c.queue.done(KEY)
        c.observe(APP, edited, "MODIFIED")  # the edit's event: older than the response
        assert c.store.get(APP, *KEY)["metadata"]["generation"] == 2  # type: ignore[index]
        assert len(c.queue) == 1, "the new generation must be reconciled, not left to resync"

    asyncio.run(main())


def test_an_apps_memory_goes_with_it_on_every_path() -> None:
    """Finding 6: memory written back after the app was gone, or never forgotten."""

    async def main() -> None:
        c = controller()
        api, stored = _stored_app(c)
        c._absorb(KEY, _reconcile(c))
        assert KEY in c.memories
        c.observe(APP, stored, "DELETED")
        assert KEY not in c.memories  # the app's DELETED
        again = app("1")
        again["metadata"]["uid"] = "app-uid-2"  # re-created: another object
        c.observe(APP, api.put(again), "ADDED")
        outcome = _reconcile(c)
        c.observe(APP, api.objects["PythonApp", "team-a", "shop"], "DELETED")  # meanwhile
        c._absorb(KEY, outcome)
        assert KEY not in c.memories  # not written back for an app that is gone
        assert not c.store.has(APP, *KEY)

    asyncio.run(main())


def test_a_failed_reconcile_is_logged_not_crashed(caplog: pytest.LogCaptureFixture) -> None:
    """The failure's log line once passed ``message`` in ``extra``, a name logging reserves:
    every failed reconcile then crashed in its bookkeeping ("reconcile crashed", found by the
    fault suite) and its warning was never written."""

    async def main() -> None:
        c = controller()
        key = ("team-a", "shop")
        outcome = Outcome(failure=Failure("Forbidden", "no", stalled=True))
        assert c._finish(key, outcome) == "requeue"

    with caplog.at_level("WARNING", logger="pythonapp_operator"):
        asyncio.run(main())
    failed = [
        r for r in caplog.records if r.getMessage() == "reconcile failed; retrying with backoff"
    ]
    assert (
        failed
        and failed[0].__dict__["error"] == "no"
        and failed[0].__dict__["reason"] == "Forbidden"
    )


POD = KINDS_BY_KIND["Pod"]


def a_pod(rv: str, app_name: str = "shop", waiting: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "t"}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "m"}}
    return {
        "metadata": {
            "name": f"{app_name}-abc",
            "namespace": "team-a",
            "uid": f"pod-{app_name}",
            "resourceVersion": rv,
            "labels": {"app.kubernetes.io/instance": app_name},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "rs", "uid": "rs", "controller": True}
            ],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "app", "ready": not waiting, "state": state}],
        },
    }


def a_job(rv: str, ended: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Complete", "status": "True"}] if ended else []
    return {
        "metadata": {
            "name": "shop-migrate-0123456789",
            "namespace": "team-a",
            "uid": "job-1",
            "resourceVersion": rv,
            "labels": {"app.kubernetes.io/instance": "shop"},
        },
        "status": {"active": 0 if ended else 1, "conditions": conditions},
    }


async def with_app_reconciled() -> Controller:
    """A synced controller holding the app, its first reconcile taken and done."""
    c = controller()
    c.observe(APP, app("1"), "ADDED")
    await c.queue.get()
    c.queue.done(("team-a", "shop"))
    return c


def test_a_migration_job_created_ended_or_gone_enqueues_its_app_at_once() -> None:
    """A Job's end opens the migrations gate: the rollout it held back is not gathered with the
    status-only changes (a coalescing delay, then a place behind them)."""
    job_kind = KINDS_BY_KIND["Job"]

    async def main() -> None:
        c = await with_app_reconciled()
        key = ("team-a", "shop")
        c.observe(job_kind, a_job("2"), "ADDED")
        assert len(c.queue) == 1 and c.queue.waiting == 0  # urgent
        assert await asyncio.wait_for(c.queue.get(), 1) == key
        c.queue.done(key)
        c.observe(job_kind, {**a_job("3"), "status": {"active": 1, "ready": 1}}, "MODIFIED")
        assert len(c.queue) == 0 and c.queue.waiting == 0  # running still: nothing the gate reads
        c.observe(job_kind, a_job("4", ended=True), "MODIFIED")
        assert len(c.queue) == 1 and c.queue.waiting == 0
        assert await asyncio.wait_for(c.queue.get(), 1) == key
        c.queue.done(key)
        c.observe(job_kind, a_job("5", ended=True), "DELETED")
        assert len(c.queue) == 1 and c.queue.waiting == 0

    asyncio.run(main())


def test_a_pod_event_enqueues_its_app_by_label_gathered_like_status() -> None:
    async def main() -> None:
        c = await with_app_reconciled()
        c.observe(POD, a_pod("2"), "ADDED")
        c.observe(POD, a_pod("3", waiting="CrashLoopBackOff"), "MODIFIED")
        assert len(c.queue) == 0 and c.queue.waiting == 1  # gathered, not urgent
        assert await asyncio.wait_for(c.queue.get(), 5) == ("team-a", "shop")
        c.queue.done(("team-a", "shop"))
        snap = c.snapshot(("team-a", "shop"))
        assert snap is not None and [p["metadata"]["name"] for p in snap.observed["Pod"]] == [
            "shop-abc"
        ]
        c.observe(POD, a_pod("4", waiting="CrashLoopBackOff"), "DELETED")
        assert c.queue.waiting == 1  # the pod gone changes what the status says
        snap = c.snapshot(("team-a", "shop"))
        assert snap is not None and snap.observed["Pod"] == []
        assert c.store.members == {}
        c.observe(POD, a_pod("5", app_name="nobody"), "ADDED")  # no such app: nothing
        assert c.queue.waiting == 1

    asyncio.run(main())


def test_pod_status_that_only_moved_in_time_is_not_a_change() -> None:
    async def main() -> None:
        c = await with_app_reconciled()
        c.observe(POD, a_pod("2"), "ADDED")
        await asyncio.wait_for(c.queue.get(), 5)
        c.queue.done(("team-a", "shop"))
        later = a_pod("3")
        later["status"]["conditions"] = []
        later["status"]["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t2", "lastProbeTime": "t3"}
        ]
        c.observe(POD, later, "MODIFIED")
        assert len(c.queue) == 0 and c.queue.waiting == 1  # a condition appeared: a change
        await asyncio.wait_for(c.queue.get(), 5)
        c.queue.done(("team-a", "shop"))
        again = a_pod("4")
        again["status"]["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t4", "lastProbeTime": "t5"}
        ]
        c.observe(POD, again, "MODIFIED")
        assert len(c.queue) == 0 and c.queue.waiting == 0

    asyncio.run(main())


def a_secret(name: str, rv: str, uid: str = "s-uid") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": rv}}


def test_a_secret_change_enqueues_only_the_apps_that_reference_it() -> None:
    async def main() -> None:
        c = controller()
        doc = app("1")
        doc["spec"]["secrets"] = [{"name": "db"}]
        c.observe(APP, doc, "ADDED")
        key = await c.queue.get()
        snap = c.snapshot(key)  # as a worker takes it: the app's references are noted
        assert snap is not None and snap.secrets == {"db": None}
        c.queue.done(key)
        c.observe(SECRET, a_secret("other", "5"), "ADDED")  # not referenced: nothing
        assert len(c.queue) == 0
        c.observe(SECRET, a_secret("db", "6"), "ADDED")
        assert len(c.queue) == 1  # it appeared: the app goes on
        await c.queue.get()
        c.queue.done(key)
        c.observe(SECRET, a_secret("db", "6"), "MODIFIED")  # the same version: nothing
        assert len(c.queue) == 0
        c.observe(SECRET, a_secret("db", "7"), "MODIFIED")  # data or labels: read again
        assert len(c.queue) == 1
        snap = c.snapshot(key)
        assert snap is not None and snap.secrets == {"db": ("s-uid", "7")}

    asyncio.run(main())


def test_an_install_without_secret_rights_works_without_the_check() -> None:
    settings = Settings(workers=1)
    c = Controller(FakeApi(), settings, [])  # type: ignore[arg-type]
    for informer_ in c.informers:
        if informer_.kind is SECRET:
            c.on_delta(Forbidden(SECRET, 'secrets is forbidden: User "op" cannot list'))
        else:
            c.on_delta(informer.Listed(informer_.kind, None, [], "1"))
    assert c.synced.is_set() and not c.secrets_readable
    assert c.flags()["secrets_readable"] is False
    c.on_delta(informer.Listed(SECRET, None, [], "2"))  # granted later: on again
    assert c.secrets_readable


def test_configmap_and_pull_secret_changes_enqueue_only_the_apps_naming_them() -> None:
    async def main() -> None:
        c = controller()
        doc = app("1")
        doc["spec"]["config"] = [{"name": "settings"}]
        doc["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
        c.observe(APP, doc, "ADDED")
        key = await c.queue.get()
        snap = c.snapshot(key)
        assert snap is not None
        assert snap.configmaps == {"settings": None} and snap.secrets == {"regcred": None}
        c.queue.done(key)
        c.observe(CONFIGMAP, a_secret("kube-root-ca.crt", "5"), "ADDED")  # not named: nothing
        c.observe(SECRET, a_secret("settings", "5"), "ADDED")  # a Secret of that name: nothing
        assert len(c.queue) == 0
        c.observe(CONFIGMAP, a_secret("settings", "6", uid="c-uid"), "ADDED")
        assert len(c.queue) == 1
        await c.queue.get()
        c.queue.done(key)
        c.observe(SECRET, a_secret("regcred", "7"), "ADDED")  # a pull Secret appears
        assert len(c.queue) == 1
        snap = c.snapshot(key)
        assert snap is not None and snap.configmaps == {"settings": ("c-uid", "6")}
        assert snap.secrets == {"regcred": ("s-uid", "7")}

    asyncio.run(main())


def test_an_install_without_configmap_rights_works_without_the_check() -> None:
    c = Controller(FakeApi(), Settings(workers=1), [])  # type: ignore[arg-type]
    for informer_ in c.informers:
        if informer_.kind is CONFIGMAP:
            c.on_delta(Forbidden(CONFIGMAP, 'configmaps is forbidden: User "op" cannot list'))
        else:
            c.on_delta(informer.Listed(informer_.kind, None, [], "1"))
    assert c.synced.is_set() and c.secrets_readable
    assert c.flags()["configmaps_readable"] is False
    c.observe(APP, app("1"), "ADDED")
    snap = c.snapshot(("team-a", "shop"))
    assert snap is not None and snap.configmaps is None and snap.secrets == {}
    c.on_delta(informer.Listed(CONFIGMAP, None, [], "2"))  # granted later: on again
    assert c.flags()["configmaps_readable"] is True
