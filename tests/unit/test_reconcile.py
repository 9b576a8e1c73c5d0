"""Reconcile on the in-memory fake: apply order, no takeovers, failures on the status, no
pointless writes, drift correction that settles. The real API server proves the rest (e2e)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi

from pythonapp_operator.controller.cache import Store
from pythonapp_operator.controller.client import ApiError
from pythonapp_operator.controller.fanout import Fanout, ThreadFanout, sequential
from pythonapp_operator.controller.kinds import (
    APP,
    CHILD_KINDS,
    KINDS_BY_KIND,
    is_controlled_by,
    trim,
)
from pythonapp_operator.controller.reconcile import Memory, Outcome, Snapshot, reconcile
from pythonapp_operator.controller.rollouts import RolloutGate
from pythonapp_operator.controller.secretrefs import Digests

NOW = "2026-12-02T00:00:00Z"
ISOLATION = {"ServiceAccount", "NetworkPolicy", "Service", "PodDisruptionBudget"}


@pytest.fixture(params=["sequential", "threads"])
def fanout(request: pytest.FixtureRequest) -> Iterator[Fanout]:
    """Both ways of making a stage's calls: in turn, and at once on threads (the operator's)."""
    if request.param == "sequential":
        yield sequential
        return
    pool = ThreadFanout(4)
    yield pool
    pool.shutdown()


def unchanged(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for the resourceVersion (the test's watch stamps new ones)."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}
        return {**o, "metadata": meta}

    return strip(a) == strip(b)


class World:
    """The fake API server plus the operator's cache, kept in step as the watches would."""

    def __init__(self, fanout: Fanout = sequential, **spec: Any) -> None:
        self.fanout = fanout
        self.api = FakeApi()
        self.store = Store()
        self.memory = Memory()
        self.app = self.api.put(make_doc(**spec))
        self.sync()

    def sync(self) -> None:
        """Deliver every managed object the fake holds to the cache (the watch). Tests edit the
        fake's objects in place; a real API server would give each edit a new
        resourceVersion, so every object gets one here (unchanged content stays unchanged)."""
        seen = set()
        for (kind, ns, name), obj in self.api.objects.items():
            obj["metadata"]["resourceVersion"] = str(next(self.api._rv))
            labels = obj["metadata"].get("labels") or {}
            wk = KINDS_BY_KIND[kind]
            if wk is APP or labels.get("app.kubernetes.io/managed-by") == "pythonapp-operator":
                self.store.upsert(wk, trim(wk, obj))
                seen.add((kind, ns, name))
        for kind, bucket in self.store.objects.items():
            for ns, name in list(bucket):
                if (kind, ns, name) not in seen:
                    self.store.delete(KINDS_BY_KIND[kind], ns, name, None)

    def snapshot(self) -> Snapshot:
        app = self.store.get(APP, "team-a", "shop")
        assert app is not None
        children, versions = {}, {}
        for kind in CHILD_KINDS:
            child = self.store.get(kind, "team-a", "shop")
            if child is not None:
                children[kind.kind] = child
                versions[kind.kind] = self.store.version(kind, "team-a", "shop")
        return Snapshot(app, children, versions)

    #: what the reconciles share of the referenced Secrets and ConfigMaps
    #: (test_reconcile_secrets sets them)
    digests: Digests | None = None
    config_digests: Digests | None = None
    #: the render-only rollout gate and the render epoch (test_rollout_gate sets them)
    pacer: RolloutGate | None = None
    epoch: str | None = None

    def reconcile(self) -> Outcome:
        self.api.calls.clear()
        outcome = reconcile(
            self.api,
            self.snapshot(),
            self.memory,
            now=lambda: NOW,
            fanout=self.fanout,
            digests=self.digests,
            config_digests=self.config_digests,
            pacer=self.pacer,
            epoch=self.epoch,
        )
        for kind, obj in outcome.written:
            self.store.upsert(kind, trim(kind, obj))
        for kind, ns, name, uid in outcome.removed:
            self.store.delete(kind, ns, name, uid)
        return outcome

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.api.objects["PythonApp", "team-a", "shop"].get("status", {})
        return status

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status()["conditions"] if c["type"] == kind)


