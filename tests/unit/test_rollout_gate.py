"""Operator upgrades roll apps at a bounded pace: the gate, the render-only rule, and the
reconcile that asks the gate (on the in-memory fake; the 50-app pace is tests/e2e)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from tests.unit.factories import IMAGE, make_doc
from tests.unit.fake_api import FakeApi
from tests.unit.test_reconcile import World

from pythonapp_operator.controller.kinds import APP, KINDS_BY_KIND
from pythonapp_operator.controller.manager import Controller, Settings
from pythonapp_operator.controller.reconcile import Memory, Outcome
from pythonapp_operator.controller.rollouts import (
    GENERATION_ANNOTATION,
    PACED_ANNOTATION,
    RENDER_EPOCH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    RolloutGate,
    paced_generation,
    render_only,
    rollout_finished,
    stamp,
    template_changes,
)
from pythonapp_operator.render import SECRET_HASH_PREFIX

KEY = ("team-a", "shop")
OTHER = ("team-a", "other")
DEPLOYMENT = KINDS_BY_KIND["Deployment"]
NOW = "2026-12-02T00:00:00Z"

# -- the gate ---------------------------------------------------------------------------------


def test_the_gate_admits_up_to_its_limit_and_the_rest_wait_oldest_first() -> None:
    gate = RolloutGate(2)
    assert gate.admit(("ns", "a"), 1) and gate.admit(("ns", "b"), 1)
    assert not gate.admit(("ns", "c"), 1)
    assert not gate.admit(("ns", "d"), 1)
    assert not gate.admit(("ns", "c"), 1)  # asking again keeps its place
    assert gate.admit(("ns", "a"), 1)  # a holder asking again keeps its slot
    counts = gate.counts()
    assert (counts.active, counts.pending, counts.limit, counts.admitted) == (2, 2, 2, 2)
    assert gate.next_waiting() == []  # no free slot
    assert gate.release(("ns", "a"), "rollout finished")
    assert not gate.release(("ns", "a"), "rollout finished")  # once
    assert gate.next_waiting() == [("ns", "c")]  # the oldest, as many as there are free slots
    assert gate.admit(("ns", "c"), 1)
    assert not gate.admit(("ns", "e"), 1)
    assert gate.counts().pending == 2  # d and e
    gate.withdraw(("ns", "d"))  # its change is not render-only any more
    assert gate.forget(("ns", "b"))  # deleted: its slot is freed
    assert gate.next_waiting() == [("ns", "e")]


def test_adopted_rollouts_hold_slots_even_beyond_the_limit() -> None:
    gate = RolloutGate(1)
    gate.adopt(("ns", "a"), 3)
    gate.adopt(("ns", "b"), 4)
    assert gate.holds(("ns", "b")) == 4
    assert not gate.admit(("ns", "c"), 1)
    gate.release(("ns", "a"), "rollout finished")
    assert not gate.admit(("ns", "c"), 1)  # b still runs: at most one
    gate.release(("ns", "b"), "rollout finished")
    assert gate.admit(("ns", "c"), 1)


def test_a_limit_of_zero_bounds_nothing_and_a_negative_one_is_refused() -> None:
    gate = RolloutGate(0)
    assert not gate.bounded
    assert all(gate.admit(("ns", str(i)), 1) for i in range(50))
    with pytest.raises(ValueError, match=">= 0"):
        RolloutGate(-1)


# -- what is render-only ----------------------------------------------------------------------


def deployment(
    *,
    image: str = IMAGE,
    epoch: str | None = None,
    generation: int | None = 1,
    checksum: str | None = None,
) -> dict[str, Any]:
    """A stamped Deployment as the operator would render it."""
    notes = {"kubectl.kubernetes.io/default-container": "app"}
    if checksum is not None:
        notes[SECRET_HASH_PREFIX + "secret-db"] = checksum
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "team-a"},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"annotations": notes},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }
    return stamp(manifest, generation, epoch)


def test_stamp_records_the_template_and_the_generation_on_the_deployment_not_the_pods() -> None:
    plain = deployment()
    notes = plain["metadata"]["annotations"]
    assert notes[GENERATION_ANNOTATION] == "1"
    assert RENDER_EPOCH_ANNOTATION not in plain["spec"]["template"]["metadata"]["annotations"]
    epoch = deployment(epoch="2")
    assert epoch["spec"]["template"]["metadata"]["annotations"][RENDER_EPOCH_ANNOTATION] == "2"
    assert (
        epoch["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
        != notes[TEMPLATE_HASH_ANNOTATION]
    )
    assert (
        deployment(generation=2)["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
        == (notes[TEMPLATE_HASH_ANNOTATION])
    )  # the generation is not in the template: a spec change that keeps it rolls nothing
    assert stamp({"kind": "Service", "metadata": {}}, 1, "2") == {"kind": "Service", "metadata": {}}


def test_a_new_render_of_the_same_spec_is_render_only() -> None:
    live = deployment()
    assert render_only(deployment(epoch="2"), live, generation=1, observed_generation=1)


def test_the_same_template_is_no_rollout() -> None:
    live = deployment()
    assert not template_changes(deployment(), live)
    assert not render_only(deployment(), live, generation=1, observed_generation=1)


@pytest.mark.parametrize(
    ("desired", "generation", "why"),
    [
        (deployment(epoch="2", generation=2), 2, "the author changed the spec"),
        (deployment(epoch="2", image=IMAGE.replace("1.0.0", "1.1.0")), 1, "a new image"),
        (deployment(epoch="2", checksum="new"), 1, "a Secret rotation"),
    ],
)
def test_what_is_never_paced(desired: dict[str, Any], generation: int, why: str) -> None:
    assert not render_only(desired, deployment(), generation=generation, observed_generation=1)


def test_a_deployment_of_an_older_release_without_records_is_judged_by_its_fields() -> None:
    """Applied by a release that wrote no records: the template is compared field by field
    and the app's status.observedGeneration stands in for the generation record."""
    live = deployment()
    live["metadata"]["annotations"] = {}
    assert not render_only(deployment(), live, generation=1, observed_generation=1)
    assert render_only(deployment(epoch="2"), live, generation=1, observed_generation=1)
    assert not render_only(deployment(epoch="2"), live, generation=2, observed_generation=1)


