"""End-to-end fixtures: the CRD installed and the operator running as a real process.

The cluster fixtures (cluster, kubectl, namespace, ...) come from tests/conftest.py.
The operator runs for the whole session, started exactly as a user would
(``pythonapp operator``), with its JSON log kept in a file that the tests read.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import wait_for
from tests.operator_process import OperatorProcess

from pythonapp_operator.devcluster import audit

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Kubectl:
    """kubectl bound to the cluster under test."""

    path: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.path), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {proc.stderr}", pytrace=False)
        return proc

    def apply(
        self, doc: dict[str, Any] | list[dict[str, Any]], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        docs = doc if isinstance(doc, list) else [doc]
        return self.run(
            "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(docs), check=check
        )

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        proc = self.run("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


@pytest.fixture(scope="session")
def k(kubectl: Path, kubeconfig_path: Path) -> Kubectl:
    return Kubectl(kubectl, kubeconfig_path)


@pytest.fixture(scope="session")
def crd(k: Kubectl) -> None:
    """The generated CRD, installed and Established."""
    k.run(
        "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds" / "pythonapps.yaml")
    )
    k.run("wait", "--for=condition=Established", "crd/pythonapps.pythonapp.dev", "--timeout=60s")


def crd_without_validation() -> dict[str, Any]:
    """The generated CRD with its validation stripped (CEL rules, patterns, bounds)."""
    crd = yaml.safe_load((ROOT / "crds" / "pythonapps.yaml").read_text())

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: strip(v)
                for key, v in node.items()
                if key
                not in ("x-kubernetes-validations", "pattern", "minimum", "maximum", "minLength")
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(crd)  # type: ignore[no-any-return]


def apply_past_validation(k: Kubectl, doc: dict[str, Any]) -> None:
    """Apply an object the CRD would refuse, as one stored under an older, laxer CRD would be:
    the CRD's validation is swapped out for the apply and the generated CRD put back after."""
    k.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=yaml.safe_dump(crd_without_validation()),
    )
    try:
        # Each attempt re-applies: the API server may still hold the strict schema for a moment.
        wait_for(
            lambda: k.apply(doc, check=False).returncode == 0,
            30,
            "the lax CRD to accept the object",
        )
    finally:
        k.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "crds" / "pythonapps.yaml"),
        )


@contextmanager
def operator_down(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator stopped (SIGTERM, clean exit checked) and started again after."""
    code = operator.stop()
    assert code == 0, f"operator did not exit cleanly on SIGTERM (exit {code})"
    try:
        yield
    finally:
        operator.restart()


@pytest.fixture(scope="session")
def operator(
    crd: None, kubeconfig_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator for the whole session, watching all namespaces, resync every 30 s, retries
    at most 4 s apart (so conditions clear quickly once a test removes their cause)."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = OperatorProcess(
        kubeconfig_path,
        log,
        ["--all-namespaces"],
        env={"PYTHONAPP_RESYNC_SECONDS": "30", "PYTHONAPP_BACKOFF_MAX_SECONDS": "4"},
    ).wait_healthy()
    yield op
    code = op.stop()
    assert code == 0, f"operator did not exit cleanly on SIGTERM (exit {code})"


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(scope="session")
def audit_log(cluster: Any) -> Path:
    """The API server's audit log (the dev cluster writes one; see devcluster.components)."""
    if not cluster.is_devcluster:
        pytest.fail(
            "counting writes needs the API server audit log of `pythonapp dev`", pytrace=False
        )
    path = audit.log_path(cluster.state_dir)
    if not path.exists():
        pytest.fail(
            f"no audit log at {path}: restart the dev cluster (`pythonapp dev down && up`)",
            pytrace=False,
        )
    return path


@pytest.fixture
def audit_writes(audit_log: Path) -> Callable[..., int]:
    """``audit_writes(namespace, since=epoch)``: the operator's writes there, per the API server."""

    def count(namespace: str, since: float) -> int:
        return audit.count_writes(audit_log, namespace, since=since - 1)

    return count


@pytest.fixture
def audit_refused(audit_log: Path) -> Callable[..., int]:
    """``audit_refused(namespace, resource)``: the operator's writes of ``resource`` there that
    the API server refused (4xx), per its audit log. Unlike the session-wide retry counter, it
    counts this test's own retries, so a wait on it cannot end early on another app's."""

    def count(namespace: str, resource: str) -> int:
        return sum(
            1
            for c in audit.writes(audit_log, namespace, since=0)
            if c.resource == resource and c.code is not None and 400 <= c.code < 500
        )

    return count
