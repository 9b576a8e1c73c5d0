"""The operator's own image without Docker, as the Dockerfile describes it (``images``).

The Dockerfile builds on python:3.11-slim with Docker; the real node needs the same image
where there is no Docker, so it is made like the app images: the cached Debian base (python3
3.11, the Dockerfile's python version), a layer of requirements.lock installed with
``--require-hashes`` (cached by the lock's hash: a code change rebuilds only the last layer),
a layer of the ``pythonapp_operator`` package and the ``pythonapp`` script, and the
Dockerfile's config: uid 10001, ``ENTRYPOINT ["pythonapp", "operator"]`` with its CMD, the
two ports, unbuffered output and no bytecode writes. It needs a source checkout (the lock and
pyproject.toml are not in the wheel).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from . import images
from .errors import DevClusterError

NAME = "pythonapp-operator"
ROOT = Path(__file__).resolve().parents[3]
"""The checkout: operator/pythonapp_operator/devcluster/ -> the repository root."""

CONFIG = images.ImageConfig(
    user="10001:10001",
    workdir="/",
    entrypoint=("pythonapp", "operator"),
    cmd=("--all-namespaces", "--health", "0.0.0.0:8080", "--metrics", "0.0.0.0:9090"),
    env=(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED=1",
        "PYTHONDONTWRITEBYTECODE=1",
    ),
    exposed_ports=("8080/tcp", "9090/tcp"),
    labels=(
        "org.opencontainers.image.title=pythonapp-operator",
        "org.opencontainers.image.licenses=Apache-2.0",
    ),
)
"""What the Dockerfile's runtime stage declares (tests/unit/test_operator_image.py compares)."""


def project(root: Path = ROOT) -> images.Project:
    """The operator as an :class:`images.Project`: the lock, the package, pyproject's scripts."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or not (root / "requirements.lock").is_file():
        raise DevClusterError(
            f"the operator's image is built from a source checkout; {root} has no "
            "pyproject.toml and requirements.lock"
        )
    scripts = tomllib.loads(pyproject.read_text())["project"].get("scripts", {})
    return images.Project(
        requirements=root / "requirements.lock",
        packages=(root / "operator" / "pythonapp_operator",),
        scripts=tuple(sorted(scripts.items())),
    )


def build(registry: str, *, root: Path = ROOT, log: images.Log = print) -> str:
    """Build and push the operator's image; ``REGISTRY/pythonapp-operator@sha256:...``."""
    return images.build_project(project(root), registry, NAME, CONFIG, log=log)