def test_a_rollout_is_finished_as_kubectl_rollout_status_says() -> None:
    dep = deployment()
    dep["metadata"]["generation"] = 3
    done = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    assert rollout_finished({**dep, "status": done})
    for field, value in (
        ("observedGeneration", 2),  # the controller has not seen the template yet
        ("updatedReplicas", 1),  # pods still to update
        ("replicas", 3),  # an old pod remains
        ("availableReplicas", 1),  # a new pod not available yet
    ):
        assert not rollout_finished({**dep, "status": {**done, field: value}}), field


# -- the reconcile that asks --------------------------------------------------------------------


class Paced(World):
    """The fake world, its app at generation 1, reconciled with a gate and a render epoch."""

    def __init__(self, **spec: Any) -> None:
        self.pacer = RolloutGate(1)
        super().__init__(**spec)
        self.edit_app(lambda app: app["metadata"].__setitem__("generation", 1))

    def edit_app(self, change: Any) -> None:
        change(self.api.objects["PythonApp", "team-a", "shop"])
        self.sync()

    def upgrade(self, epoch: str) -> None:
        """A new operator release that renders the template differently: a fresh process,
        with no memory of the previous one's reconciles."""
        self.epoch = epoch
        self.memory = Memory()

    def deployment(self) -> dict[str, Any]:
        dep: dict[str, Any] = self.api.objects["Deployment", "team-a", "shop"]
        return dep

    def finish_rollout(self) -> None:
        """The Deployment controller and the pods: every pod updated and available."""
        dep = self.deployment()
        n = dep["spec"]["replicas"]
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": n,
            "readyReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
            "conditions": [{"type": "Available", "status": "True"}],
        }
        self.sync()

    def converge(self) -> None:
        self.reconcile()
        self.finish_rollout()
        self.reconcile()
        self.sync()
        assert self.condition("Ready")["status"] == "True"


def epoch_of(dep: dict[str, Any]) -> str | None:
    notes = dep["spec"]["template"]["metadata"].get("annotations") or {}
    return notes.get(RENDER_EPOCH_ANNOTATION)


