"""Reconcile with a migrations gate (spec.migrate), on the fake: the Deployment keeps the image it
runs until the new image's migration Job is Complete (a new app gets no Deployment before),
a failed Job stalls the app with MigrationFailed and keeps the old image (and is not run again
after its TTL deleted it), a newer digest supersedes a running migration (deleted first, one
migration at a time), and a rollback runs the gate again. The Job controller's part (status,
pods) is played by the test; the real one is in tests/e2e/test_migrations.py."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import IMAGE
from tests.unit.test_reconcile import NOW, World
from tests.unit.test_reconcile_scaling import change_spec

from pythonapp_operator.controller.kinds import OBSERVED_KINDS
from pythonapp_operator.controller.reconcile import Snapshot
from pythonapp_operator.render import MIGRATED_ANNOTATION

MIGRATE = {"command": ["python", "manage.py", "migrate"]}
IMAGE_B = IMAGE.replace("ab" * 32, "cd" * 32)
IMAGE_C = IMAGE.replace("ab" * 32, "ef" * 32)


class GateWorld(World):
    """The World with the app's Jobs and pods in its snapshots, as the operator's cache has."""

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        observed = {k.kind: self.store.members_of(k, "team-a", "shop") for k in OBSERVED_KINDS}
        return Snapshot(snap.app, snap.children, snap.versions, observed, snap.secrets)


def jobs(world: World) -> dict[str, dict[str, Any]]:
    return {name: obj for (kind, _, name), obj in world.api.objects.items() if kind == "Job"}


def the_job(world: World) -> dict[str, Any]:
    found = list(jobs(world).values())
    assert len(found) == 1, sorted(jobs(world))
    return found[0]


def end(world: World, job: dict[str, Any], *, ok: bool, reason: str = "", code: int = 1) -> None:
    """Play the Job controller: the Job ends (with a failed pod carrying an exit code)."""
    if ok:
        job["status"] = {
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": NOW,
        }
    else:
        job["status"] = {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason,
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": NOW,
                }
            ]
        }
        world.api.put(pod_of(job, phase="Failed", code=code))
    world.sync()


def pod_of(job: dict[str, Any], *, phase: str, code: int | None = None) -> dict[str, Any]:
    state = {"terminated": {"exitCode": code, "reason": "Error"}} if code else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": job["metadata"]["name"] + "-x1",
            "namespace": "team-a",
            "labels": dict(job["metadata"]["labels"]),
            "ownerReferences": [
                {"kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"]}
                | {"apiVersion": "batch/v1", "controller": True}
            ],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "migrate", "ready": False, "state": state}],
        },
    }


def image(world: World) -> str:
    deployment = world.api.objects["Deployment", "team-a", "shop"]
    found: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return found


def reasons(world: World) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in world.status()["conditions"]}


def passed(world: World) -> GateWorld:
    """An app with a gate whose first migration succeeded: running IMAGE, the Job deleted by
    its TTL (only the Deployment's record of it is left)."""
    assert isinstance(world, GateWorld)
    world.reconcile()
    world.sync()
    job = the_job(world)
    end(world, job, ok=True)
    world.reconcile()
    del world.api.objects["Job", "team-a", job["metadata"]["name"]]
    world.sync()
    return world


def test_a_new_app_migrates_before_its_deployment_exists() -> None:
    world = GateWorld(migrate=MIGRATE)
    outcome = world.reconcile()
    assert outcome.failure is None
    assert ("Deployment", "team-a", "shop") not in world.api.objects
    job = the_job(world)
    assert job["metadata"]["name"].startswith("shop-migrate-")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["command"]) == (IMAGE, MIGRATE["command"])
    # isolation first: the Job's pod runs under the app's ServiceAccount and NetworkPolicy
    calls = world.api.calls
    assert calls.index(("apply", "Job")) > calls.index(("apply", "ServiceAccount"))
    assert reasons(world) == {
        "Ready": ("False", "Migrating"),
        "Reconciling": ("True", "Migrating"),
        "Stalled": ("False", "Migrating"),
    }
    world.sync()
    assert world.reconcile().writes == 0  # the Job runs: nothing to do, not created twice
    end(world, job, ok=True)
    world.reconcile()
    assert image(world) == IMAGE
    deployment = world.api.objects["Deployment", "team-a", "shop"]
    assert deployment["metadata"]["annotations"][MIGRATED_ANNOTATION] == job["metadata"]["name"]
    assert world.status()["migration"] == {
        "image": IMAGE,
        "result": "Succeeded",
        "finishedAt": NOW,
        "job": job["metadata"]["name"],
    }
    assert reasons(world)["Reconciling"][1] != "Migrating"


def test_the_deployment_keeps_its_image_until_the_job_is_complete() -> None:
    world = passed(GateWorld(migrate=MIGRATE))
    first = world.status()["migration"]["job"]
    assert world.reconcile().writes == 0  # the Deployment's record: not run again
    change_spec(world, image=IMAGE_B, env=[{"name": "A", "value": "1"}])
    world.reconcile()
    job = the_job(world)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_B
    assert image(world) == IMAGE  # held back (the env change applies, with the old image)
    deployment = world.api.objects["Deployment", "team-a", "shop"]
    assert deployment["metadata"]["annotations"][MIGRATED_ANNOTATION] == first
    assert reasons(world)["Reconciling"] == ("True", "Migrating")
    world.sync()
    world.reconcile()
    assert image(world) == IMAGE
    end(world, job, ok=True)
    world.reconcile()
    assert image(world) == IMAGE_B
    assert world.status()["migration"]["image"] == IMAGE_B
    world.sync()
    assert world.reconcile().writes == 0


