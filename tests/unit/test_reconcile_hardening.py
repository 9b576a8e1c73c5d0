"""Reconcile on the in-memory fake when another writer weakens a child's hardening: put back
what the operator's forced apply owns (DriftCorrected), report the rest (HardeningDrift, one
Warning event per verdict, cleared by itself), and stay idle at zero writes meanwhile. The real
API server's side (atomic lists, ownership of explicit empty and false values) is in
tests/e2e/test_hardening_on_cluster.py."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_reconcile import World

POD = "spec.template.spec"


def pod(world: World) -> dict[str, Any]:
    spec: dict[str, Any] = world.api.objects["Deployment", "team-a", "shop"]["spec"]["template"][
        "spec"
    ]
    return spec


def converged(**spec: Any) -> World:
    world = World(**spec)
    world.reconcile()
    world.sync()
    world.reconcile()
    world.api.events.clear()
    return world


def reasons(world: World) -> list[str]:
    return [reason for _, reason, _ in world.api.events]


@pytest.mark.parametrize(
    ("spec", "rules"),
    [
        ({"profile": "worker", "port": None}, [{}]),  # a worker's deny-all opened to everyone
        ({}, [{"ports": [{"port": "http", "protocol": "TCP"}]}, {}]),  # an allow-all appended
    ],
    ids=["worker-opened", "web-rule-appended"],
)
def test_a_network_policy_opened_by_another_writer_is_put_back(
    spec: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    world = converged(**spec)
    rendered = world.api.objects["NetworkPolicy", "team-a", "shop"]["spec"].get("ingress")
    world.api.objects["NetworkPolicy", "team-a", "shop"]["spec"]["ingress"] = rules
    world.sync()
    outcome = world.reconcile()
    assert ("apply", "NetworkPolicy") in world.api.calls
    assert world.api.objects["NetworkPolicy", "team-a", "shop"]["spec"]["ingress"] == rendered
    assert reasons(world) == ["DriftCorrected"] and outcome.failure is None


def test_host_network_is_put_back() -> None:
    world = converged()
    pod(world)["hostNetwork"] = True
    world.sync()
    world.reconcile()
    assert ("apply", "Deployment") in world.api.calls
    assert pod(world)["hostNetwork"] is False
    assert reasons(world) == ["DriftCorrected"]


def test_a_host_path_volume_is_reported_once_left_alone_and_clears_by_itself() -> None:
    world = converged()
    volumes = pod(world)["volumes"]
    volumes.append({"name": "host", "hostPath": {"path": "/"}})
    world.sync()
    world.reconcile()
    assert [c for c in world.api.calls if c[0] == "apply"] == []  # no fight with the writer
    ready, stalled = world.condition("Ready"), world.condition("Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "HardeningDrift")
    assert stalled["status"] == "True"
    assert f"Deployment shop: {POD}.volumes[name=host].hostPath" in ready["message"]
    assert [e[:2] for e in world.api.events] == [("Warning", "HardeningDrift")]

    for _ in range(2):  # the same verdict: no write, no new event, nothing compared again
        world.sync()
        world.reconcile()
        assert world.api.calls == []
    assert len(world.api.events) == 1

    volumes.pop()
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is None
    assert world.condition("Ready")["reason"] != "HardeningDrift"
    assert world.condition("Stalled")["status"] == "False"
    assert [c for c in world.api.calls if c[0] == "apply"] == []


def test_the_report_survives_a_converged_reconcile_that_neither_validates_nor_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = converged()
    pod(world)["containers"].append({"name": "debug", "image": "x", "securityContext": {}})
    world.sync()
    world.reconcile()
    world.sync()
    world.reconcile()  # verified with its findings

    def boom(*_: Any) -> Any:
        raise AssertionError("checked again")

    monkeypatch.setattr("pythonapp_operator.controller.reconcile.render", boom)
    monkeypatch.setattr("pythonapp_operator.controller.hardening.check", boom)
    dep = world.api.objects["Deployment", "team-a", "shop"]
    dep["status"] = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1}
    world.sync()
    world.reconcile()  # only the status changed: memory answers
    assert world.condition("Ready")["reason"] == "HardeningDrift"
    assert (
        "containers[name=debug].securityContext.allowPrivilegeEscalation"
        in (world.condition("Ready")["message"])
    )


def test_a_field_the_forced_apply_does_not_remove_is_reported_without_an_apply_loop() -> None:
    """A field the operator renders, yet another writer's value survives the apply (here the
    fake keeps it, as a webhook might): applied once, then reported, never applied again."""
    world = converged()

    def webhook(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["hostPID"] = True

    world.api.normalise = webhook
    pod(world)["hostPID"] = True
    world.sync()
    world.reconcile()
    assert ("apply", "Deployment") in world.api.calls
    assert world.condition("Ready")["reason"] == "HardeningDrift"
    assert f"{POD}.hostPID" in world.condition("Ready")["message"]
    for _ in range(2):
        world.sync()
        world.reconcile()
        assert world.api.writes() == []


def test_a_new_verdict_says_so_again() -> None:
    world = converged()
    pod(world)["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    world.sync()
    world.reconcile()
    pod(world)["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "1"}]
    world.sync()
    world.reconcile()
    assert reasons(world) == ["HardeningDrift", "HardeningDrift"]
    assert "sysctls[name=kernel.msgmax]" in world.api.events[-1][2]
