"""The third-party checkers on what deploy/ installs: zero findings.

kube-score, kube-linter, Polaris and Checkov run exactly as tests/policy runs them on rendered
apps (same helpers, same configs in policy/), on `kubectl kustomize` of deploy/ and of the
namespaced overlay, all objects of one installation in one file so companions (PDB,
NetworkPolicy, ServiceAccount, RBAC) are seen together. kubectl-validate checks every
kustomization, the kind overlay included, against the Kubernetes schemas, offline.

Exceptions, each with its reason where it lives:
* the operator Deployment's one replica and Recreate strategy: per-object annotations in
  deploy/base/deployment.yaml (kopf runs standalone: never two operators at once);
* kube-linter access-to-create-pods on the (Cluster)RoleBindings: creating Deployments is the
  operator's job; per-object annotations in rbac.yaml / rolebindings.yaml say so;
* kube-linter access-to-secrets on the same bindings: Secrets are read (never written) to check
  the ones an app names and hash them for rotation; the annotations there say so;
* the kind overlay (a locally loaded image, no digest, imagePullPolicy Never) is not run through
  the four checkers: deploy/overlays/kind/kustomization.yaml says why; it is schema-checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.deploy.tools import (
    ALL_KUSTOMIZATIONS,
    BASE,
    NAMESPACED,
    kustomize,
    kustomize_text,
    run,
)
from tests.installed_tools import ToolMissing, require
from tests.policy.checkers import (
    CHECKERS,
    CheckerBroken,
    Finding,
    describe,
    run_checker,
)

CHECKED = {"deploy": BASE, "namespaced": NAMESPACED}
# kubectl-validate v0.0.4's newest built-in schemas; passing it keeps the tool offline.
SCHEMA_VERSION = "1.30"


def built(name: str, path: Path, out_dir: Path) -> Path:
    out = out_dir / f"{name}.yaml"
    out.write_text(kustomize_text(path))
    return out


def check(checker: str, files: list[Path], workdir: Path) -> list[Finding]:
    try:
        return run_checker(checker, files, workdir)
    except ToolMissing as err:
        pytest.fail(str(err), pytrace=False)
    except CheckerBroken as err:
        pytest.fail(f"{checker} did not run properly:\n{err}")


@pytest.mark.parametrize("checker", sorted(CHECKERS))
@pytest.mark.parametrize("name", sorted(CHECKED))
def test_deploy_has_no_findings(checker: str, name: str, tmp_path: Path) -> None:
    manifest = built(name, CHECKED[name], tmp_path)
    findings = check(checker, [manifest], tmp_path)
    assert not findings, (
        f"{checker}: {len(findings)} finding(s) on `kubectl kustomize "
        f"{CHECKED[name].relative_to(BASE.parent)}` (fix deploy/, or write the exception "
        f"with its reason):\n{describe(findings)}"
    )


def validate(files: list[Path], workdir: Path) -> dict[str, list[dict[str, object]]]:
    proc = run(
        [require("kubectl-validate"), *files, "--version", SCHEMA_VERSION, "--output", "json"],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "KUBECONFIG": "/dev/null"},
    )
    try:
        report: dict[str, list[dict[str, object]]] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"kubectl-validate printed no JSON ({proc.returncode}):\n{proc.stderr}")
    return report


@pytest.mark.parametrize("name", sorted(ALL_KUSTOMIZATIONS))
def test_kustomizations_match_the_kubernetes_schemas(name: str, tmp_path: Path) -> None:
    manifest = built(name, ALL_KUSTOMIZATIONS[name], tmp_path)
    results = validate([manifest], tmp_path)[str(manifest)]
    documents = len(kustomize(ALL_KUSTOMIZATIONS[name]))
    assert len(results) == documents, f"kubectl-validate saw {len(results)} of {documents}"
    failures = [r for r in results if r.get("status") != "Success"]
    assert not failures, json.dumps(failures, indent=2)


def test_kubectl_validate_catches_a_schema_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: x, imagePullPolcy: Always}]}\n"
    )
    results = validate([bad], tmp_path)[str(bad)]
    assert results and results[0]["status"] == "Failure", results
    message = json.dumps(results)
    assert "imagePullPolcy" in message and "unknown field" in message, message
