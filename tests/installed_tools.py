"""Where the third-party tools installed by scripts/install-tools.sh (`make tools`) are.

The script records each tool, once it ran offline, as ``NAME=/abs/path`` in
``<cache>/tools/tools.env``. A tool that is not there is a test failure that says how to get
it, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INSTALL_HINT = "run `make tools` (scripts/install-tools.sh)"


class ToolMissing(Exception):
    """The tool is not installed (or its recorded path is gone)."""


def cache_dir() -> Path:
    return Path(os.environ.get("PYTHONAPP_CACHE") or Path.home() / ".cache" / "pythonapp-operator")


def env_file() -> Path:
    return cache_dir() / "tools" / "tools.env"


def tool_path(name: str) -> Path:
    """Path of an installed tool; :class:`ToolMissing` when there is none."""
    paths: dict[str, str] = {}
    if env_file().is_file():
        for line in env_file().read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                paths[key.strip()] = value.strip()
    path = Path(paths[name]) if name in paths else None
    if path is None or not os.access(path, os.X_OK):
        raise ToolMissing(
            f"{name} is not installed (no executable recorded in {env_file()}): {INSTALL_HINT}"
        )
    return path


def require(name: str) -> Path:
    """Path of an installed tool, or fail the test with the command that installs it."""
    try:
        return tool_path(name)
    except ToolMissing as err:
        pytest.fail(str(err), pytrace=False)
