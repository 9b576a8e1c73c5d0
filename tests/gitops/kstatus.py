"""Run the kstatus checker (tests/gitops/kstatus, Go): how Flux reads an object.

scripts/install-tools.sh (`make tools`) builds it into the tool cache, in a directory named
after a hash of its sources, and this module looks for exactly that directory: an edit of
main.go or go.mod is never tested against a stale binary, and checkouts with different sources
that share the cache do not trip over each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.installed_tools import INSTALL_HINT, cache_dir

SOURCES = Path(__file__).resolve().parent / "kstatus"
REPO = SOURCES.parents[2]
FLUX_EXAMPLE = REPO / "deploy" / "flux" / "kustomization.example.yaml"


def source_hash() -> str:
    """sha256 of the source files in name order, 12 hex digits (install-tools.sh: the same)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCES.iterdir() if p.is_file()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def checker() -> Path:
    path = cache_dir() / "tools" / f"kstatus-check-{source_hash()}" / "bin" / "kstatus-check"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"kstatus-check is not built from the current sources in {SOURCES} (no {path}): "
            f"{INSTALL_HINT}",
            pytrace=False,
        )
    return path


def verdicts(files: list[Path], exprs: Path | None = FLUX_EXAMPLE) -> list[dict[str, Any]]:
    """One dict per object: kstatus, fluxKstatus and (with ``exprs``) healthCheckExprs."""
    args = [str(checker())]
    if exprs is not None:
        args += ["-exprs", str(exprs)]
    proc = subprocess.run(
        [*args, *map(str, files)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"kstatus-check failed ({proc.returncode}): {proc.stderr}", pytrace=False)
    return [json.loads(line) for line in proc.stdout.splitlines()]
