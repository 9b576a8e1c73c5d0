"""Reconcile with autoscaling, on the fake (which keeps a Deployment's ``replicas`` managers as
server-side apply does): the count is handed over before every apply without it, so it is
left to the autoscaler, and taken back when autoscaling goes off; the HPA is a child like the
others."""

from __future__ import annotations

from typing import Any

from tests.unit.test_reconcile import World

SCALING = {"minReplicas": 2, "maxReplicas": 10}


def change_spec(world: World, **spec: Any) -> None:
    """A new generation of the app (None removes a field), delivered by the watch."""
    app = world.api.objects["PythonApp", "team-a", "shop"]
    for key, value in spec.items():
        if value is None:
            app["spec"].pop(key, None)
        else:
            app["spec"][key] = value
    app["metadata"]["generation"] = app["metadata"].get("generation", 1) + 1
    world.sync()


def replicas(world: World) -> int:
    count: int = world.api.objects["Deployment", "team-a", "shop"]["spec"]["replicas"]
    return count


def test_switching_on_hands_the_count_over_once_and_leaves_it_to_the_autoscaler() -> None:
    world = World(replicas=3)
    world.reconcile()
    assert replicas(world) == 3
    change_spec(world, replicas=None, autoscaling=SCALING)
    outcome = world.reconcile()
    assert outcome.failure is None
    calls = world.api.calls
    assert calls.index(("handover", "Deployment")) < calls.index(("apply", "Deployment"))
    assert ("apply", "HorizontalPodAutoscaler") in calls
    assert replicas(world) == 3  # without the hand-over, the field would go: 1 pod
    world.sync()
    # the autoscaler scales; a later spec change re-applies the Deployment and leaves it
    world.api.scale("team-a", "shop", 7)
    change_spec(world, env=[{"name": "A", "value": "1"}])
    world.reconcile()
    calls = world.api.calls
    assert calls.index(("handover", "Deployment")) < calls.index(("apply", "Deployment"))
    assert replicas(world) == 7
    world.sync()
    assert world.reconcile().writes == 0  # and nothing to do after


def test_a_new_autoscaled_deployment_starts_at_the_floor_and_then_belongs_to_the_autoscaler() -> (
    None
):
    world = World(autoscaling={"minReplicas": 3, "maxReplicas": 10})
    assert world.reconcile().failure is None
    assert replicas(world) == 3  # not the API server's default of 1, raised a sync later
    world.sync()
    assert world.reconcile().writes == 0  # the count is not in the hash: in sync as created
    # a spec change while the count is still the creating apply's: it stays
    change_spec(world, env=[{"name": "A", "value": "1"}])
    world.reconcile()
    assert replicas(world) == 3
    assert "operator" not in world.api.replicas_managers["team-a", "shop"]
    world.sync()
    # the autoscaler scales; the next apply leaves its count
    world.api.scale("team-a", "shop", 5)
    change_spec(world, env=[{"name": "A", "value": "2"}])
    world.reconcile()
    assert replicas(world) == 5


def test_switching_off_applies_replicas_again_and_removes_the_hpa() -> None:
    world = World(autoscaling=SCALING)
    world.reconcile()
    assert ("handover", "Deployment") not in world.api.calls  # created so: nothing to hand
    world.sync()
    world.api.scale("team-a", "shop", 6)
    world.sync()
    change_spec(world, autoscaling=None, replicas=4)
    outcome = world.reconcile()
    assert outcome.failure is None
    assert replicas(world) == 4
    assert ("delete", "HorizontalPodAutoscaler") in world.api.calls
    assert ("HorizontalPodAutoscaler", "team-a", "shop") not in world.api.objects
    assert world.api.replicas_managers["team-a", "shop"] == {"operator"}
    # on again: the count stays where replicas put it
    world.sync()
    change_spec(world, replicas=None, autoscaling=SCALING)
    world.reconcile()
    assert replicas(world) == 4


def test_the_budget_follows_the_autoscalers_floor() -> None:
    world = World(replicas=3)
    world.reconcile()
    assert ("PodDisruptionBudget", "team-a", "shop") in world.api.objects
    world.sync()
    change_spec(world, replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 5})
    world.reconcile()
    assert ("delete", "PodDisruptionBudget") in world.api.calls  # a stale child of its kind
    assert ("PodDisruptionBudget", "team-a", "shop") not in world.api.objects
    assert replicas(world) == 3


def test_the_status_carries_the_pod_selector_for_the_scale_subresource() -> None:
    world = World()
    world.reconcile()
    assert world.status()["selector"] == (
        "app.kubernetes.io/instance=shop,app.kubernetes.io/name=shop"
    )
