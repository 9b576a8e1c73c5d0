"""Scheduled apps (profile: cron) on the in-memory fake: the CronJob in the Deployment's place,
applied after the app's isolation; a switch of profile removes the children that no longer
apply; the last run's result (from the Jobs the CronJob controls, told apart from migration
Jobs) and the conditions on the status; hardening put back on the job template; Secret
rotation through the job template. The CronJob and Job controllers' parts are played by the
test; the real ones are in tests/e2e/test_cron.py."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tests.unit.factories import make_doc
from tests.unit.test_models import cron
from tests.unit.test_reconcile import NOW
from tests.unit.test_reconcile_migration import GateWorld, pod_of, reasons
from tests.unit.test_reconcile_scaling import change_spec
from tests.unit.test_reconcile_secrets import ANNOTATION, SecretWorld, secret

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller import migration
from pythonapp_operator.controller.kinds import OBSERVED_KINDS, trim
from pythonapp_operator.controller.reconcile import Snapshot

SCHEDULE = "*/5 * * * *"
LATER = "2026-12-07T10:05:00Z"


def kinds(world: GateWorld) -> set[str]:
    return {kind for (kind, _, _) in world.api.objects if kind not in ("PythonApp", "Secret")}


def cronjob(world: GateWorld) -> dict[str, Any]:
    found: dict[str, Any] = world.api.objects["CronJob", "team-a", "shop"]
    return found


def converged(**spec: Any) -> GateWorld:
    world = GateWorld(**{**cron(SCHEDULE), **spec})
    assert world.reconcile().failure is None
    world.sync()
    world.reconcile()
    world.sync()
    return world


def run(world: GateWorld, name: str, created: str, *, ok: bool | None, code: int = 3) -> None:
    """Play the CronJob controller (a Job from the job template, owned by the CronJob) and the
    Job controller (it ends, or not yet: ``ok`` None)."""
    owner = cronjob(world)
    template = owner["spec"]["jobTemplate"]
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": created,
            "labels": dict(template["metadata"]["labels"]),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "shop",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": copy.deepcopy(template["spec"]),
        "status": {},
    }
    if ok is True:
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        job["status"]["completionTime"] = created
    elif ok is False:
        job["status"] = {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": created,
                }
            ]
        }
        world.api.put(pod_of(job, phase="Failed", code=code))
    world.api.put(job)
    owner["status"] = {"lastScheduleTime": created, "active": [] if ok is not None else [{}]}
    if ok:
        owner["status"]["lastSuccessfulTime"] = created
    world.sync()


def test_a_scheduled_app_gets_a_cronjob_after_its_isolation_and_nothing_of_a_deployment() -> None:
    world = GateWorld(**cron(SCHEDULE))
    outcome = world.reconcile()
    assert outcome.failure is None
    applies = [kind for verb, kind in world.api.calls if verb == "apply"]
    assert sorted(applies) == ["CronJob", "NetworkPolicy", "ServiceAccount"]
    assert applies[-1] == "CronJob"  # never a run without its NetworkPolicy
    assert kinds(world) == {"CronJob", "NetworkPolicy", "ServiceAccount"}
    spec = cronjob(world)["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == (SCHEDULE, "Forbid")
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    # the API server took the CronJob: runs start on schedule from now on
    assert world.condition("Ready")["reason"] == "Scheduled"
    world.sync()
    world.reconcile()
    ready = world.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Scheduled")
    assert ready["message"] == f"Runs at '{SCHEDULE}'; no run yet."
    status = world.status()
    assert status["cron"] == {"active": 0}
    assert status["shortImage"] and "replicas" not in status and "ready" not in status
    world.reconcile()
    assert world.api.writes() == []  # converged: no write


def test_the_last_run_and_its_result_show_and_a_failure_stalls_until_a_run_succeeds() -> None:
    world = converged()
    run(world, "shop-29001", NOW, ok=None)
    world.reconcile()
    status = world.status()
    assert status["cron"]["lastRun"] == {"job": "shop-29001", "result": "Running", "startedAt": NOW}
    assert status["cron"]["active"] == 1
    assert "run shop-29001 is in progress" in world.condition("Ready")["message"]
    world.api.objects["Job", "team-a", "shop-29001"]["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "completionTime": NOW,
    }
    world.sync()
    world.reconcile()
    assert world.status()["cron"]["lastRun"]["result"] == "Succeeded"
    assert world.condition("Ready")["status"] == "True"
    run(world, "shop-29006", LATER, ok=False, code=3)
    world.reconcile()
    last = world.status()["cron"]["lastRun"]
    assert last["result"] == "Failed" and last["job"] == "shop-29006"
    assert "BackoffLimitExceeded" in last["message"] and "exit code 3" in last["message"]
    assert reasons(world) == {
        "Ready": ("False", "RunFailed"),
        "Reconciling": ("False", "RunFailed"),
        "Stalled": ("True", "RunFailed"),
    }
    assert [e[:2] for e in world.api.events].count(("Warning", "RunFailed")) == 1
    # the failed Job goes (history limit): its result stays
    del world.api.objects["Job", "team-a", "shop-29006"]
    world.sync()
    world.reconcile()
    assert world.status()["cron"]["lastRun"]["job"] == "shop-29006"
    assert world.condition("Stalled")["status"] == "True"
    run(world, "shop-29011", "2026-12-07T10:10:00Z", ok=True)
    world.reconcile()
    assert reasons(world)["Ready"] == ("True", "Scheduled")
    assert world.status()["cron"]["lastSuccessfulTime"] == "2026-12-07T10:10:00Z"


def test_scheduled_runs_are_not_the_migrations_gates() -> None:
    world = converged()
    run(world, "shop-29001", NOW, ok=None)
    snap = world.snapshot()
    assert migration.token(snap.app, None, snap.observed["Job"], snap.observed["Pod"]) is None
    # and a migration gate on the same app (after a switch to web) does not wait for them
    job = world.api.objects["Job", "team-a", "shop-29001"]
    world.api.put(pod_of(job, phase="Running"))
    world.sync()
    snap = world.snapshot()
    token = migration.token(
        {"spec": {"migrate": {"command": ["m"]}}},
        None,
        snap.observed["Job"],
        snap.observed["Pod"],
    )
    assert token is not None and "shop-29001" not in token
    # nor does the gate wait for a scheduled run's pod before it starts a migration
    app, _ = validate_document(make_doc(migrate={"command": ["m"]}))
    assert app is not None
    gate = migration.decide(
        app,
        app_uid=snap.app["metadata"]["uid"],
        live=None,
        jobs=snap.observed["Job"],
        pods=snap.observed["Pod"],
        previous=None,
    )
    assert gate.create is not None and gate.stale == []


def test_a_profile_switch_leaves_no_stale_children_and_no_stale_status() -> None:
    world = GateWorld()
    world.reconcile()
    world.sync()
    world.reconcile()
    world.sync()
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= kinds(world)
    change_spec(world, profile="cron", cron={"schedule": SCHEDULE}, replicas=None)
    outcome = world.reconcile()
    assert outcome.failure is None, outcome.failure
    assert kinds(world) == {"CronJob", "NetworkPolicy", "ServiceAccount"}
    world.sync()
    world.reconcile()
    status = world.status()
    assert "cron" in status and not {"replicas", "readyReplicas", "ready", "selector"} & set(status)
    assert world.condition("Ready")["reason"] == "Scheduled"
    change_spec(world, profile=None, cron=None)
    assert world.reconcile().failure is None
    assert "CronJob" not in kinds(world)
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= kinds(world)
    world.sync()
    world.reconcile()
    assert "cron" not in world.status()


def test_a_cronjob_someone_else_holds_is_not_owned_and_left_alone() -> None:
    world = GateWorld(**cron(SCHEDULE))
    theirs = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "shop", "namespace": "team-a"},
        "spec": {"schedule": "0 0 * * *"},
    }
    world.api.put(theirs)
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "NotOwned"
    assert cronjob(world)["spec"] == {"schedule": "0 0 * * *"}


def test_weakened_hardening_on_the_job_template_is_put_back() -> None:
    world = converged()
    pod = cronjob(world)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    world.sync()
    world.reconcile()
    assert world.api.writes() == [("apply", "CronJob")]
    pod = cronjob(world)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is False
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


class CronSecretWorld(SecretWorld):
    """Secrets and the app's Jobs and pods, for a scheduled app."""

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        observed = {k.kind: self.store.members_of(k, "team-a", "shop") for k in OBSERVED_KINDS}
        return Snapshot(snap.app, snap.children, snap.versions, observed, snap.secrets)

    def template_annotations(self) -> dict[str, str]:
        job = self.api.objects["CronJob", "team-a", "shop"]["spec"]["jobTemplate"]
        found: dict[str, str] = job["spec"]["template"]["metadata"].get("annotations") or {}
        return found