def test_first_reconcile_creates_without_a_read_and_applies_the_deployment_last(
    fanout: Fanout,
) -> None:
    world = World(fanout)
    outcome = world.reconcile()
    calls = world.api.calls
    assert sorted(calls) == sorted(
        [("apply", kind) for kind in [*ISOLATION, "Deployment"]] + [("patch_status", "PythonApp")]
    )  # no GET: each create is create-only on the server, so there is nothing to look at first
    last_isolation = max(calls.index(("apply", kind)) for kind in ISOLATION)
    assert calls.index(("apply", "Deployment")) > last_isolation
    assert calls[-1] == ("patch_status", "PythonApp")
    assert sorted(kind.kind for kind, _ in outcome.written[:5]) == sorted(
        [*ISOLATION, "Deployment"]
    )
    assert outcome.failure is None and outcome.status_patched
    assert world.condition("Ready")["reason"] == "Progressing"  # pods not there yet


def test_a_converged_app_makes_no_request_at_all() -> None:
    world = World()
    world.reconcile()
    world.sync()
    world.reconcile()  # the status patch's own echo is already in the cache
    assert world.api.calls == []


def test_a_cached_child_controlled_by_someone_else_is_never_written(fanout: Fanout) -> None:
    world = World(fanout)
    theirs = world.api.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "shop",
                "namespace": "team-a",
                "labels": {"app.kubernetes.io/managed-by": "pythonapp-operator"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "legacy",
                        "uid": "u-legacy",
                        "controller": True,
                    }
                ],
            },
            "spec": {"selector": {"app": "legacy"}},
        }
    )
    world.sync()
    outcome = world.reconcile()
    applied = [kind for verb, kind in world.api.calls if verb == "apply"]
    assert applied == []  # found in the cache before any write: nothing at all is applied
    assert unchanged(world.api.objects["Service", "team-a", "shop"], theirs)
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    stalled = world.condition("Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "NotOwned"
    assert "Service shop" in stalled["message"] and "Deployment legacy" in stalled["message"]
    assert [e[:2] for e in world.api.events] == [("Warning", "NotOwned")]


def test_a_not_owned_verdict_from_a_stale_cache_is_confirmed_by_one_look(fanout: Fanout) -> None:
    """Finding 2: the cache still held another owner's object that the API server no longer
    has (a re-created app of the same name read NotOwned from the cache alone)."""
    world = World(fanout)
    world.reconcile()
    old_uid = world.app["metadata"]["uid"]
    # the app is deleted and re-created; garbage collection took its children, but the cache
    # has not seen those deletions yet
    del world.api.objects["PythonApp", "team-a", "shop"]
    world.app = world.api.put(make_doc())
    assert world.app["metadata"]["uid"] != old_uid
    world.store.upsert(APP, trim(APP, world.app))
    for key in [k for k in world.api.objects if k[0] != "PythonApp"]:
        del world.api.objects[key]
    world.memory = Memory()
    outcome = world.reconcile()
    assert outcome.failure is None, outcome.failure
    gets = [kind for verb, kind in world.api.calls if verb == "get"]
    assert sorted(gets) == sorted([*ISOLATION, "Deployment"])  # one look per stale verdict
    applied = [kind for verb, kind in world.api.calls if verb == "apply"]
    assert sorted(applied) == sorted([*ISOLATION, "Deployment"])
    assert world.condition("Stalled")["status"] == "False"


def test_children_left_by_a_deleted_app_of_the_same_name_are_removed_as_gc_would(
    fanout: Fanout,
) -> None:
    """Found by make chaos: after an API server restart, kube-controller-manager's garbage
    collector left a deleted app's children for minutes, and the app re-created under its name
    read NotOwned until then. Their controller is a PythonApp of this name with another uid:
    that app is gone (a name is held by one object at a time), so they are garbage."""
    world = World(fanout)
    world.reconcile()
    world.sync()
    old_uid = world.app["metadata"]["uid"]
    del world.api.objects["PythonApp", "team-a", "shop"]
    world.app = world.api.put(make_doc())
    world.sync()  # the cache holds the new app and the old app's children
    world.memory = Memory()
    outcome = world.reconcile()
    assert outcome.failure is None, outcome.failure
    deleted = sorted(kind for verb, kind in world.api.calls if verb == "delete")
    assert deleted == sorted([*ISOLATION, "Deployment"])
    for key, obj in world.api.objects.items():
        if key[0] != "PythonApp":
            assert is_controlled_by(obj, world.app["metadata"]["uid"]), key
            assert not is_controlled_by(obj, old_uid)
    assert world.condition("Stalled")["status"] == "False"


@pytest.mark.parametrize("owner", ["another-app", "a-deployment"])
def test_a_child_controlled_by_any_other_owner_is_still_not_owned(owner: str) -> None:
    world = World()
    world.reconcile()
    world.sync()
    svc = world.api.objects["Service", "team-a", "shop"]
    ref = svc["metadata"]["ownerReferences"][0]
    if owner == "another-app":
        ref |= {"name": "other", "uid": "u-other"}
    else:
        ref |= {"apiVersion": "apps/v1", "kind": "Deployment", "uid": "u-deploy"}
    world.sync()
    world.memory = Memory()
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    assert not [c for c in world.api.calls if c[0] == "delete"]


def test_an_uncached_object_holding_the_name_refuses_the_create_and_is_left_alone(
    fanout: Fanout,
) -> None:
    """An unlabelled ServiceAccount (the watch never shows it): the create-only apply is
    refused, the look finds it, the operator reports, the ServiceAccount is not written and
    the Deployment is not applied (the rest of its stage, the app's own objects, may be)."""
    world = World(fanout)
    theirs = world.api.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "shop", "namespace": "team-a"},
            "imagePullSecrets": [{"name": "registry"}],
        }
    )
    world.sync()
    outcome = world.reconcile()
    assert [k for v, k in world.api.calls if v == "get"] == ["ServiceAccount"]
    applied = [kind for verb, kind in world.api.calls if verb == "apply"]
    assert applied.count("ServiceAccount") == 1 and "Deployment" not in applied
    assert ("Deployment", "team-a", "shop") not in world.api.objects
    assert unchanged(world.api.objects["ServiceAccount", "team-a", "shop"], theirs)
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    assert "has no controller" in outcome.failure.message


