"""Warnings for valid but risky choices: one line each, on stderr, exit unchanged unless
--strict; a well-set app gets none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.factories import make_doc

from pythonapp_operator.advice import advise
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
CPU = {"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}}
WORKER_PROBES = {"liveness": {"command": ["true"]}, "readiness": {"command": ["true"]}}


def warnings_of(**spec: Any) -> dict[str, str]:
    spec.setdefault("resources", CPU)
    app, problems = validate_document(make_doc(**spec))
    assert app is not None, problems
    found = advise(app)
    assert all(p.warning for p in found)
    return {p.path: p.message for p in found}


def test_a_well_set_app_gets_no_warning() -> None:
    assert warnings_of() == {}
    assert warnings_of(profile="worker", probes=WORKER_PROBES) == {}


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"replicas": 1}, "spec.replicas", "one replica"),
        ({"replicas": 0}, "spec.replicas", "nothing runs"),
        ({"resources": {"limits": {"memory": "1Gi"}}}, "spec.resources.requests.cpu", "no CPU"),
        (
            {"profile": "worker", "probes": {"readiness": {"command": ["true"]}}},
            "spec.probes.liveness",
            "never restarted when it hangs",
        ),
        (
            {"profile": "worker", "probes": {"liveness": {"command": ["true"]}}},
            "spec.probes.readiness",
            "rolls out to every pod",
        ),
        (
            {"probes": {"readiness": {"path": "/health"}}},
            "spec.probes.readiness.path",
            "same path as liveness (/health)",
        ),
        (
            {"probes": {"liveness": {"path": "/z"}, "readiness": {"path": "/z"}}},
            "spec.probes.readiness.path",
            "same path as liveness (/z)",
        ),
        (
            {
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "value": "x"},
                ]
            },
            "spec.env[1].value",
            "DB_PASSWORD looks like a credential",
        ),
        (
            {"env": [{"name": "GITHUB_TOKEN", "value": "ghp_x"}]},
            "spec.env[0].value",
            "use spec.secrets",
        ),
        (
            {"profile": "worker", "probes": WORKER_PROBES, "terminationGracePeriodSeconds": 0},
            "spec.terminationGracePeriodSeconds",
            "in-flight work is cut",
        ),
        (
            {"env": [{"name": "DATABASE_URL", "value": "postgres://shop:hunter2@db:5432/shop"}]},
            "spec.env[0].value",
            "DATABASE_URL looks like a credential",
        ),
        ({"automountServiceAccountToken": True}, "spec.automountServiceAccountToken", "API token"),
        (
            {"profile": "cron", "cron": {"schedule": "@daily", "timeZone": "Mars/Olympus"}},
            "spec.cron.timeZone",
            "Mars/Olympus is not in this machine's time zone database",
        ),
    ],
)
def test_each_risky_choice_warns_at_its_field(spec: dict[str, Any], path: str, words: str) -> None:
    found = warnings_of(**spec)
    assert list(found) == [path], found
    assert words in found[path]


@pytest.mark.parametrize(
    "name", ["TOKEN_TTL_SECONDS", "CACHE_KEY", "KEYBOARD", "PASSAGE", "MONKEY", "SECRET_NAME"]
)
def test_names_that_only_contain_secret_words_do_not_warn(name: str) -> None:
    assert warnings_of(env=[{"name": name, "value": "1"}]) == {}
    assert warnings_of(env=[{"name": "DATABASE_URL", "value": "postgres://db:5432/x"}]) == {}


def test_an_empty_secretish_value_does_not_warn() -> None:
    assert warnings_of(env=[{"name": "PASSWORD", "value": ""}]) == {}


def write(tmp_path: Path, *docs: object) -> Path:
    path = tmp_path / "apps.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_warnings_print_one_line_each_and_keep_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, make_doc(replicas=1, resources=CPU))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: team-a/shop: spec.replicas: warning: one replica: every rollout, node drain "
        "or crash is downtime; use 2 or more",
        "1 PythonApp(s) valid, 1 warning(s)",
    ]
    assert main(["render", str(path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("---\napiVersion: apps/v1\nkind: Deployment\n")
    assert ": warning: one replica" in out.err


def test_strict_makes_warnings_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, make_doc(replicas=1, resources=CPU))
    for command in ("validate", "render"):
        assert main([command, "--strict", str(path)]) == 1
        out = capsys.readouterr()
        assert out.out == "" and ": warning: " in out.err


def test_invalid_apps_get_no_advice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, make_doc(replicas=1, image="python:3.12"))
    assert main(["validate", str(path)]) == 1
    assert ": warning: " not in capsys.readouterr().err


def test_the_web_example_is_warning_free(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(ROOT / "examples" / "web.yaml")]) == 0
    assert capsys.readouterr().err == "1 PythonApp(s) valid\n"