def test_a_changed_secret_changes_the_job_template_so_the_next_run_uses_it() -> None:
    world = CronSecretWorld(**cron(SCHEDULE), secrets=[{"name": "db"}])
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert "CronJob" not in {kind for (kind, _, _) in world.api.objects}  # no run that fails
    world.api.put(secret(password="one"))
    world.sync()
    assert world.reconcile().failure is None
    world.sync()
    first = world.template_annotations()[ANNOTATION]
    world.reconcile()
    assert world.api.writes() == []
    world.api.objects["Secret", "team-a", "db"]["data"] = secret(password="two")["data"]
    world.sync()
    world.reconcile()
    assert world.api.writes() == [("apply", "CronJob")]
    assert world.template_annotations()[ANNOTATION] != first


def test_the_cache_keeps_a_jobs_creation_time_and_component() -> None:
    job_kind = next(k for k in OBSERVED_KINDS if k.kind == "Job")
    kept = trim(
        job_kind,
        {
            "metadata": {
                "name": "shop-1",
                "creationTimestamp": NOW,
                "labels": {
                    "app.kubernetes.io/instance": "shop",
                    "app.kubernetes.io/component": "cron",
                },
                "managedFields": [{}],
            },
            "status": {"active": 1, "startTime": NOW},
        },
    )
    assert kept["metadata"]["creationTimestamp"] == NOW
    assert kept["metadata"]["labels"]["app.kubernetes.io/component"] == "cron"
    assert "managedFields" not in kept["metadata"] and "startTime" not in kept["status"]