def test_a_failed_migration_stalls_the_app_and_keeps_the_old_image() -> None:
    world = passed(GateWorld(migrate=MIGRATE))
    change_spec(world, image=IMAGE_B)
    world.reconcile()
    world.sync()
    job = the_job(world)
    end(world, job, ok=False, reason="BackoffLimitExceeded", code=3)
    outcome = world.reconcile()
    assert image(world) == IMAGE
    assert reasons(world) == {
        "Ready": ("False", "MigrationFailed"),
        "Reconciling": ("False", "MigrationFailed"),
        "Stalled": ("True", "MigrationFailed"),
    }
    stalled = next(c for c in world.status()["conditions"] if c["type"] == "Stalled")
    name = job["metadata"]["name"]
    assert name in stalled["message"]
    assert "BackoffLimitExceeded" in stalled["message"]
    assert "exit code 3" in stalled["message"]
    assert world.status()["migration"]["result"] == "Failed"
    assert [e[1] for e in world.api.events if e[0] == "Warning"] == ["MigrationFailed"]
    assert outcome.writes == 1  # the status only
    # its TTL deletes the Job (and pod): the gate stays shut, the Job is not run again
    for key in [k for k in world.api.objects if k[0] in ("Job", "Pod")]:
        del world.api.objects[key]
    world.sync()
    assert world.reconcile().writes == 0
    assert not jobs(world)
    assert reasons(world)["Stalled"] == ("True", "MigrationFailed")
    # a newer digest replaces the failed gate
    change_spec(world, image=IMAGE_C)
    world.reconcile()
    assert the_job(world)["metadata"]["name"] != name
    assert reasons(world)["Reconciling"] == ("True", "Migrating")
    assert image(world) == IMAGE


def test_a_newer_digest_supersedes_a_running_migration_one_at_a_time() -> None:
    world = passed(GateWorld(migrate=MIGRATE))
    change_spec(world, image=IMAGE_B)
    world.reconcile()
    world.sync()
    old = the_job(world)
    world.api.put(pod_of(old, phase="Running"))
    world.sync()
    change_spec(world, image=IMAGE_C)
    outcome = world.reconcile()
    assert ("delete", "Job") in world.api.calls
    assert not jobs(world)  # not created while the old migration's pod still runs
    assert "Waiting for the superseded migration" in world.condition("Reconciling")["message"]
    assert outcome.failure is None
    world.sync()
    outcome = world.reconcile()  # the old Job is gone, its pod not yet: still waiting
    assert outcome.applied == [] and not jobs(world)
    assert "Waiting for the superseded migration" in world.condition("Reconciling")["message"]
    pod = next(k for k in world.api.objects if k[0] == "Pod")
    del world.api.objects[pod]  # the garbage collector removes it
    world.sync()
    world.reconcile()
    job = the_job(world)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_C
    assert image(world) == IMAGE
    world.sync()
    end(world, job, ok=True)
    world.reconcile()
    assert image(world) == IMAGE_C


def test_a_rollback_runs_the_gate_again() -> None:
    world = passed(GateWorld(migrate=MIGRATE))
    first = world.status()["migration"]["job"]
    change_spec(world, image=IMAGE_B)
    world.reconcile()
    world.sync()
    end(world, the_job(world), ok=True)
    world.reconcile()
    assert image(world) == IMAGE_B
    for key in [k for k in world.api.objects if k[0] == "Job"]:
        del world.api.objects[key]  # both TTLs ran out
    world.sync()
    change_spec(world, image=IMAGE)
    world.reconcile()
    assert the_job(world)["metadata"]["name"] == first  # the same migration, run again
    assert image(world) == IMAGE_B


def test_without_a_gate_nothing_changes_and_a_removed_gate_stops_its_job() -> None:
    world = GateWorld()
    world.reconcile()
    assert not jobs(world)
    assert "migration" not in world.status()
    gated = passed(GateWorld(migrate=MIGRATE))
    change_spec(gated, image=IMAGE_B)
    gated.reconcile()
    gated.sync()
    assert jobs(gated)
    change_spec(gated, migrate=None)
    gated.reconcile()
    assert not jobs(gated)
    assert image(gated) == IMAGE_B  # no gate: the spec's image at once
    assert gated.condition("Reconciling")["reason"] != "Migrating"


def test_a_timed_out_migration_says_deadline_exceeded_and_a_waiting_pod_says_why() -> None:
    world = passed(GateWorld(migrate=MIGRATE))
    change_spec(world, image=IMAGE_B)
    world.reconcile()
    world.sync()
    job = the_job(world)
    pod = pod_of(job, phase="Pending")
    pod["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    }
    world.api.put(pod)
    world.sync()
    world.reconcile()
    message = world.condition("Reconciling")["message"]
    assert "Its pod is waiting: ImagePullBackOff: Back-off pulling image" in message
    job["status"] = {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
                "lastTransitionTime": NOW,
            }
        ]
    }
    world.sync()
    world.reconcile()
    stalled = world.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "MigrationFailed")
    assert "DeadlineExceeded: Job was active longer than specified deadline" in stalled["message"]
    assert image(world) == IMAGE
    assert world.status()["migration"] == {
        "image": IMAGE_B,
        "result": "Failed",
        "finishedAt": NOW,
        "job": job["metadata"]["name"],
        "message": f"Migration Job {job['metadata']['name']} failed (DeadlineExceeded: Job was "
        "active longer than specified deadline).",
    }
