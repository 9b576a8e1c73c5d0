"""The operator's Dockerfile and build context, checked without a Docker engine.

* its structure, read as Docker reads it (dockerfile-parse): multi-stage, every FROM pinned by
  digest, locked and hash-checked pip installs without a cache, only the virtualenv copied into
  the runtime stage, a numeric non-root USER, exec-form ENTRYPOINT/CMD, a HEALTHCHECK on the
  operator's health endpoint, nothing secret-shaped in ENV/ARG/COPY;
* hadolint and Checkov's Dockerfile framework: zero findings, and each proven able to fail;
* the build context computed with Docker's own .dockerignore rules: exactly what the
  Dockerfile needs, no tests, docs, VCS, virtualenvs, caches or env files.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from tests.deploy.tools import DOCKERFILE, REPO, hadolint, run
from tests.installed_tools import ToolMissing, tool_path

DIGEST_FROM = re.compile(r"^[\w.\-/:]+@sha256:[0-9a-f]{64}(\s+AS\s+\w+)?$", re.IGNORECASE)
SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
RUNTIME_UID = 10001

BAD_DOCKERFILE = """\
FROM python:latest
ENV API_TOKEN=hunter2
ADD . /app
RUN pip install flask
RUN apt-get update && apt-get install -y curl
CMD python /app/main.py
"""


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def stages(parser: DockerfileParser) -> list[list[dict[str, Any]]]:
    """Instructions grouped by stage (each starts with its FROM)."""
    out: list[list[dict[str, Any]]] = []
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def of(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == instruction]


def test_multi_stage_with_every_base_pinned_by_digest(parser: DockerfileParser) -> None:
    froms = [i["value"] for i in parser.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "expected a builder stage and a runtime stage"
    for value in froms:
        assert DIGEST_FROM.match(value), f"FROM {value}: pin the base image by @sha256 digest"
        assert ":latest@" not in value
    # hadolint has no rule for this: the runtime stage must start from the same pinned base.
    assert froms[0].split()[0] == froms[-1].split()[0], "builder and runtime bases differ"


def test_pip_installs_are_locked_hashed_and_cacheless(parser: DockerfileParser) -> None:
    installs = [
        cmd
        for i in parser.structure
        if i["instruction"] == "RUN"
        for cmd in re.split(r"&&|;", i["value"])
        if re.search(r"\bpip\b.*\binstall\b", cmd)
    ]
    assert installs, "no pip install in the Dockerfile"
    locked = [c for c in installs if re.search(r"(-r|--requirement)\s+requirements\.lock\b", c)]
    assert locked, "the runtime dependencies must come from requirements.lock"
    for cmd in installs:
        assert "--no-cache-dir" in cmd, f"pip install without --no-cache-dir: {cmd.strip()}"
        if re.search(r"\s(-r|--requirement)\s", cmd):
            assert "--require-hashes" in cmd, f"locked install without hashes: {cmd.strip()}"
        else:  # the operator's own wheel: nothing may be resolved from an index
            assert "--no-deps" in cmd and "--no-index" in cmd, cmd.strip()


def test_runtime_stage_copies_only_the_virtualenv(parser: DockerfileParser) -> None:
    runtime = stages(parser)[-1]
    copies = of(runtime, "COPY") + of(runtime, "ADD")
    assert copies == ["--from=builder /opt/venv /opt/venv"], copies
    assert not of(runtime, "RUN"), "the runtime stage should only receive the virtualenv"


def test_runs_as_numeric_non_root_user(parser: DockerfileParser) -> None:
    users = of(stages(parser)[-1], "USER")
    assert users, "no USER in the runtime stage: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) == RUNTIME_UID, f"USER {users[-1]}: numeric uid 10001"
    assert group.isdigit() and int(group) == RUNTIME_UID, f"USER {users[-1]}: numeric gid 10001"


def exec_form(value: str) -> list[str] | None:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed) else None


def test_entrypoint_and_cmd_are_exec_form(parser: DockerfileParser) -> None:
    runtime = stages(parser)[-1]
    entrypoint, cmd = of(runtime, "ENTRYPOINT"), of(runtime, "CMD")
    assert entrypoint and exec_form(entrypoint[-1]) == ["pythonapp", "operator"], entrypoint
    args = exec_form(cmd[-1]) if cmd else None
    assert args is not None, f"CMD must be exec form (JSON list): {cmd}"
    assert "--health" in args and args[args.index("--health") + 1].endswith(":8080"), args


def test_healthcheck_probes_the_health_endpoint(parser: DockerfileParser) -> None:
    checks = of(stages(parser)[-1], "HEALTHCHECK")
    assert checks, "no HEALTHCHECK in the runtime stage"
    check = checks[-1]
    assert "CMD" in check and "/healthz" in check and ":8080" in check, check
    assert "curl" not in check and "wget" not in check, "python:3.11-slim has neither"
    assert exec_form(check[check.index("CMD") + 3 :].strip()), "HEALTHCHECK CMD in exec form"


def test_no_secrets_in_env_arg_or_copy(parser: DockerfileParser) -> None:
    for ins in parser.structure:
        if ins["instruction"] in {"ENV", "ARG"}:
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", ins["value"])
            for name in names:
                assert not SECRETISH.search(name), f"{ins['instruction']} {name}: secret-shaped"
        if ins["instruction"] in {"COPY", "ADD"}:
            assert not re.search(r"\.env|\.pem|\.key|kubeconfig|id_rsa", ins["value"]), ins
        if ins["instruction"] == "ADD":
            pytest.fail(f"ADD {ins['value']}: use COPY (ADD fetches URLs, unpacks archives)")


def hadolint_findings(path: Path) -> list[dict[str, Any]]:
    proc = run([hadolint(), "--no-color", "--format", "json", path])
    if proc.returncode not in (0, 1) or not proc.stdout.strip().startswith("["):
        pytest.fail(f"hadolint did not run properly ({proc.returncode}):\n{proc.stderr}")
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def test_hadolint_has_no_findings_at_any_level() -> None:
    findings = hadolint_findings(DOCKERFILE)
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE)
    codes = {f["code"] for f in hadolint_findings(bad)}
    assert {"DL3007", "DL3013", "DL3020", "DL3025"} <= codes, codes


def checkov_dockerfile(path: Path) -> list[str]:
    """Checkov's Dockerfile framework (installed by scripts/install-tools.sh), offline."""
    try:
        checkov = tool_path("checkov")
    except ToolMissing as err:
        pytest.fail(str(err), pytrace=False)
    proc = run(
        [
            checkov,
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "-o",
            "json",
            "-f",
            path,
        ],
        cwd=path.parent,
        env={
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
            "BC_SKIP_MAPPING": "TRUE",
            "PATH": "/usr/bin:/bin",
            "HOME": str(path.parent),
        },
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON ({proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    reports = report if isinstance(report, list) else [report]
    assert sum(r.get("summary", {}).get("resource_count", 0) for r in reports), proc.stdout
    assert not any(r.get("summary", {}).get("parsing_errors") for r in reports), proc.stdout
    return [
        f"{f['check_id']} {f['check_name']} (line {f['file_line_range']})"
        for r in reports
        for f in (r.get("results") or {}).get("failed_checks") or []
    ]


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, REPO / "examples" / "app" / "Dockerfile"], ids=["operator", "app"]
)
def test_checkov_dockerfile_has_no_findings(dockerfile: Path) -> None:
    """The operator's image, and the sample app's (tests/app checks the rest of it)."""
    findings = checkov_dockerfile(dockerfile)
    assert not findings, "\n".join(findings)


def test_checkov_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE)
    found = {f.split()[0] for f in checkov_dockerfile(bad)}
    # no HEALTHCHECK, no USER, latest tag
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_7"} <= found, found


def build_context() -> set[str]:
    """The files `docker build .` would send, computed with Docker's own .dockerignore rules."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return {p for p in exclude_paths(str(REPO), patterns) if (REPO / p).is_file()}


def tracked(prefix: str) -> set[str]:
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", prefix],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line for line in out.splitlines() if line and (REPO / line).is_file()}


def test_build_context_holds_what_the_image_needs() -> None:
    context = build_context()
    needed = {"pyproject.toml", "requirements.lock", "requirements-build.lock"}
    needed |= tracked("operator/")
    assert needed <= context, f"missing from the build context: {sorted(needed - context)}"


def test_build_context_keeps_everything_else_out() -> None:
    context = build_context()
    for path in context:
        parts = Path(path).parts
        assert parts[0] in {
            "operator",
            "pyproject.toml",
            "requirements.lock",
            "requirements-build.lock",
            "Dockerfile",
            ".dockerignore",
        }, path
        assert "__pycache__" not in parts and not path.endswith((".pyc", ".pyo")), path
        assert not Path(path).name.startswith(".env"), path
    for banned in ("tests", "docs", ".git", ".venv", ".github", "deploy", "examples", "bench"):
        assert not any(Path(p).parts[0] == banned for p in context), banned