def pending(job: dict[str, Any], waiting: dict[str, str] | None) -> dict[str, Any]:
    """The run's pod, Pending: its container waiting (``waiting``), or not scheduled."""
    pod = pod_of(job, phase="Pending")
    if waiting is None:
        pod["status"] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu.",
                }
            ],
        }
    else:
        pod["status"]["containerStatuses"][0]["state"] = {"waiting": waiting}
    return pod


def test_a_run_whose_pod_cannot_start_says_why_at_once() -> None:
    world = converged()
    run(world, "shop-29001", NOW, ok=None)
    job = world.api.objects["Job", "team-a", "shop-29001"]
    world.api.put(pending(job, {"reason": "ImagePullBackOff", "message": "Back-off pulling"}))
    world.sync()
    world.reconcile()
    assert reasons(world) == {
        "Ready": ("False", "ImagePullBackOff"),
        "Reconciling": ("False", "ImagePullBackOff"),
        "Stalled": ("True", "ImagePullBackOff"),
    }
    message = world.condition("Stalled")["message"]
    assert message == "Run shop-29001 cannot start: ImagePullBackOff: Back-off pulling"
    assert ("Warning", "ImagePullBackOff") in [e[:2] for e in world.api.events]
    # room on no node: it may come, so Reconciling
    world.api.put(pending(job, None))
    world.sync()
    world.reconcile()
    assert reasons(world)["Reconciling"] == ("True", "Unschedulable")
    assert "3 Insufficient cpu" in world.condition("Ready")["message"]
    # the pod starts and the run ends: nothing is said of it but its result
    world.api.objects["Pod", "team-a", "shop-29001-x1"]["status"] = {"phase": "Succeeded"}
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    world.sync()
    world.reconcile()
    assert reasons(world)["Ready"] == ("True", "Scheduled")


def test_a_run_deleted_before_it_ended_is_stopped_not_running_for_ever() -> None:
    world = converged()
    run(world, "shop-29001", NOW, ok=None)
    job = world.api.objects["Job", "team-a", "shop-29001"]
    world.api.put(pending(job, None))
    world.sync()
    world.reconcile()
    assert world.status()["cron"]["lastRun"]["result"] == "Running"
    assert reasons(world)["Ready"] == ("False", "Unschedulable")
    del world.api.objects["Job", "team-a", "shop-29001"]
    world.sync()
    world.reconcile()
    last = world.status()["cron"]["lastRun"]
    assert (last["job"], last["result"]) == ("shop-29001", "Stopped")
    assert reasons(world)["Ready"] == ("True", "Scheduled")
    assert "(shop-29001) was stopped before it ended" in world.condition("Ready")["message"]
