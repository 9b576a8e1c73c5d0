"""Optional: where the operator's CPU time goes, sampled with py-spy during the burst.

``--profile`` runs ``py-spy record --format raw`` (collapsed stacks, one line per distinct stack
with its sample count) on the operator's pid, non-blocking so the operator is not paused, and
stops it with SIGINT when the burst is over. It samples every thread that is not idle, so
threads blocked in a socket read count (where the *time* goes); ``--profile-gil`` samples only
the thread holding the GIL (where the Python *CPU* goes). :func:`summarize` turns the stacks
into shares by package (of samples in which the package is on the stack, and of samples spent
in the package itself) and the top functions by self time. py-spy is not a dependency of the
project: install it in the venv (``pip install py-spy``) to use this.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .process import BenchError

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(:\d+)?\)$")


def find_py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise BenchError("--profile needs py-spy: `.venv/bin/pip install py-spy`")
    return found


class Profiler:
    """py-spy recording one pid into ``out`` until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int = 50, gil: bool = False) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [
                find_py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                "--nonblocking", "--full-filenames", "--output", str(out),
                *(["--gil"] if gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        return {"file": str(self.out), **summarize(self.out)}


def package(path: str) -> str:
    """``.../site-packages/kopf/_core/x.py`` -> ``kopf``; the standard library by module."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "pythonapp_operator/" in path:
        tail = path.split("pythonapp_operator/", 1)[1]
        return "pythonapp_operator." + tail.split("/", 1)[0].removesuffix(".py")
    match = re.search(r"/python3\.\d+/(?P<mod>[^/]+)", path)
    if match:
        return "stdlib." + match.group("mod").removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the samples: by package on the stack / at the leaf, top leaf functions."""
    total = 0
    inclusive: Counter[str] = Counter()
    leaf_pkg: Counter[str] = Counter()
    leaf_func: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [FRAME.match(f) for f in stack.split(";")]
        parsed = [(m.group("func"), m.group("file")) for m in frames if m]
        if not parsed:
            continue
        total += n
        for pkg in {package(file) for _, file in parsed}:
            inclusive[pkg] += n
        func, file = parsed[-1]
        leaf_pkg[package(file)] += n
        leaf_func[f"{func} ({package(file)})"] += n

    def share(c: Counter[str]) -> dict[str, float]:
        return {k: round(100 * v / total, 1) for k, v in c.most_common(top)} if total else {}

    return {
        "samples": total,
        "on_stack_percent": share(inclusive),
        "self_percent_by_package": share(leaf_pkg),
        "self_percent_by_function": share(leaf_func),
    }