def test_a_render_only_change_waits_for_a_slot_and_the_app_stays_ready() -> None:
    world = Paced()
    world.converge()
    before = copy.deepcopy(world.deployment())
    assert world.pacer is not None and world.pacer.admit(OTHER, 1)  # the only slot is taken
    world.upgrade("2")  # a new release renders the template differently
    outcome = world.reconcile()
    assert outcome.queued and outcome.failure is None
    assert ("apply", "Deployment") not in world.api.calls  # left as it is
    assert (
        world.deployment()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    )
    ready, reconciling = world.condition("Ready"), world.condition("Reconciling")
    assert (ready["status"], ready["reason"]) == ("True", "RolloutQueued")
    assert (reconciling["status"], reconciling["reason"]) == ("False", "RolloutQueued")
    assert "1 apps at a time" in reconciling["message"]
    assert outcome.recheck_after is not None  # looked at again even if no slot is offered
    assert world.pacer.counts().pending == 1
    world.sync()
    world.reconcile()
    assert world.api.writes() == []  # still waiting: no write, the status says so already

    # the slot is freed: the rollout goes, recorded as paced
    world.pacer.release(OTHER, "rollout finished")
    outcome = world.reconcile()
    assert ("apply", "Deployment") in world.api.calls and not outcome.queued
    dep = world.deployment()
    assert epoch_of(dep) == "2"
    assert paced_generation(dep) == 1
    assert world.pacer.holds(KEY) == 1 and world.pacer.counts().pending == 0
    world.sync()
    world.reconcile()
    assert world.pacer.holds(KEY) == 1  # still rolling
    world.finish_rollout()
    outcome = world.reconcile()
    assert outcome.released and world.pacer.holds(KEY) is None
    assert world.condition("Ready")["reason"] == "Available"


def test_a_spec_change_never_waits_and_gives_back_a_slot_it_held() -> None:
    world = Paced()
    world.converge()
    assert world.pacer is not None and world.pacer.admit(OTHER, 1)
    world.upgrade("2")
    assert world.reconcile().queued
    # the author changes the spec while the app waits: it goes at once, the gate full or not
    world.edit_app(
        lambda app: (
            app["spec"].__setitem__("env", [{"name": "MODE", "value": "x"}]),
            app["metadata"].__setitem__("generation", 2),
        )
    )
    outcome = world.reconcile()
    assert not outcome.queued and ("apply", "Deployment") in world.api.calls
    assert world.pacer.counts().pending == 0
    assert world.pacer.holds(KEY) is None  # not paced: holds no slot
    assert paced_generation(world.deployment()) is None


def test_the_slot_of_a_paced_rollout_is_given_back_when_the_spec_changes() -> None:
    world = Paced()
    world.converge()
    world.upgrade("2")
    world.reconcile()
    assert world.pacer is not None and world.pacer.holds(KEY) == 1
    world.sync()
    world.edit_app(
        lambda app: (
            app["spec"].__setitem__("replicas", 3),
            app["metadata"].__setitem__("generation", 2),
        )
    )
    outcome = world.reconcile()
    assert outcome.released and world.pacer.holds(KEY) is None


def test_weakened_hardening_is_put_back_at_once_with_the_new_render() -> None:
    world = Paced()
    world.converge()
    assert world.pacer is not None and world.pacer.admit(OTHER, 1)
    world.deployment()["spec"]["template"]["spec"]["hostNetwork"] = True
    world.sync()
    world.upgrade("2")
    outcome = world.reconcile()
    assert not outcome.queued and ("apply", "Deployment") in world.api.calls
    dep = world.deployment()
    assert dep["spec"]["template"]["spec"]["hostNetwork"] is False
    assert epoch_of(dep) == "2"


def test_a_new_app_is_never_paced() -> None:
    world = Paced()
    assert world.pacer is not None and world.pacer.admit(OTHER, 1)
    world.upgrade("2")
    outcome = world.reconcile()
    assert not outcome.queued and ("apply", "Deployment") in world.api.calls


def test_without_a_gate_a_new_render_rolls_at_once_as_before() -> None:
    world = Paced()
    world.converge()
    world.pacer = None
    world.upgrade("2")
    outcome = world.reconcile()
    assert not outcome.queued and epoch_of(world.deployment()) == "2"
    assert paced_generation(world.deployment()) is None


def test_drift_on_a_field_the_operator_owns_is_not_paced() -> None:
    world = Paced()
    world.converge()
    assert world.pacer is not None and world.pacer.admit(OTHER, 1)
    container = world.deployment()["spec"]["template"]["spec"]["containers"][0]
    container["image"] = IMAGE.replace("1.0.0", "9.9.9")
    world.sync()
    outcome = world.reconcile()  # no new render: only drift, put back at once
    assert not outcome.queued
    assert world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


# -- the controller: rebuilt from the API server's state, slots offered when freed -------------


