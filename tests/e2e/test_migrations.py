"""The migrations gate (spec.migrate) with the operator running, on the real API server: the
Job controller runs the migration Jobs, kwok's stages end their pods (the dev cluster's
pod-complete and pod-fail stages: a migration argument ``PYTHONAPP_DEV_EXIT_CODE=<code>``
fails the pod with that exit code, ``PYTHONAPP_DEV_HOLD`` keeps it running; both reach the
Job's pod only, never the app's).

What must hold: a new app runs its migration before it has a Deployment; a new digest rolls
out only after its Job is Complete (the new ReplicaSet is created after the Job finished);
a failed migration stalls the app with MigrationFailed, names the Job, its reason and the exit
code, and the old ReplicaSet keeps serving; a newer digest while a migration runs deletes the
running Job and migrates the newer one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.render import MIGRATED_ANNOTATION

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]

MIGRATE = {"command": ["python", "manage.py", "migrate"], "backoffLimit": 0}


def image(digest_pair: str) -> str:
    return f"ghcr.io/acme/shop:1.0.0@sha256:{digest_pair * 32}"


def items(k: Kubectl, kind: str, namespace: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        k.run("get", kind, "-n", namespace, "-o", "json").stdout
    )["items"]
    return listed


def jobs(k: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in items(k, "jobs", namespace)}


def job_for(k: Kubectl, namespace: str, wanted: str) -> dict[str, Any] | None:
    for job in jobs(k, namespace).values():
        containers = job["spec"]["template"]["spec"]["containers"]
        if containers[0]["image"] == wanted and not job["metadata"].get("deletionTimestamp"):
            return job
    return None


def finished(job: dict[str, Any]) -> datetime:
    stamp = job["status"].get("completionTime")
    assert stamp, job["status"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def created(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def deployment_image(k: Kubectl, namespace: str) -> str | None:
    dep = k.get("deployment", "shop", namespace)
    if dep is None:
        return None
    found: str = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    return found


def replicasets(k: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return items(k, "replicasets", namespace)


def reason_is(k: Kubectl, namespace: str, kind: str, reason: str) -> dict[str, Any] | None:
    app = k.get("pythonapp", "shop", namespace)
    # a just-created app has no status until the operator's first write
    if app and app.get("status", {}).get("observedGeneration") == app["metadata"]["generation"]:
        cond = condition(app, kind)
        if cond.get("reason") == reason:
            return app
    return None


def test_a_new_app_migrates_first_and_a_newer_digest_supersedes_a_running_migration(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    held = {**MIGRATE, "args": ["PYTHONAPP_DEV_HOLD"]}
    k.apply(app_doc(namespace, image=image("a1"), replicas=1, migrate=held))
    app = wait(lambda: reason_is(k, namespace, "Reconciling", "Migrating"), 60, "Migrating")
    assert condition(app, "Reconciling")["status"] == "True"
    assert condition(app, "Ready")["status"] == "False"
    first = wait(lambda: job_for(k, namespace, image("a1")), 30, "the first migration Job")
    assert first["metadata"]["name"] in condition(app, "Reconciling")["message"]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "PythonApp"
    # migrations before the first traffic: no Deployment while it runs
    assert k.get("deployment", "shop", namespace) is None

    # a newer digest (and a migration that ends) while the first still runs
    k.apply(app_doc(namespace, image=image("b2"), replicas=1, migrate=MIGRATE))
    second = wait(lambda: job_for(k, namespace, image("b2")), 60, "the second migration Job")
    app = wait(lambda: ready(k, namespace), 90, "Ready on the second digest")
    assert deployment_image(k, namespace) == image("b2")
    names = set(jobs(k, namespace))
    assert first["metadata"]["name"] not in names, "the superseded migration was not deleted"
    second = jobs(k, namespace)[second["metadata"]["name"]]
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None
    assert created(dep) >= finished(second).replace(microsecond=0)
    assert dep["metadata"]["annotations"][MIGRATED_ANNOTATION] == second["metadata"]["name"]
    migration = app["status"]["migration"]
    assert (migration["image"], migration["result"]) == (image("b2"), "Succeeded")
    assert migration["job"] == second["metadata"]["name"]


def test_a_new_digest_rolls_out_only_after_its_migration_succeeded(
    operator: OperatorProcess,
    k: Kubectl,
    namespace: str,
    *,
    wait: Wait,
    audit_writes: Callable[..., int],
) -> None:
    k.apply(app_doc(namespace, image=image("a1"), replicas=2, migrate=MIGRATE))
    wait(lambda: ready(k, namespace), 90, "Ready on the first digest")
    k.apply(app_doc(namespace, image=image("b2"), replicas=2, migrate=MIGRATE))

    def rolled() -> dict[str, Any] | None:
        app = ready(k, namespace)
        return app if app and app["status"].get("image") == image("b2") else None

    app = wait(rolled, 90, "Ready on the new digest")
    job = job_for(k, namespace, image("b2"))
    assert job is not None
    new_rs = [
        rs
        for rs in replicasets(k, namespace)
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image("b2")
    ]
    assert len(new_rs) == 1
    # the new pods' ReplicaSet was made after the migration ended, never before
    assert created(new_rs[0]) >= finished(job).replace(microsecond=0)
    assert app["status"]["migration"]["image"] == image("b2")
    # the Job pod never counted as an app pod: the app saw 2 pods, on the new digest
    assert app["status"]["readyReplicas"] == 2
    # a restarted operator finds the gate passed (the Deployment's record): no Job, no write
    time.sleep(3)  # let the last status patches settle (as test_autoscaling does)
    mark = time.time()
    assert operator.restart() == 0, "operator did not exit cleanly on SIGTERM"
    operator.wait_caught_up()
    assert audit_writes(namespace, since=mark) == 0, "the restarted operator wrote"
    assert len(jobs(k, namespace)) == 2  # the two migrations, kept for their TTL; no third


def test_a_failed_migration_keeps_the_old_replicaset_serving(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace, image=image("a1"), replicas=2, migrate=MIGRATE))
    wait(lambda: ready(k, namespace), 90, "Ready on the first digest")
    before = {rs["metadata"]["uid"] for rs in replicasets(k, namespace)}
    failing = {**MIGRATE, "args": ["PYTHONAPP_DEV_EXIT_CODE=3"]}
    k.apply(app_doc(namespace, image=image("b2"), replicas=2, migrate=failing))
    app = wait(lambda: reason_is(k, namespace, "Stalled", "MigrationFailed"), 90, "MigrationFailed")
    stalled = condition(app, "Stalled")
    assert stalled["status"] == "True"
    assert condition(app, "Ready")["status"] == "False"
    job = job_for(k, namespace, image("b2"))
    assert job is not None
    message = stalled["message"]
    assert job["metadata"]["name"] in message
    assert "BackoffLimitExceeded" in message
    assert "exit code 3" in message
    migration = app["status"]["migration"]
    assert (migration["image"], migration["result"]) == (image("b2"), "Failed")
    # the old version keeps serving: the same ReplicaSet, its pods ready, the old image
    assert deployment_image(k, namespace) == image("a1")
    assert {rs["metadata"]["uid"] for rs in replicasets(k, namespace)} == before
    dep = k.get("deployment", "shop", namespace)
    assert dep is not None and dep["status"].get("readyReplicas") == 2
    assert app["status"]["image"] == image("a1")
    # a newer digest replaces the failed gate
    k.apply(app_doc(namespace, image=image("c3"), replicas=2, migrate=MIGRATE))

    def rolled() -> dict[str, Any] | None:
        app = ready(k, namespace)
        return app if app and app["status"].get("image") == image("c3") else None

    wait(rolled, 90, "Ready on the digest after the failed one")


def test_a_migration_that_outlasts_its_timeout_fails_with_deadline_exceeded(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace, image=image("a1"), replicas=1, migrate=MIGRATE))
    wait(lambda: ready(k, namespace), 90, "Ready on the first digest")
    hanging = {**MIGRATE, "args": ["PYTHONAPP_DEV_HOLD"], "timeoutSeconds": 3}
    k.apply(app_doc(namespace, image=image("b2"), replicas=1, migrate=hanging))
    app = wait(lambda: reason_is(k, namespace, "Stalled", "MigrationFailed"), 60, "MigrationFailed")
    assert "DeadlineExceeded" in condition(app, "Stalled")["message"]
    assert deployment_image(k, namespace) == image("a1")
    assert app["status"]["image"] == image("a1")
