"""A scheduled app's render: a CronJob whose pod template is the Deployment's (the same
container, hardening, Secrets, resources), with no Service, probes, PDB, HPA or Deployment."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import make_doc
from tests.unit.test_models import cron

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.render import pod_template, render

SECRETS = [{"name": "db", "env": [{"name": "DB_URL", "key": "url"}]}]


def rendered(**spec: Any) -> dict[str, dict[str, Any]]:
    app, problems = validate_document(make_doc(**spec))
    assert app is not None, problems
    return {m["kind"]: m for m in render(app, {"db": "h1"}, {"db": "7"})}


def test_a_cron_app_renders_a_cronjob_its_identity_and_isolation_only() -> None:
    out = rendered(**cron("0 3 * * *"), secrets=SECRETS)
    assert list(out) == ["CronJob", "ServiceAccount", "NetworkPolicy"]
    assert out["NetworkPolicy"]["spec"]["ingress"] == []  # as for a worker: nothing comes in


def test_the_run_pod_is_the_workers_pod_without_spreading_and_with_restart_never() -> None:
    job = pod_template(rendered(**cron(), secrets=SECRETS)["CronJob"])
    worker = pod_template(rendered(profile="worker", secrets=SECRETS)["Deployment"])
    spec, other = dict(job["spec"]), dict(worker["spec"])
    assert spec.pop("restartPolicy") == "Never"
    assert other.pop("restartPolicy") == "Always"
    other.pop("affinity")
    other.pop("topologySpreadConstraints")
    assert spec == other  # one pod template, rendered once (render._pod_spec, _container)
    container = spec["containers"][0]
    assert not {"ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle"} & set(
        container
    )
    assert job["metadata"]["annotations"] == worker["metadata"]["annotations"]  # Secret hash


def test_the_cron_settings_and_their_defaults_reach_the_cronjob() -> None:
    spec = rendered(**cron())["CronJob"]["spec"]
    assert {k: v for k, v in spec.items() if k != "jobTemplate"} == {
        "schedule": "*/15 * * * *",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
        "suspend": False,
    }
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 1
    assert "activeDeadlineSeconds" not in spec["jobTemplate"]["spec"]
    full = rendered(
        **cron(
            "@daily",
            timeZone="Europe/Berlin",
            concurrencyPolicy="Replace",
            suspend=True,
            activeDeadlineSeconds=60,
            backoffLimit=0,
        )
    )["CronJob"]["spec"]
    assert (full["timeZone"], full["concurrencyPolicy"], full["suspend"]) == (
        "Europe/Berlin",
        "Replace",
        True,
    )
    assert full["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 60
    assert full["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_runs_carry_the_apps_labels_so_the_operator_finds_them() -> None:
    out = rendered(**cron())["CronJob"]
    labels = out["spec"]["jobTemplate"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "pythonapp-operator"
    assert labels["app.kubernetes.io/instance"] == "shop"
    assert labels["app.kubernetes.io/component"] == "cron"
    assert pod_template(out)["metadata"]["labels"] == labels
