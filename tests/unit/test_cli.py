"""The command line contract: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.unit.factories import IMAGE, make_doc

from pythonapp_operator.cli import build_parser, main
from pythonapp_operator.controller.runner import settings_from_env

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, *docs: object, name: str = "apps.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_validate_accepts_examples(capsys: pytest.CaptureFixture[str]) -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
    assert main(["validate", *examples]) == 0
    assert "valid" in capsys.readouterr().err


def test_validate_reports_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = make_doc(image="python:3.12", replicas=-1)
    bad["metadata"] = {"name": "api", "namespace": "prod"}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    path = write(tmp_path, other, make_doc(), bad)
    assert main(["validate", str(path)]) == 1
    lines = [
        line for line in capsys.readouterr().err.strip().splitlines() if ": warning: " not in line
    ]
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: prod/api: spec.image: must be pinned by digest")
    assert lines[1].startswith(f"{path}: prod/api: spec.replicas: ")


def test_validate_several_files_and_stdin(tmp_path: Path) -> None:
    good = write(tmp_path, make_doc(), name="good.yaml")
    bad = write(tmp_path, make_doc(image=f"x:latest@{IMAGE.split('@')[1]}"), name="bad.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "pythonapp_operator.cli", "validate", str(good), "-"],
        input=bad.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if ": warning: " not in line]
    assert errors[0].startswith("<stdin>: team-a/shop: spec.image: uses the tag 'latest'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: [1, 2\n", "line 2: not valid YAML"),
        ("\xff\xfe", "UTF-16 encoded: save it as UTF-8"),
        ("a: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 6)"),
    ],
)
def test_broken_files_are_one_line_not_a_traceback(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(content.encode("latin-1"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/app.yaml"]) == 1
    assert (
        "/nonexistent/app.yaml: cannot read: No such file or directory" in capsys.readouterr().err
    )


def test_non_mapping_spec_is_a_problem_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = make_doc()
    doc["spec"] = ["not", "a", "mapping"]
    assert main(["validate", str(write(tmp_path, doc))]) == 1
    assert "team-a/shop: spec: " in capsys.readouterr().err


def test_render_prints_deployment_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, make_doc(), make_doc(profile="worker"))
    assert main(["render", str(path)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs][:2] == ["Deployment", "ServiceAccount"]
    assert len(docs) == 5 + 4


def test_render_refuses_invalid_with_validate_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, make_doc(image="python"))
    assert main(["render", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "spec.image: must be pinned by digest" in out.err


def test_crd_command_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert (ROOT / "crds" / "pythonapps.yaml").read_text() == capsys.readouterr().out


@pytest.mark.parametrize("bad", ["team-*", "!kube-system", "a,b", "Team-A", "x-", "a" * 64])
def test_operator_takes_exact_namespace_names_only(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Patterns would need kopf's cluster-wide Namespace scanning, which is off with
    --namespace (handlers.configure): refused before anything starts."""
    with pytest.raises(SystemExit) as exc:
        main(["operator", "--namespace", "team-a", "--namespace", bad])
    assert exc.value.code == 2
    assert "exact names only" in capsys.readouterr().err
    parsed = build_parser().parse_args(["operator", "-n", "team-a", "-n", "b" * 63])
    assert parsed.namespace == ["team-a", "b" * 63]


def test_max_rollouts_takes_a_whole_number_of_zero_or_more(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-rollouts N: 0 means no bound; a negative or non-number is refused before anything
    starts; without the flag, PYTHONAPP_MAX_ROLLOUTS, else 10."""
    assert build_parser().parse_args(["operator", "--max-rollouts", "0"]).max_rollouts == 0
    assert build_parser().parse_args(["operator"]).max_rollouts is None
    for bad, said in (("-1", "negative"), ("two", "not a whole number")):
        with pytest.raises(SystemExit) as exc:
            main(["operator", "--max-rollouts", bad])
        assert exc.value.code == 2
        assert said in capsys.readouterr().err
    monkeypatch.delenv("PYTHONAPP_MAX_ROLLOUTS", raising=False)
    assert settings_from_env().max_rollouts == 10
    monkeypatch.setenv("PYTHONAPP_MAX_ROLLOUTS", "4")
    assert settings_from_env().max_rollouts == 4
    assert settings_from_env(max_rollouts=0).max_rollouts == 0  # the flag wins