def cached_app(name: str) -> dict[str, Any]:
    doc = make_doc()
    doc["metadata"] |= {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", "generation": 4}
    return doc


def cached_deployment(name: str, *, paced: bool, finished: bool) -> dict[str, Any]:
    notes = {PACED_ANNOTATION: "4"} if paced else {}
    status = {"observedGeneration": 7, "replicas": 2, "updatedReplicas": 2 if finished else 1}
    status["availableReplicas"] = status["updatedReplicas"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": f"dep-{name}",
            "resourceVersion": "2",
            "generation": 7,
            "annotations": notes,
            "ownerReferences": [
                {
                    "apiVersion": "pythonapp.dev/v1alpha1",
                    "kind": "PythonApp",
                    "name": name,
                    "uid": f"uid-{name}",
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": 2},
        "status": status,
    }


def test_a_restarted_controller_rebuilds_its_gate_from_the_deployments() -> None:
    controller = Controller(FakeApi(), Settings(workers=1, max_rollouts=1), [])  # type: ignore[arg-type]
    cases = {
        "rolling": (True, False),  # a paced rollout under way: holds a slot again
        "done": (True, True),  # a paced rollout that finished: nothing to hold
        "users": (False, False),  # the author's own rollout: never paced
    }
    for name, (paced, finished) in cases.items():
        controller.observe(APP, cached_app(name), "ADDED")
        deployment = cached_deployment(name, paced=paced, finished=finished)
        controller.observe(DEPLOYMENT, deployment, "ADDED")
    controller.mark_synced()
    assert controller.pacer is not None
    assert controller.pacer.holds(("team-a", "rolling")) == 4
    assert controller.pacer.holds(("team-a", "done")) is None
    assert controller.pacer.holds(("team-a", "users")) is None
    assert not controller.pacer.admit(("team-a", "users"), 4)  # the one slot is taken


async def one_slot_taken_two_waiting(
    holder: str, first: str, second: str
) -> tuple[Controller, RolloutGate]:
    """A synced controller with one rollout slot: ``holder`` has it, the other two wait for it
    in that order (the start-up's queued keys taken out: not what the tests look at)."""
    controller = Controller(FakeApi(), Settings(workers=1, max_rollouts=1), [])  # type: ignore[arg-type]
    for name in (holder, first, second):
        controller.observe(APP, cached_app(name), "ADDED")
    controller.mark_synced()
    for _ in range(3):
        controller.queue.done(await controller.queue.get())
    pacer = controller.pacer
    assert pacer is not None and pacer.admit(("team-a", holder), 4)
    assert not pacer.admit(("team-a", first), 4)
    assert not pacer.admit(("team-a", second), 4)
    return controller, pacer


def test_a_deleted_app_frees_its_slot_for_the_app_waiting_longest() -> None:
    async def main() -> None:
        controller, pacer = await one_slot_taken_two_waiting("first", "second", "third")
        controller.observe(APP, cached_app("first"), "DELETED")
        assert pacer.holds(("team-a", "first")) is None
        assert len(controller.queue) == 1  # the oldest waiting app, offered the slot at once
        assert await controller.queue.get() == ("team-a", "second")

    asyncio.run(main())


def test_a_standby_that_takes_over_adopts_what_its_predecessor_left_rolling() -> None:
    """Its cache was synced long before: the adoption is made again when it starts leading."""
    controller = Controller(FakeApi(), Settings(workers=1, max_rollouts=1), [])  # type: ignore[arg-type]
    controller.leading.clear()  # a standby
    controller.observe(APP, cached_app("rolling"), "ADDED")
    controller.observe(
        DEPLOYMENT, cached_deployment("rolling", paced=False, finished=True), "ADDED"
    )
    controller.mark_synced()
    assert controller.pacer is not None and controller.pacer.holds(("team-a", "rolling")) is None
    # meanwhile the leader admitted a paced rollout of it
    later = cached_deployment("rolling", paced=True, finished=False)
    later["metadata"]["resourceVersion"] = "3"
    controller.observe(DEPLOYMENT, later, "MODIFIED")
    controller.start_leading()
    assert controller.leading.is_set()
    assert controller.pacer.holds(("team-a", "rolling")) == 4


def test_a_slot_the_app_offered_it_leaves_unused_goes_to_the_next_one_waiting() -> None:
    async def main() -> None:
        controller, pacer = await one_slot_taken_two_waiting("a", "b", "c")
        pacer.release(("team-a", "a"), "rollout finished")
        # b, offered the slot, is reconciled: its author changed the spec, it no longer waits
        pacer.withdraw(("team-a", "b"))
        controller._finish(("team-a", "b"), Outcome())  # the worker's step after a reconcile
        assert len(controller.queue) == 1
        assert await controller.queue.get() == ("team-a", "c")

    asyncio.run(main())
