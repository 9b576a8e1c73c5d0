"""The migration Job (spec.migrate): the Deployment's hardening exactly, a name per image and
command, labels the app's selectors never match, and the gate's say over the Deployment."""

from __future__ import annotations

from typing import Any

from tests.unit.factories import IMAGE, make_doc
from tests.unit.test_render import app_of

from pythonapp_operator.render import (
    MIGRATED_ANNOTATION,
    migration_job,
    migration_job_name,
    render,
    selector_labels,
)

MIGRATE = {"command": ["python", "manage.py", "migrate"], "args": ["--noinput"]}
SPEC: dict[str, Any] = {
    "migrate": MIGRATE,
    "env": [{"name": "MODE", "value": "prod"}],
    "secrets": [{"name": "db", "env": [{"name": "DATABASE_URL", "key": "url"}]}],
}


def kinds(objs: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objs]


def test_the_job_shares_the_pods_hardening_env_and_secrets() -> None:
    app = app_of(make_doc(**SPEC))
    objs = render(app)
    assert kinds(objs)[-1] == "Job"
    pod = objs[0]["spec"]["template"]["spec"]
    job = objs[-1]
    jpod = job["spec"]["template"]["spec"]
    for key in (
        "serviceAccountName",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "securityContext",
        "volumes",
    ):
        assert jpod[key] == pod[key], key
    app_c, mig = pod["containers"][0], jpod["containers"][0]
    for key in ("image", "env", "resources", "securityContext", "volumeMounts"):
        assert mig[key] == app_c[key], key
    assert (mig["command"], mig["args"]) == (MIGRATE["command"], MIGRATE["args"])
    assert jpod["restartPolicy"] == "Never"
    assert "ports" not in mig and "livenessProbe" not in mig
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_the_job_pod_is_never_selected_as_an_app_pod() -> None:
    app = app_of(make_doc(**SPEC))
    job = migration_job(app)
    assert job is not None
    labels = job["spec"]["template"]["metadata"]["labels"]
    selector = selector_labels(app.name)
    assert not selector.items() <= labels.items()  # Service, PDB, Deployment: not its pod
    # but the app's NetworkPolicy (one label: the instance) covers it
    netpol = next(o for o in render(app) if o["kind"] == "NetworkPolicy")
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_a_new_image_or_command_names_a_new_job_and_names_fit_a_label() -> None:
    base = migration_job_name(app_of(make_doc(**SPEC)))
    other_image = IMAGE.replace("ab" * 32, "cd" * 32)
    assert migration_job_name(app_of(make_doc(**SPEC, image=other_image))) != base
    other = {**SPEC, "migrate": {**MIGRATE, "args": ["--fake"]}}
    assert migration_job_name(app_of(make_doc(**other))) != base
    assert migration_job_name(app_of(make_doc(**{**SPEC, "env": []}))) == base  # env: no new Job
    doc = make_doc(**SPEC)
    doc["metadata"]["name"] = "a" * 63
    assert len(migration_job_name(app_of(doc))) <= 63


def test_the_gate_decides_the_deployments_image_and_whether_it_exists() -> None:
    app = app_of(make_doc(**SPEC))
    old = IMAGE.replace("ab" * 32, "01" * 32)
    held = render(app, image=old, migrated="shop-migrate-0000000000")
    deployment = held[0]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == old
    assert deployment["metadata"]["annotations"][MIGRATED_ANNOTATION] == "shop-migrate-0000000000"
    assert held[-1]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert "Deployment" not in kinds(render(app, deploy=False))
    opened = render(app)[0]  # pythonapp render: as once the gate passed
    assert opened["metadata"]["annotations"][MIGRATED_ANNOTATION] == migration_job_name(app)
    assert "Job" not in kinds(render(app_of(make_doc())))
