"""Run the third-party manifest checkers and turn their machine-readable output into findings.

Each checker is configured by a file in policy/ and installed by scripts/install-tools.sh
(found through tests/installed_tools.py). A finding is anything the
checker flags at any severity (kube-score warnings and "almost OK" included, Polaris warnings
as well as dangers), because "zero findings" is the bar.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.installed_tools import tool_path

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policy"
TIMEOUT = 600  # seconds per checker run; Checkov is the slow one (a few seconds)


@dataclass(frozen=True, order=True)
class Finding:
    tool: str
    check: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.tool} {self.check} {self.obj}: {self.message}"


class CheckerBroken(Exception):
    """The checker ran but did not produce the output it should (config error, crash)."""


def _run(cmd: Sequence[str | os.PathLike[str]], cwd: Path, ok: set[int]) -> str:
    env = dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE")
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode not in ok:
        raise CheckerBroken(
            f"{' '.join(str(c) for c in cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def _json(out: str, cmd: str) -> Any:
    try:
        return json.loads(out)
    except json.JSONDecodeError as err:
        raise CheckerBroken(f"{cmd} printed no JSON ({err}):\n{out[:4000]}") from err


def _flags(path: Path) -> list[str]:
    """policy/kube-score.flags: one flag (with its value) per line, `#` comments."""
    flags: list[str] = []
    for line in path.read_text().splitlines():
        flags.extend(line.split("#", 1)[0].split())
    return flags


# kube-score grades: 1 critical, 5 warning, 7 almost OK, 10 all OK.
KUBE_SCORE_OK = 10


def kube_score(files: Sequence[Path], workdir: Path) -> list[Finding]:
    out = _run(
        [
            tool_path("kube-score"),
            "score",
            *_flags(POLICY / "kube-score.flags"),
            "--output-format",
            "json",
            "--output-version",
            "v2",
            *files,
        ],
        workdir,
        ok={0, 1},
    )
    objects = _json(out, "kube-score")
    if not objects:
        raise CheckerBroken(f"kube-score scored no objects in {list(map(str, files))}")
    findings = []
    for obj in objects:
        for result in obj.get("checks") or []:
            if result.get("skipped") or result.get("grade", 0) >= KUBE_SCORE_OK:
                continue
            comments = result.get("comments") or [{"summary": result["check"]["name"]}]
            for comment in comments:
                where = f" ({comment['path']})" if comment.get("path") else ""
                findings.append(
                    Finding(
                        "kube-score",
                        result["check"]["id"],
                        obj["object_name"],
                        f"{comment.get('summary', '')}{where}",
                    )
                )
    return findings


def kube_linter(files: Sequence[Path], workdir: Path) -> list[Finding]:
    out = _run(
        [
            tool_path("kube-linter"),
            "lint",
            "--config",
            POLICY / "kube-linter.yaml",
            "--format",
            "json",
            *files,
        ],
        workdir,
        ok={0, 1},
    )
    report = _json(out, "kube-linter")
    if "Reports" not in report:
        raise CheckerBroken(f"kube-linter printed no report:\n{out[:4000]}")
    findings = []
    for rep in report["Reports"] or []:
        k8s = rep["Object"]["K8sObject"]
        kind = k8s["GroupVersionKind"]["Kind"]
        findings.append(
            Finding(
                "kube-linter",
                rep["Check"],
                f"{kind}/{k8s.get('Namespace', '')}/{k8s['Name']}",
                rep["Diagnostic"]["Message"],
            )
        )
    return findings


POLARIS_SEVERITIES = {"warning", "danger"}


def polaris(files: Sequence[Path], workdir: Path) -> list[Finding]:
    findings = []
    for file in files:  # --audit-path takes one path; a file keeps companions together
        out = _run(
            [
                tool_path("polaris"),
                "audit",
                "--config",
                POLICY / "polaris.yaml",
                "--audit-path",
                file,
                "--format",
                "json",
            ],
            workdir,
            ok={0},
        )
        report = _json(out, "polaris")
        results = report.get("Results") or []
        if not results:
            raise CheckerBroken(f"polaris audited no objects in {file}")
        for res in results:
            obj = f"{res['Kind']}/{res['Namespace']}/{res['Name']}"
            groups: list[tuple[str, dict[str, Any]]] = [("", res.get("Results") or {})]
            pod = res.get("PodResult") or {}
            groups.append(("", pod.get("Results") or {}))
            groups += [
                (f" container {c['Name']}", c.get("Results") or {})
                for c in pod.get("ContainerResults") or []
            ]
            for where, checks in groups:
                for check_id, check in checks.items():
                    if not check["Success"] and check["Severity"] in POLARIS_SEVERITIES:
                        findings.append(
                            Finding(
                                "polaris",
                                check_id,
                                obj + where,
                                f"[{check['Severity']}] {check['Message']}",
                            )
                        )
    return findings


def checkov(files: Sequence[Path], workdir: Path) -> list[Finding]:
    file_args: list[str | Path] = []
    for file in files:
        file_args += ["-f", file]
    out = _run(
        [
            tool_path("checkov"),
            "--config-file",
            POLICY / "checkov.yaml",
            "--skip-download",
            *file_args,
            "--output",
            "json",
        ],
        workdir,
        ok={0, 1},
    )
    report = _json(out, "checkov")
    reports = report if isinstance(report, list) else [report]
    findings = []
    resources = 0
    for rep in reports:
        summary = rep.get("summary") or {}
        resources += summary.get("resource_count", 0)
        if summary.get("parsing_errors"):
            findings.append(
                Finding(
                    "checkov",
                    "parsing-error",
                    rep.get("check_type", "?"),
                    f"{summary['parsing_errors']} file(s) could not be parsed: nothing was checked",
                )
            )
        for failed in (rep.get("results") or {}).get("failed_checks") or []:
            findings.append(
                Finding(
                    "checkov",
                    failed["check_id"],
                    failed["resource"],
                    failed["check_name"],
                )
            )
    if not resources:
        raise CheckerBroken(f"checkov checked no resources:\n{out[:4000]}")
    return findings


CHECKERS: dict[str, Callable[[Sequence[Path], Path], list[Finding]]] = {
    "kube-score": kube_score,
    "kube-linter": kube_linter,
    "polaris": polaris,
    "checkov": checkov,
}


def run_checker(name: str, files: Sequence[Path], workdir: Path) -> list[Finding]:
    return sorted(set(CHECKERS[name](files, workdir)))


def describe(findings: Sequence[Finding]) -> str:
    return "\n".join(f"  {f}" for f in findings)
