"""Find the control-plane binaries, building them first when they are missing.

Release downloads are refused on the machines this project targets, so the binaries usually come
from ``build-controlplane.sh`` (shipped next to this module as package data): it builds pinned
versions from the Go module proxy and caches them by version under
``~/.cache/pythonapp-operator/bin/``. The script is idempotent: with a warm cache it prints the
bin dir at once. A cold build on 2 cores takes tens of minutes; progress is forwarded to ``log``.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DevClusterError
from .paths import cache_root

K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
BIN_ENV = "PYTHONAPP_DEV_BIN"
"""Point at a directory holding the seven binaries (and ``kwok-stages/``) to skip the build."""

BUILD_SCRIPT = Path(__file__).with_name("build-controlplane.sh")
NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kwok",
)
"""The kubelet runs only on the real node (``dev up --real-node``) but is built and cached with
the rest, at the same Kubernetes version, so a cluster never mixes versions."""
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-delete.yaml",
)
"""kwok v0.8 has no built-in stages: these make nodes Ready, keep their leases, and take pods
through Running/Ready and deletion."""
OWN_STAGES = tuple(
    Path(__file__).parent / "kwok" / name for name in ("pod-complete.yaml", "pod-fail.yaml")
)
"""Job pods' ends, shipped with the package: kwok's pod-complete (a Job's pod succeeds at
once) with two test hooks, an env var that fails the pod with an exit code and one that keeps
it running (a migration Job that fails, or outlasts a newer image, in tests/e2e)."""

_HEARTBEAT_S = 60.0


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of everything the cluster runs."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def kubectl(self) -> Path:
        return self.dir / "kubectl"

    @property
    def kubelet(self) -> Path:
        return self.dir / "kubelet"

    @property
    def kwok_stages(self) -> list[Path]:
        return [self.dir / "kwok-stages" / s for s in KWOK_STAGES] + list(OWN_STAGES)

    def missing(self) -> list[str]:
        gone = [n for n in NAMES if not os.access(self.dir / n, os.X_OK)]
        gone += [str(p) for p in self.kwok_stages if not p.is_file()]
        return gone


def default_bin_dir() -> Path:
    """The versioned directory the build script fills (same naming as the script)."""
    env = os.environ.get(BIN_ENV)
    if env:
        return Path(env).expanduser()
    tag = f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}"
    return cache_root() / "bin" / tag


def find() -> Binaries | None:
    """The cached binaries, or None when any is missing (no build is attempted)."""
    b = Binaries(default_bin_dir())
    return None if b.missing() else b


def ensure(log: Callable[[str], None] = print) -> Binaries:
    """Return the binaries, running the build script first if the cache is incomplete."""
    found = find()
    if found is not None:
        return found
    if os.environ.get(BIN_ENV):
        given = Binaries(default_bin_dir())
        missing = ", ".join(given.missing()) if given.dir.is_dir() else "everything (no such dir)"
        raise DevClusterError(
            f"{BIN_ENV}={os.environ[BIN_ENV]} lacks: {missing}. Unset it to build."
        )
    bash = shutil.which("bash")
    if bash is None:
        raise DevClusterError("bash is needed to build the control plane binaries; install bash.")
    log(
        f"control plane binaries missing; building them with {BUILD_SCRIPT.name} "
        "(cold build: tens of minutes on 2 cores, cached afterwards)"
    )
    out = _run_build(bash, log)
    lines = out.strip().splitlines()
    built = Binaries(Path(lines[-1]) if lines else default_bin_dir())
    if built.missing():
        raise DevClusterError(
            f"the build script finished but {built.dir} lacks: {', '.join(built.missing())}"
        )
    return built


def _run_build(bash: str, log: Callable[[str], None]) -> str:
    """Run the script, forwarding its progress lines and a heartbeat while it is quiet."""
    env = dict(
        os.environ,
        K8S_VERSION=K8S_VERSION,
        ETCD_VERSION=ETCD_VERSION,
        KWOK_VERSION=KWOK_VERSION,
        PYTHONAPP_CACHE=str(cache_root()),
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        [bash, str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    tail: list[str] = []
    last = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=_HEARTBEAT_S)
        except queue.Empty:
            log(f"  still building ({time.monotonic() - start:.0f}s elapsed)")
            continue
        if line is None:
            break
        tail = [*tail[-30:], line]
        if line.startswith("[controlplane"):
            log(f"  {line}")
            last = time.monotonic()
        elif time.monotonic() - last > _HEARTBEAT_S:
            log(f"  still building ({time.monotonic() - start:.0f}s elapsed)")
            last = time.monotonic()
    assert proc.stdout is not None
    out = proc.stdout.read()
    if proc.wait() != 0:
        detail = "\n".join(f"    {t}" for t in tail[-15:])
        raise DevClusterError(
            f"building the control plane binaries failed ({BUILD_SCRIPT}):\n{detail}\n"
            "Fix the cause above (the script names what is missing), then run "
            "`pythonapp dev up` again."
        )
    log(f"  binaries ready after {time.monotonic() - start:.0f}s")
    return out
