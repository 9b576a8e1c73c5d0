"""A loopback image registry for the real node: Debian's ``docker-registry``, one per cluster.

The real kubelet pulls images by digest from here, so the dev cluster needs no Docker and no
registry on the internet. Why it is shaped this way:

* it listens on 127.0.0.1 only, at a port picked free at start, over plain HTTP (containerd is
  told to use HTTP for this host; nothing off the machine can reach it);
* its config, blobs and log live under the state directory the caller gives (the cluster's), so
  two clusters never share one and ``down`` removes it with the rest;
* a small record (``registry.json``: pid, kernel start time, address) lets a later process (the
  ``pythonapp dev image build`` command, a test) find the running registry and check it is
  still the process that was started, as :mod:`.procs` does for every component.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import procs
from .errors import DevClusterError
from .paths import Layout

HOST = "127.0.0.1"
BINARY = "docker-registry"
PACKAGES_HINT = "bash scripts/realnode-packages.sh"
"""What installs the Debian packages (docker-registry, skopeo, umoci, mmdebstrap)."""


@dataclass(frozen=True)
class Registry:
    """A registry process this package started, and where it answers."""

    address: str
    """``127.0.0.1:PORT``: the host part of every image reference pushed to it."""
    pid: int
    ticks: int
    """The kernel start time of ``pid`` (see :func:`.procs.start_ticks`): its identity."""
    root: Path
    """The directory holding its config, storage, log and record."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "root": str(self.root)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Registry:
        return cls(str(data["address"]), int(data["pid"]), int(data["ticks"]), Path(data["root"]))


def root_of(state_dir: Path | None = None) -> Path:
    """The registry's directory inside a cluster's state dir (the default cluster's if None)."""
    return Layout.of(state_dir).root / "registry"


def of_cluster(state_dir: Path | None = None) -> Registry:
    """The running registry of the dev cluster, or a one-line error saying how to get one."""
    found = running(root_of(state_dir))
    if found is None:
        raise DevClusterError(
            "no image registry is running for this dev cluster: it comes with the real node, "
            "start it with `pythonapp dev up --real-node`"
        )
    return found


def config_path(root: Path) -> Path:
    return root / "config.yml"


def storage_dir(root: Path) -> Path:
    return root / "storage"


def log_path(root: Path) -> Path:
    return root / "registry.log"


def record_path(root: Path) -> Path:
    return root / "registry.json"


def config(port: int, storage: Path) -> dict[str, Any]:
    """The registry's configuration (distribution's format; JSON is valid YAML for it).

    Loopback address only, no auth (nothing else can connect), deletes allowed (a test may
    remove a manifest to produce a missing digest), no storage health check (a local directory),
    the debug server off (it would open a second port).
    """
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": f"{HOST}:{port}",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }


def argv(binary: str, root: Path) -> list[str]:
    """The command line: ``docker-registry serve CONFIG``."""
    return [binary, "serve", str(config_path(root))]


def find_binary() -> str:
    """The registry binary's path, or a clear error saying how to install it."""
    path = shutil.which(BINARY)
    if path is None:
        raise DevClusterError(
            f"the image registry needs Debian's `{BINARY}` package: run `{PACKAGES_HINT}` (as root)"
        )
    return path


def _free_port(preferred: int | None = None) -> int:
    """``preferred`` when it can be bound, else a port the kernel picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # as Go's listeners do: the last run's connections in TIME_WAIT do not hold the port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            chosen: int = s.getsockname()[1]
            return chosen
    raise DevClusterError(f"no free port on {HOST} for the image registry")


def recorded_port(root: Path) -> int | None:
    """The port of the config an earlier start wrote under ``root``, if any.

    A restarted registry keeps its port when it can: the references of the images it stores
    (``127.0.0.1:PORT/NAME@sha256:...``, in PythonApps already applied) and containerd's
    per-host configuration stay valid."""
    try:
        addr = json.loads(config_path(root).read_text())["http"]["addr"]
        return int(str(addr).rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def answers(address: str, timeout: float = 2.0) -> bool:
    """True when the registry's API (``GET /v2/``) answers 200 at ``address``."""
    try:
        # plain HTTP on loopback, an address we chose: nothing user-supplied is opened here
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(registry: Registry) -> bool:
    """True when the process is still the one started and its API answers."""
    return procs.alive(registry.pid, registry.ticks) and answers(registry.address)


def running(root: Path) -> Registry | None:
    """The registry recorded under ``root`` if it is alive, else None."""
    try:
        registry = Registry.from_json(json.loads(record_path(root).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return registry if alive(registry) else None


def start(root: Path, timeout: float = 30.0) -> Registry:
    """Start a registry under ``root`` (or return the one already running there) and wait
    until it answers; on failure it is stopped and the error names its log. A registry
    started again under the same ``root`` keeps its images and, when free, its port."""
    existing = running(root)
    if existing is not None:
        return existing
    binary = find_binary()
    root.mkdir(parents=True, exist_ok=True)
    storage_dir(root).mkdir(exist_ok=True)
    port = _free_port(recorded_port(root))
    config_path(root).write_text(json.dumps(config(port, storage_dir(root)), indent=2) + "\n")
    pid, ticks = procs.spawn(argv(binary, root), log_path(root))
    registry = Registry(f"{HOST}:{port}", pid, ticks, root)
    deadline = time.monotonic() + timeout
    while not answers(registry.address, timeout=1.0):
        if not procs.alive(pid, ticks):
            why = "exited at start"
        elif time.monotonic() > deadline:
            why = f"did not answer within {timeout:.0f} s"
        else:
            time.sleep(0.1)
            continue
        procs.stop(pid, ticks)
        raise DevClusterError(f"the image registry {why} (port {port}); see {log_path(root)}")
    record_path(root).write_text(json.dumps(registry.to_json(), indent=2) + "\n")
    return registry


def stop(root: Path) -> None:
    """Stop the registry recorded under ``root`` (by pid and start time) and forget it.

    Its storage stays: the caller removes ``root`` when the images should go too."""
    try:
        registry = Registry.from_json(json.loads(record_path(root).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return
    procs.stop(registry.pid, registry.ticks)
    with contextlib.suppress(FileNotFoundError):
        record_path(root).unlink()
