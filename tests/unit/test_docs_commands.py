"""The commands the docs show are the commands that work.

Every ```console block in README.md and docs/*.md is read as `$ command` lines followed by the
output shown. Commands that need no cluster (`pythonapp validate`, `render`, `crd`, also in a
pipe with standard tools) run here, from the repository root, and must print exactly what the
docs show (stdout and stderr together; a line `...` stands for any lines). The others
(kubectl, make, ...) cannot run without a cluster: the repository paths they name must exist.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = re.compile(r"^(?:[\w./-]+ .*\| *)?pythonapp (validate|render|crd)\b")
NOT_HERE = ("kubectl", "make ", "curl", "docker", "kustomize", "export ", ". ", "cd ")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:examples|deploy|crds|docs|scripts)/[\w./*-]*)")


@dataclass(frozen=True)
class Shown:
    """One command a doc shows, and the output shown under it."""

    doc: str
    line: int
    command: str
    output: list[str]

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: $ {self.command}"


def shown_commands(doc: Path) -> list[Shown]:
    out: list[Shown] = []
    in_console = False
    current: Shown | None = None
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if line.strip().startswith("```"):
            in_console = line.strip() == "```console"
            current = None
            continue
        if not in_console:
            continue
        if line.startswith("$ "):
            current = Shown(doc.name, number, line[2:].strip(), [])
            out.append(current)
        elif current is not None:
            current.output.append(line.rstrip())
    return out


ALL = [shown for doc in DOCS for shown in shown_commands(doc)]
RUN = [s for s in ALL if RUNNABLE.match(s.command) and not s.command.startswith(NOT_HERE)]
OTHER = [s for s in ALL if s not in RUN]


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; `...` matches any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def test_the_docs_show_commands_that_run_here() -> None:
    assert len(RUN) >= 6, [str(s) for s in RUN]
    assert OTHER, "the kubectl commands of the quick start and the operations guide"
    assert {"validate", "render", "crd"} <= {RUNNABLE.match(s.command)[1] for s in RUN}  # type: ignore[index]


@pytest.mark.parametrize("shown", RUN, ids=str)
def test_shown_command_prints_what_the_docs_show(shown: Shown) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        # a worktree's package first, as for the rest of the suite (the venv's editable
        # install may point at another checkout)
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", "exec 2>&1\n" + shown.command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    actual = [line.rstrip() for line in proc.stdout.splitlines()]
    expected = [line for line in shown.output if line.strip()] or []
    if "exit $?" not in shown.command:
        assert proc.returncode == 0, f"{shown} exited {proc.returncode}:\n{proc.stdout}"
    assert matches(expected, actual), (
        f"{shown}: the docs show\n" + "\n".join(expected) + "\nbut it prints\n" + proc.stdout
    )


@pytest.mark.parametrize("shown", OTHER, ids=str)
def test_other_commands_name_paths_that_exist(shown: Shown) -> None:
    for word in shlex.split(shown.command, comments=True, posix=True):
        for path in REPO_PATH.findall(word):
            assert list(ROOT.glob(path.rstrip("/"))), f"{shown}: {path} does not exist"
