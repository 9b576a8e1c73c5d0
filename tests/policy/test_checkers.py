"""Third-party checkers on what `pythonapp render` prints: zero findings, for every example.

kube-score, kube-linter, Polaris and Checkov run with the configs in policy/ (every exception
written there with its reason) on the rendered objects of each file in examples/, linted
together so that companions (Service, PodDisruptionBudget, NetworkPolicy) are seen with their
Deployment. The harness is proven able to fail on a deliberately bad Deployment, and a
hand-written hardened set (fixtures/good.yaml) shows what passes.

The checkers come from scripts/install-tools.sh; a missing one fails (never skips) with the
instruction to run it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.installed_tools import ToolMissing
from tests.policy.checkers import (
    CHECKERS,
    REPO,
    CheckerBroken,
    Finding,
    describe,
    run_checker,
)

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

# A check each checker must report on fixtures/bad.yaml (`image: nginx:latest`): the
# harness reads the findings, not only a count.
BAD_IMAGE_CHECK = {
    "kube-score": "container-image-tag",
    "kube-linter": "latest-tag",
    "polaris": "tagNotSpecified",
    "checkov": "CKV_K8S_14",
}

checker_names = pytest.mark.parametrize("checker", sorted(CHECKERS))


def pythonapp_cli() -> list[str]:
    """The `pythonapp` console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("pythonapp")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("pythonapp")
    if found:
        return [found]
    pytest.fail("the `pythonapp` console script is not installed: run `make venv`")


def render(example: Path, out_dir: Path, *options: str, suffix: str = "") -> Path:
    proc = subprocess.run(
        [*pythonapp_cli(), "render", *options, str(example)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(
            f"`pythonapp render {example.relative_to(REPO)}` failed (exit {proc.returncode}):\n"
            f"{proc.stderr or proc.stdout}"
        )
    out = out_dir / f"rendered{suffix}-{example.name}"
    out.write_text(proc.stdout)
    return out


def check(checker: str, files: list[Path], workdir: Path) -> list[Finding]:
    try:
        return run_checker(checker, files, workdir)
    except ToolMissing as err:
        pytest.fail(str(err))
    except CheckerBroken as err:
        pytest.fail(f"{checker} did not run properly:\n{err}")


def test_there_are_examples_to_check() -> None:
    assert EXAMPLES, "examples/ has no *.yaml: the checker tests would check nothing"


@checker_names
def test_rendered_examples_have_no_findings(checker: str, tmp_path: Path) -> None:
    rendered = [render(example, tmp_path) for example in EXAMPLES]
    findings = check(checker, rendered, tmp_path)
    assert not findings, (
        f"{checker}: {len(findings)} finding(s) on `pythonapp render` of "
        f"{', '.join(e.name for e in EXAMPLES)} (fix the renderer, or write the exception "
        f"with its reason in policy/):\n{describe(findings)}"
    )


#: the examples with spec.expose, rendered the other way too: with a Gateway (an HTTPRoute where
#: the plain render gives an Ingress), and with an IngressClass
EXPOSED = [e for e in EXAMPLES if "expose:" in e.read_text()]
ROUTE_VARIANTS = {
    "httproute": ("--gateway", "gateway-system/public"),
    "ingress-class": ("--route-api", "ingress", "--ingress-class", "nginx"),
}


@checker_names
def test_rendered_routes_have_no_findings(checker: str, tmp_path: Path) -> None:
    assert EXPOSED, "no example has spec.expose: the route variants would check nothing"
    rendered = []
    for suffix, options in ROUTE_VARIANTS.items():
        for example in EXPOSED:
            out = render(example, tmp_path, *options, suffix=f"-{suffix}")
            kinds = [line for line in out.read_text().splitlines() if line.startswith("kind:")]
            wanted = "kind: HTTPRoute" if suffix == "httproute" else "kind: Ingress"
            assert wanted in kinds, (example, options, kinds)
            rendered.append(out)
    findings = check(checker, rendered, tmp_path)
    assert not findings, (
        f"{checker}: {len(findings)} finding(s) on the routes of "
        f"{', '.join(e.name for e in EXPOSED)}:\n{describe(findings)}"
    )


@checker_names
def test_good_fixture_has_no_findings(checker: str, tmp_path: Path) -> None:
    findings = check(checker, [FIXTURES / "good.yaml"], tmp_path)
    assert not findings, f"{checker} on fixtures/good.yaml:\n{describe(findings)}"


@checker_names
def test_harness_catches_a_bad_deployment(checker: str, tmp_path: Path) -> None:
    findings = check(checker, [FIXTURES / "bad.yaml"], tmp_path)
    found = {f.check for f in findings}
    assert BAD_IMAGE_CHECK[checker] in found, (
        f"{checker} did not report {BAD_IMAGE_CHECK[checker]} on fixtures/bad.yaml "
        f"(`image: nginx:latest`); its findings:\n{describe(findings)}"
    )
    assert len(found) >= 5, (
        f"{checker} found too little on fixtures/bad.yaml:\n{describe(findings)}"
    )
