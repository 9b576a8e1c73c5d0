"""Kubeconfig files for the admin and each component.

Certificates are embedded (``*-data``) so a kubeconfig keeps working when copied elsewhere, and
one file holds one identity: the admin file is what ``pythonapp dev kubeconfig`` prints and what
tests and the operator use.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "pythonapp-dev"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    """The kubeconfig document for one identity talking to ``server``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write(path: Path, server: str, *, ca: Path, cert: Path, key: Path, user: str) -> Path:
    """Write the kubeconfig atomically, readable only by its owner (it holds a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(render(server, ca, cert, key, user), f, sort_keys=False)
    tmp.replace(path)
    return path