def test_a_cached_child_replaced_by_someone_elses_is_refused_by_uid_and_reported() -> None:
    world = World()
    world.reconcile()
    world.sync()
    mine = world.api.objects.pop(("Service", "team-a", "shop"))
    theirs = world.api.put(
        {**mine, "metadata": {**mine["metadata"], "uid": "theirs", "ownerReferences": []}}
    )
    world.api.objects["Service", "team-a", "shop"]["spec"]["selector"] = {"app": "theirs"}
    cached = world.store.get(KINDS_BY_KIND["Service"], "team-a", "shop")
    assert cached is not None
    cached["spec"]["selector"] = {"app": "edited"}  # the cache saw ours edited, not replaced
    cached["metadata"]["resourceVersion"] = str(next(world.api._rv))
    assert world.store.upsert(KINDS_BY_KIND["Service"], cached)
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    assert world.api.objects["Service", "team-a", "shop"]["spec"]["selector"] == {"app": "theirs"}
    assert theirs["metadata"]["uid"] == "theirs"


def test_an_own_child_the_cache_has_not_seen_yet_is_applied_not_reported() -> None:
    world = World()
    world.api.objects["PythonApp", "team-a", "shop"]["metadata"]["generation"] = 1
    world.sync()
    world.reconcile()
    assert world.status()["observedGeneration"] == 1  # reconciled once: a loss would be news
    world.store.delete(KINDS_BY_KIND["Service"], "team-a", "shop", None)  # watch lags
    world.api.objects["Service", "team-a", "shop"]["spec"]["ports"] = []  # and it drifted
    outcome = world.reconcile()
    assert outcome.failure is None
    assert ("get", "Service") in world.api.calls  # the create-only apply was refused: look
    assert world.api.objects["Service", "team-a", "shop"]["spec"]["ports"] != []
    assert "Recreated" not in [reason for _, reason, _ in world.api.events]  # it never went


