"""The CRD's schema and CEL rules agree with the pydantic models, on the same cases.

Every case of tests/unit/test_models.py goes to the real API server (server-side dry run with
kubectl's strict field validation): what the models refuse, the API server refuses, naming the
same field, and for the project's own rules with the very same message; what the models
accept, the API server accepts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.factories import make_doc
from tests.unit.test_models import ACCEPTED, REFUSED

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def install_crd(
    kubectl: Path, kubeconfig_path: Path, crd: Path = ROOT / "crds" / "pythonapps.yaml"
) -> None:
    """Apply the CRD (server-side, forced) and wait until it is Established."""
    subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig_path),
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(crd),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig_path),
            "wait",
            "--for=condition=Established",
            "crd/pythonapps.pythonapp.dev",
            "--timeout=60s",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def dry_run(kubectl: Path, kubeconfig_path: Path, namespace_for_module: str) -> Any:
    install_crd(kubectl, kubeconfig_path)

    def apply(doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        doc["metadata"]["namespace"] = namespace_for_module
        return subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(kubeconfig_path),
                "apply",
                "--dry-run=server",
                "-f",
                "-",
            ],
            input=yaml.safe_dump(doc),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    return apply


@pytest.mark.parametrize(
    ("overrides", "path", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_api_server_refuses_what_the_models_refuse(
    dry_run: Any, overrides: dict[str, Any], path: str, message: str
) -> None:
    proc = dry_run(make_doc(**overrides))
    assert proc.returncode != 0, (
        f"the API server accepted what the models refuse ({path}: {message})"
    )
    err = " ".join(proc.stderr.split())
    field = path.split("[", maxsplit=1)[0].split(".")[1] if "." in path else path
    assert field in err, f"the API server's error does not name {field!r}: {err}"
    if not message[0].isupper() and message not in ("is required",) and len(message) > 40:
        # The project's own rules: the API server speaks with the same words.
        assert " ".join(message.split()) in err, err


@pytest.mark.parametrize("overrides", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_api_server_accepts_what_the_models_accept(dry_run: Any, overrides: dict[str, Any]) -> None:
    proc = dry_run(make_doc(**overrides))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name
)
def test_examples_are_accepted(dry_run: Any, example: Path) -> None:
    for doc in yaml.safe_load_all(example.read_text()):
        proc = dry_run(doc)
        assert proc.returncode == 0, proc.stderr
