"""Where the dev cluster keeps its state.

One state directory per cluster (default ``~/.cache/pythonapp-operator/dev``, overridden by
``PYTHONAPP_DEV_STATE`` or the ``state_dir`` argument). The test session and the benchmark use
clusters of their own (``test``, ``bench``: :func:`own_state_dir`), so they never share one with
the demo's operator. etcd's data lives on tmpfs (``/dev/shm``) because it is throw-away and
fsync-heavy: on tmpfs the API server is quick even on a slow disk, and a reboot wipes it, which
is what a test cluster wants.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "PYTHONAPP_CACHE"
STATE_ENV = "PYTHONAPP_DEV_STATE"


def cache_root() -> Path:
    """The cache shared with the build script (binaries, dev state)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pythonapp-operator"


def default_state_dir() -> Path:
    """The state dir used when the caller passes none."""
    env = os.environ.get(STATE_ENV)
    return Path(env).expanduser() if env else cache_root() / "dev"


def own_state_dir(purpose: str) -> Path:
    """The state dir of a cluster that must not be the user's dev cluster (the one ``make
    demo`` runs its operator on): the test session's (``test``) and the benchmark's (``bench``)
    run operators of their own, and a second operator on their cluster would act on their apps
    too. ``PYTHONAPP_DEV_STATE`` still chooses, when set."""
    env = os.environ.get(STATE_ENV)
    return Path(env).expanduser() if env else cache_root() / purpose


@dataclass(frozen=True)
class Layout:
    """Every path the cluster uses, derived from its state dir so two clusters never collide."""

    root: Path

    @classmethod
    def of(cls, state_dir: Path | None) -> Layout:
        return cls((state_dir or default_state_dir()).expanduser().resolve())

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        """Generated kubeconfigs for components and kwok's stage list."""
        return self.root / "config"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def data(self) -> Path:
        """etcd data: on tmpfs when there is one, else inside the state dir."""
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        shm = Path("/dev/shm")  # noqa: S108 (per-user, per-cluster name; made mode 0700)
        if shm.is_dir() and os.access(shm, os.W_OK):
            return shm / f"pythonapp-operator-dev-{os.getuid()}-{digest}"
        return self.root / "data"