@pytest.mark.parametrize(
    ("error", "reason", "stalled"),
    [
        (
            ApiError(403, "Forbidden", 'networkpolicies "shop" is forbidden: denied by policy'),
            "Forbidden",
            "True",
        ),
        (
            ApiError(403, "Forbidden", "exceeded quota: q, requested: count/networkpolicies=1"),
            "QuotaExceeded",
            "True",
        ),
        (ApiError(422, "Invalid", "admission policy says no"), "Rejected", "True"),
        (ApiError(0, "Unavailable", "ReadTimeoutError: read timed out"), "ApiUnavailable", "False"),
        (ApiError(503, "ServiceUnavailable", "etcd leader changed"), "ApiUnavailable", "False"),
    ],
)
def test_a_refused_isolation_child_keeps_the_deployment_away_and_shows_on_the_status(
    error: ApiError, reason: str, stalled: str, fanout: Fanout
) -> None:
    world = World(fanout)
    world.api.refuse["apply", "NetworkPolicy"] = error
    outcome = world.reconcile()
    assert ("apply", "Deployment") not in world.api.calls
    # the rest of its stage was written, and the cache hears of it at once
    assert sorted(kind.kind for kind, _ in outcome.written if kind.kind != "PythonApp") == sorted(
        ISOLATION - {"NetworkPolicy"}
    )
    assert ("Deployment", "team-a", "shop") not in world.api.objects
    assert outcome.failure is not None and outcome.failure.reason == reason
    assert world.condition("Ready")["reason"] == reason
    assert error.message in world.condition("Ready")["message"]
    assert "NetworkPolicy shop" in world.condition("Ready")["message"]
    assert world.condition("Stalled")["status"] == stalled
    assert world.condition("Reconciling")["status"] == ("False" if stalled == "True" else "True")
    assert world.api.events[-1][:2] == ("Warning", reason)

    # the same failure again: no new event, no status write
    world.sync()
    world.api.events.clear()
    world.reconcile()
    assert world.api.events == []
    assert ("patch_status", "PythonApp") not in world.api.calls

    # the cause goes: the next retry clears the condition by itself
    del world.api.refuse["apply", "NetworkPolicy"]
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is None
    assert ("Deployment", "team-a", "shop") in world.api.objects
    assert world.condition("Stalled")["status"] == "False"


def test_a_terminating_namespace_is_quiet() -> None:
    world = World()
    world.api.refuse["apply", "ServiceAccount"] = ApiError(
        403,
        "Forbidden",
        'serviceaccounts "shop" is forbidden: unable to create new content in namespace team-a '
        "because it is being terminated",
        [{"reason": "NamespaceTerminating"}],
    )
    outcome = world.reconcile()
    assert outcome.gone and outcome.failure is None
    assert world.api.events == []
    assert "status" not in world.api.objects["PythonApp", "team-a", "shop"]


def test_a_status_for_a_deleted_app_never_lands_on_its_same_name_successor() -> None:
    """The cache still holds the deleted app; the API server holds a new one of the same name.
    The status write is refused (its uid test), the old app is forgotten, no failure shows."""
    world = World()
    successor = copy.deepcopy(world.api.objects["PythonApp", "team-a", "shop"])
    successor["metadata"]["uid"] = "successor-uid"
    world.api.objects["PythonApp", "team-a", "shop"] = successor  # not synced: the cache lags
    outcome = world.reconcile()
    assert ("patch_status", "PythonApp") in world.api.calls
    assert outcome.gone and outcome.failure is None and not outcome.status_patched
    assert (APP, "team-a", "shop", world.app["metadata"]["uid"]) in outcome.removed
    assert "status" not in world.api.objects["PythonApp", "team-a", "shop"]


