"""Count writes in the dev cluster's API server audit log (see ``components.AUDIT_POLICY``).

Tests and the benchmark use it to prove the operator idles at zero writes: the API server's own
record, not the operator's word. The operator's requests are told apart by their user agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .components import audit_log_path
from .paths import Layout

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
OPERATOR_AGENTS = ("pythonapp-operator/", "kopf/")


def log_path(state_dir: Path | None = None) -> Path:
    """The audit log of the dev cluster in ``state_dir`` (default state dir if None)."""
    return audit_log_path(Layout.of(state_dir))


def _events(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def writes(
    path: Path,
    namespace: str,
    since: float,
    until: float | None = None,
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> Iterator[dict[str, Any]]:
    """Audit events of completed write requests in ``namespace`` by ``agents`` between two epoch
    times (``objectRef`` names the resource and subresource written)."""
    for event in _events(path):
        if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
            continue
        if (event.get("objectRef") or {}).get("namespace") != namespace:
            continue
        if not str(event.get("userAgent", "")).startswith(agents):
            continue
        stamp = str(event.get("requestReceivedTimestamp", "")).replace("Z", "+00:00")
        try:
            when = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        if when >= since and (until is None or when <= until):
            yield event


def count_writes(
    path: Path,
    namespace: str,
    since: float,
    until: float | None = None,
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> int:
    """Completed write requests in ``namespace`` by ``agents`` between two epoch times."""
    return sum(1 for _ in writes(path, namespace, since, until, agents))
