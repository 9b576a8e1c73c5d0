"""Scheduled apps (profile: cron) with the operator running, on the real API server: the
CronJob controller and the Job controller run the runs, kwok's stages end their pods (the dev
cluster's pod-complete and pod-fail stages: an argument ``PYTHONAPP_DEV_EXIT_CODE=<code>``
fails a Job's pod with that exit code). A run is started as ``kubectl create job
--from=cronjob/NAME`` starts one (a Job from the job template, controlled by the CronJob), so
no test waits for a minute to turn.

What must hold: the app's CronJob is created and controlled by the app, with the pod
hardening and without a Deployment, Service or PodDisruptionBudget; a run's result shows on
the status (Succeeded; Failed with its exit code, the app Stalled with RunFailed); a switch
web -> cron -> web leaves no child of the other profile and no status field of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_hardening_on_cluster import drift_corrected, patch
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.devcluster import audit

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]

#: once a year: the tests start their runs themselves
SCHEDULE = "0 4 1 1 *"


def cron_doc(namespace: str, name: str = "shop", **spec: Any) -> dict[str, Any]:
    doc = app_doc(namespace, name, profile="cron", cron={"schedule": SCHEDULE, "backoffLimit": 0})
    doc["spec"].pop("replicas")
    doc["spec"].update(spec)
    return doc


def start_run(k: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """A run now, as a person starts one: a Job from the CronJob's template."""
    k.run("create", "job", "--from=cronjob/shop", name, "-n", namespace)
    job = k.get("job", name, namespace)
    assert job is not None
    return job


def last_run(k: Kubectl, namespace: str, job: str, result: str) -> dict[str, Any] | None:
    app = k.get("pythonapp", "shop", namespace)
    said = (((app or {}).get("status") or {}).get("cron") or {}).get("lastRun") or {}
    if (said.get("job"), said.get("result")) == (job, result):
        return app
    return None