def test_a_status_write_keeps_what_it_does_not_recompute() -> None:
    """The status write replaces the whole status: what the reconcile does not recompute (the
    counts of a Deployment it could not recreate) is carried over, as a merge patch kept it."""
    world = World()
    world.reconcile()
    del world.api.objects["Deployment", "team-a", "shop"]
    world.api.objects["PythonApp", "team-a", "shop"]["status"]["replicas"] = 7
    world.sync()
    world.api.refuse["apply", "Deployment"] = ApiError(503, "ServiceUnavailable", "try later")
    outcome = world.reconcile()
    assert outcome.status_patched and outcome.failure is not None
    status = world.api.objects["PythonApp", "team-a", "shop"]["status"]
    assert status["replicas"] == 7
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"


def test_an_invalid_spec_touches_no_child_and_says_so_once() -> None:
    world = World()
    world.reconcile()
    world.sync()
    before = copy.deepcopy(world.api.objects["Deployment", "team-a", "shop"])
    world.api.objects["PythonApp", "team-a", "shop"]["spec"]["image"] = "ghcr.io/acme/shop:latest"
    world.sync()
    world.reconcile()
    assert [c for c in world.api.calls if c[0] == "apply"] == []
    assert unchanged(world.api.objects["Deployment", "team-a", "shop"], before)
    assert world.condition("Stalled")["reason"] == "InvalidSpec"
    assert [e[1] for e in world.api.events] == ["InvalidSpec"]
    world.sync()
    world.reconcile()
    assert world.api.calls == [] and len(world.api.events) == 1


def test_web_to_worker_deletes_the_owned_service_only() -> None:
    world = World()
    world.reconcile()
    world.api.objects["PythonApp", "team-a", "shop"]["spec"]["profile"] = "worker"
    world.sync()
    outcome = world.reconcile()
    assert outcome.deleted == ["Service/shop"]
    assert ("Service", "team-a", "shop") not in world.api.objects


def test_drift_is_put_back_with_one_event() -> None:
    world = World()
    world.reconcile()
    dep = world.api.objects["Deployment", "team-a", "shop"]
    dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    world.sync()
    world.reconcile()
    assert ("apply", "Deployment") in world.api.calls
    sc = world.api.objects["Deployment", "team-a", "shop"]["spec"]["template"]["spec"]
    assert sc["securityContext"]["runAsNonRoot"] is True
    assert [e[1] for e in world.api.events] == ["DriftCorrected"]


def test_a_value_the_server_re_spells_settles_after_one_apply_and_drift_still_works() -> None:
    """The server stores a spelling the comparison does not know (here: a port number as a
    string, for the sake of the test). The apply's own answer shows it: from then on no write
    and no event for that state, but a real edit later is still put back."""
    world = World()

    def respell(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Service":
            obj["spec"]["sessionAffinity"] = "None"
            for port in obj["spec"].get("ports", []):
                port["port"] = str(port["port"])  # a number re-spelled as a string

    world.api.normalise = respell
    world.reconcile()
    assert world.memory.settled  # the subset test alone would call this drift forever
    for _ in range(3):
        world.sync()
        world.reconcile()
        assert world.api.calls == []  # settled: no write loop
    assert world.api.events == []

    world.api.objects["Service", "team-a", "shop"]["spec"]["selector"] = {"app": "other"}
    world.sync()
    world.reconcile()
    assert ("apply", "Service") in world.api.calls  # a real edit is still corrected
    assert world.api.objects["Service", "team-a", "shop"]["spec"]["selector"] != {"app": "other"}


def test_a_cached_child_deleted_meanwhile_is_created_again() -> None:
    """The cache still holds a child the API server no longer has (its DELETED event not yet
    seen): the apply with its uid is refused (409), the operator looks, and creates it."""
    world = World()
    world.reconcile()
    world.sync()
    del world.api.objects["Service", "team-a", "shop"]
    cached = world.store.get(KINDS_BY_KIND["Service"], "team-a", "shop")
    assert cached is not None
    cached["spec"]["selector"] = {"app": "edited"}  # forces an apply with the cached uid
    cached["metadata"]["resourceVersion"] = str(next(world.api._rv))
    assert world.store.upsert(KINDS_BY_KIND["Service"], cached)
    outcome = world.reconcile()
    assert outcome.failure is None
    assert ("Service", "team-a", "shop") in world.api.objects


def test_a_converged_app_whose_pods_change_is_neither_validated_nor_rendered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the Deployment's status changed: the status follows, from memory of the last
    check (the spec's generation and each child's content version), with no render."""
    world = World()
    world.reconcile()
    world.sync()
    world.reconcile()  # checks every child once and remembers it

    def boom(*_: Any) -> Any:
        raise AssertionError("rendered again")

    monkeypatch.setattr("pythonapp_operator.controller.reconcile.render", boom)
    monkeypatch.setattr("pythonapp_operator.controller.reconcile.validate_document", boom)
    dep = world.api.objects["Deployment", "team-a", "shop"]
    dep["status"] = {
        "observedGeneration": 1,
        "replicas": 2,
        "readyReplicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    world.sync()
    outcome = world.reconcile()
    assert outcome.status_patched and world.api.writes() == [("patch_status", "PythonApp")]
    assert world.condition("Ready")["status"] == "True"


def test_a_refused_look_says_get_and_keeps_the_deployment_away(fanout: Fanout) -> None:
    """The Deployment's name is held (its create-only apply is refused) and the look at what
    holds it is refused too: the failure names the GET, and no Deployment is written."""
    world = World(fanout)
    world.api.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop", "namespace": "team-a"},
            "spec": {"replicas": 1},
        }
    )
    world.api.refuse["get", "Deployment"] = ApiError(403, "Forbidden", "deployments is forbidden")
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "Forbidden"
    assert "refused to get Deployment shop" in outcome.failure.message
    assert world.api.calls.count(("apply", "Deployment")) == 1  # the create-only one, refused
    assert world.api.objects["Deployment", "team-a", "shop"]["spec"] == {"replicas": 1}


def test_a_create_refused_by_admission_over_someone_elses_object_says_not_owned(
    fanout: Fanout,
) -> None:
    """A create-only apply onto an existing object meets admission (as an update of it) before
    its version is checked, so a policy may refuse it first: the status then names whose
    object holds the name, and without such an object the refusal itself is reported."""
    world = World(fanout)
    world.api.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "shop", "namespace": "team-a"},
        }
    )
    denied = ApiError(403, "Forbidden", 'admission webhook "policy" denied the request')
    world.api.refuse["apply", "ServiceAccount"] = denied
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    assert ("Deployment", "team-a", "shop") not in world.api.objects

    world = World(fanout)  # the name is free: the webhook's refusal is the news
    world.api.refuse["apply", "ServiceAccount"] = denied
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "Forbidden"
    assert "admission webhook" in outcome.failure.message


def test_a_name_that_changes_hands_during_the_look_is_a_retried_conflict() -> None:
    """The cache lags (ours is not in it), the create-only apply is refused, the look finds
    ours, and before the apply with its uid someone replaces it: nothing is written, and the
    app says Conflict (retried with backoff), not a stalled rejection."""
    world = World()
    world.reconcile()
    world.store.delete(KINDS_BY_KIND["Service"], "team-a", "shop", None)  # watch lags
    world.api.objects["Service", "team-a", "shop"]["spec"]["ports"] = []
    looked = world.api.get

    def look_then_replace(kind: str, namespace: str, name: str) -> Any:
        found = looked(kind, namespace, name)
        theirs = world.api.objects[kind, namespace, name]
        world.api.objects[kind, namespace, name] = {
            **theirs,
            "metadata": {**theirs["metadata"], "uid": "theirs", "ownerReferences": []},
        }
        return found

    world.api.get = look_then_replace  # type: ignore[method-assign]
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "Conflict"
    assert "while the operator was writing it" in outcome.failure.message
    assert world.api.objects["Service", "team-a", "shop"]["metadata"]["uid"] == "theirs"
    assert world.api.objects["Service", "team-a", "shop"]["spec"]["ports"] == []
    stalled = world.condition("Stalled")
    assert stalled["status"] == "False"