def test_a_scheduled_app_gets_a_hardened_cronjob_and_a_run_shows_on_the_status(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(cron_doc(namespace, secrets=[{"name": "db"}]))
    k.run("create", "secret", "generic", "db", "--from-literal=url=x", "-n", namespace)
    app = wait(lambda: ready(k, namespace), 60, "a scheduled app Ready")
    assert condition(app, "Ready")["reason"] == "Scheduled"
    assert app["status"]["cron"].get("active") == 0
    cronjob = k.get("cronjob", "shop", namespace)
    assert cronjob is not None
    owner = cronjob["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "PythonApp",
        app["metadata"]["uid"],
        True,
    )
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "secret-db", "mountPath": "/run/secrets/db", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert not {"livenessProbe", "readinessProbe", "startupProbe", "ports"} & set(container)
    for kind in ("deployment", "service", "poddisruptionbudget", "horizontalpodautoscaler"):
        assert k.get(kind, "shop", namespace) is None, kind
    assert k.get("networkpolicy", "shop", namespace) is not None

    job = start_run(k, namespace, "shop-now")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"  # not a migration
    app = wait(lambda: last_run(k, namespace, "shop-now", "Succeeded"), 90, "the run Succeeded")
    run = app["status"]["cron"]["lastRun"]
    assert run["startedAt"] and run["finishedAt"]
    assert "the last run (shop-now) succeeded" in condition(app, "Ready")["message"]
    assert condition(app, "Ready")["status"] == "True"


def test_a_failed_run_shows_its_exit_code_and_stalls_the_app(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(cron_doc(namespace, args=["PYTHONAPP_DEV_EXIT_CODE=3"]))
    wait(lambda: ready(k, namespace), 60, "a scheduled app Ready")
    start_run(k, namespace, "shop-fails")
    app = wait(lambda: last_run(k, namespace, "shop-fails", "Failed"), 120, "the run Failed")
    run = app["status"]["cron"]["lastRun"]
    assert "exit code 3" in run["message"], run
    assert "shop-fails" in run["message"]
    assert (condition(app, "Ready")["status"], condition(app, "Ready")["reason"]) == (
        "False",
        "RunFailed",
    )
    assert condition(app, "Stalled")["status"] == "True"
    assert condition(app, "Reconciling")["status"] == "False"
    assert "exit code 3" in condition(app, "Stalled")["message"]


def children(k: Kubectl, namespace: str) -> set[str]:
    kinds = ("deployment", "service", "poddisruptionbudget", "cronjob", "serviceaccount")
    return {kind for kind in kinds if k.get(kind, "shop", namespace) is not None}


def test_a_profile_switch_web_cron_web_leaves_no_stale_children(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    k.apply(app_doc(namespace, replicas=2))
    wait(lambda: ready(k, namespace), 90, "the web app Ready")
    assert children(k, namespace) == {
        "deployment",
        "service",
        "poddisruptionbudget",
        "serviceaccount",
    }

    k.apply(cron_doc(namespace))  # server-side apply: replicas is no longer the user's

    def scheduled() -> dict[str, Any] | None:
        app = ready(k, namespace)
        if app and condition(app, "Ready")["reason"] == "Scheduled":
            return app if children(k, namespace) == {"cronjob", "serviceaccount"} else None
        return None

    app = wait(scheduled, 90, "the app scheduled, its web children gone")
    assert not {"replicas", "readyReplicas", "ready", "selector"} & set(app["status"])
    start_run(k, namespace, "shop-run")
    wait(lambda: last_run(k, namespace, "shop-run", "Succeeded"), 90, "a run")

    k.apply(app_doc(namespace, replicas=2))

    def serving() -> dict[str, Any] | None:
        app = ready(k, namespace)
        if app and condition(app, "Ready")["reason"] == "Available":
            return app if "cronjob" not in children(k, namespace) else None
        return None

    app = wait(serving, 90, "the app serving again, its CronJob gone")
    runs = ["-n", namespace, "-l", "app.kubernetes.io/component=cron", "-o", "name"]

    def runs_gone() -> bool:  # the CronJob's runs go with it (garbage collection)
        return not k.run("get", "jobs,pods", *runs).stdout.strip()

    wait(runs_gone, 60, "the scheduled runs' Jobs and pods gone")
    assert children(k, namespace) == {
        "deployment",
        "service",
        "poddisruptionbudget",
        "serviceaccount",
    }
    assert "cron" not in app["status"]


def test_a_time_zone_the_api_server_does_not_know_shows_its_refusal(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    """The CRD checks a time zone's form only (the zone database is the API server's): an
    unknown zone is refused when the operator applies the CronJob, in the API server's words."""
    k.apply(cron_doc(namespace, cron={"schedule": SCHEDULE, "timeZone": "Mars/Olympus"}))

    def refused() -> dict[str, Any] | None:
        app = k.get("pythonapp", "shop", namespace)
        stalled = condition(app, "Stalled")
        return app if "unknown time zone Mars/Olympus" in stalled.get("message", "") else None

    app = wait(refused, 60, "the refusal of the time zone on the status")
    assert condition(app, "Stalled")["status"] == "True"
    assert condition(app, "Ready")["status"] == "False"
    assert k.get("cronjob", "shop", namespace) is None


def cronjob_writes(audit_log: Path, namespace: str) -> int:
    return sum(1 for c in audit.writes(audit_log, namespace, since=0) if c.resource == "cronjobs")


def test_a_converged_cronjob_is_not_rewritten_by_runs_and_drift_on_it_is_put_back(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait, audit_log: Path
) -> None:
    k.apply(cron_doc(namespace))
    wait(lambda: ready(k, namespace), 60, "a scheduled app Ready")
    operator.wait_caught_up()
    written = cronjob_writes(audit_log, namespace)
    assert written == 1  # created, once
    # a run moves the CronJob's status (active, lastScheduleTime...): compared, not rewritten
    start_run(k, namespace, "shop-a")
    wait(lambda: last_run(k, namespace, "shop-a", "Succeeded"), 90, "the run Succeeded")
    operator.wait_caught_up()
    assert cronjob_writes(audit_log, namespace) == written

    # another writer weakens the job template: the operator's forced apply puts it back
    patch(k, "cronjob/shop", namespace, "merge", {
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostNetwork": True}}}}}
    })  # fmt: skip

    def put_back() -> bool:
        cronjob = k.get("cronjob", "shop", namespace) or {}
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return not pod.get("hostNetwork") and drift_corrected(k, namespace, "CronJob", "shop")

    wait(put_back, 60, "hostNetwork put back on the CronJob")

    # deleted: recreated
    uid = (k.get("cronjob", "shop", namespace) or {})["metadata"]["uid"]
    k.run("delete", "cronjob", "shop", "-n", namespace)

    def recreated() -> bool:
        cronjob = k.get("cronjob", "shop", namespace)
        return cronjob is not None and cronjob["metadata"]["uid"] != uid

    wait(recreated, 60, "the CronJob recreated")


def test_a_run_that_cannot_be_scheduled_says_so_and_clears_when_it_ends(
    operator: OperatorProcess, k: Kubectl, namespace: str, wait: Wait
) -> None:
    """More CPU than any node has: the run's pod stays Pending, and the app says why in the
    scheduler's words (not stalled: room may come) instead of waiting for a deadline."""
    huge = {"requests": {"cpu": "100000"}, "limits": {"memory": "256Mi"}}
    k.apply(cron_doc(namespace, resources=huge))
    wait(lambda: ready(k, namespace), 60, "a scheduled app Ready")
    start_run(k, namespace, "shop-stuck")

    def unschedulable() -> dict[str, Any] | None:
        app = k.get("pythonapp", "shop", namespace)
        return app if condition(app, "Ready").get("reason") == "Unschedulable" else None

    app = wait(unschedulable, 60, "Ready=False Unschedulable")
    assert condition(app, "Reconciling")["status"] == "True"
    assert condition(app, "Stalled")["status"] == "False"
    assert "Run shop-stuck cannot start: Unschedulable" in condition(app, "Ready")["message"]
    k.run("delete", "job", "shop-stuck", "-n", namespace, "--wait=false")

    def scheduled() -> dict[str, Any] | None:
        app = ready(k, namespace)
        return app if app and condition(app, "Ready")["reason"] == "Scheduled" else None

    app = wait(scheduled, 60, "Ready again once the stuck run is gone")
    assert app["status"]["cron"]["lastRun"]["result"] == "Stopped"
    assert "(shop-stuck) was stopped before it ended" in condition(app, "Ready")["message"]
