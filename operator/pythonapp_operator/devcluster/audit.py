"""Read the dev cluster's API server audit log (see ``components.AUDIT_POLICY``).

Tests and the benchmark use it to count what a client did, by the API server's own record and
not by the client's word: the operator's writes (zero after a restart), its reads and writes
per app by verb and resource. This module is the one place that parses the log.

Each request is counted once: a long-running request (a watch) is logged when its response
starts and again when it ends; a short one only when it completes. The log rotates at
``--audit-log-maxsize``: :func:`calls` reads the rotated file too, and :class:`Follower` (which
reads the log as it grows) finishes the old file before it opens the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .components import audit_log_path
from .paths import Layout

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS = frozenset({"get", "list", "watch"})
OPERATOR_AGENTS = ("pythonapp-operator/", "kopf/")
"""User agents of the operator process: its own client and kopf's (``kopf/<version>``)."""


def log_path(state_dir: Path | None = None) -> Path:
    """The audit log of the dev cluster in ``state_dir`` (default state dir if None)."""
    return audit_log_path(Layout.of(state_dir))


@dataclass(frozen=True)
class Call:
    """One API request as the audit log records it."""

    when: float
    """When the API server received it (epoch seconds, microsecond precision)."""
    user: str
    agent: str
    verb: str
    resource: str
    """``deployments``, ``pythonapps/status``; the URL path for a non-resource request."""
    namespace: str | None
    code: int | None
    seconds: float | None = None
    """The API server's own time for it, received to completed; None when counted as its
    response started (an open watch: its time is its whole life)."""

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def is_read(self) -> bool:
        return self.verb in READ_VERBS

    @property
    def key(self) -> str:
        """``verb resource``, e.g. ``get deployments`` or ``patch pythonapps/status``."""
        return f"{self.verb} {self.resource}"


def _stamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _call(event: dict[str, Any]) -> Call | None:
    when = _stamp(str(event.get("requestReceivedTimestamp", "")))
    if when is None:
        return None
    ref = event.get("objectRef") or {}
    if ref.get("resource"):
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    else:
        resource = str(event.get("requestURI", "")).split("?", 1)[0]
    return Call(
        when=when,
        user=str((event.get("user") or {}).get("username", "")),
        agent=str(event.get("userAgent", "")),
        verb=str(event.get("verb", "")),
        resource=resource,
        namespace=ref.get("namespace"),
        code=(event.get("responseStatus") or {}).get("code"),
        seconds=_took(event, when),
    )


def _took(event: dict[str, Any], received: float) -> float | None:
    if event.get("stage") != "ResponseComplete":
        return None
    done = _stamp(str(event.get("stageTimestamp", "")))
    return None if done is None else max(0.0, done - received)


class _Once:
    """Passes each request once: at ResponseStarted for long-running ones, else at the end."""

    def __init__(self) -> None:
        self.started: set[str] = set()

    def first(self, event: dict[str, Any]) -> bool:
        stage, audit_id = event.get("stage"), str(event.get("auditID", ""))
        if stage == "ResponseStarted":
            self.started.add(audit_id)
            return True
        if stage in ("ResponseComplete", "Panic"):
            if audit_id in self.started:
                self.started.discard(audit_id)
                return False
            return True
        return False


def _parse(lines: Iterable[bytes], once: _Once, keep: tuple[bytes, ...]) -> Iterator[Call]:
    for line in lines:
        if keep and not any(k in line for k in keep):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and once.first(event):
            call = _call(event)
            if call is not None:
                yield call


def log_files(path: Path) -> list[Path]:
    """The rotated backups of ``path`` (oldest first), then ``path`` itself."""
    pattern = f"{path.stem}-*{path.suffix}"
    backups = sorted(path.parent.glob(pattern), key=lambda p: p.stat().st_mtime)
    return [*backups, path] if path.exists() else backups


def calls(path: Path, since: float = 0.0, keep: tuple[bytes, ...] = ()) -> Iterator[Call]:
    """Every request in the log (and its rotated backups) received at or after ``since``.

    ``keep``: byte strings of which a line must contain one to be parsed at all (a cheap
    pre-filter, e.g. ``(b'"userAgent":"kopf/',)``).
    """
    once = _Once()
    for file in log_files(path):
        if file != path and file.stat().st_mtime < since:
            continue
        with file.open("rb") as f:
            for call in _parse(f, once, keep):
                if call.when >= since:
                    yield call


def writes(
    path: Path,
    namespace: str,
    since: float,
    until: float | None = None,
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> Iterator[Call]:
    """Completed write requests in ``namespace`` by ``agents`` between two epoch times
    (``resource`` names the resource and subresource written, e.g. ``pythonapps/status``)."""
    for c in calls(path, since):
        if (
            c.is_write
            and c.namespace == namespace
            and c.agent.startswith(agents)
            and (until is None or c.when <= until)
        ):
            yield c


def count_writes(
    path: Path,
    namespace: str,
    since: float,
    until: float | None = None,
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> int:
    """Completed write requests in ``namespace`` by ``agents`` between two epoch times."""
    return sum(1 for _ in writes(path, namespace, since, until, agents))


class Follower:
    """Reads the log as the API server writes it: each :meth:`read` returns the new requests.

    Starts at the end of the current file (what was logged before is not returned). When the
    log rotates, the rest of the old file is read before the new one is opened.
    """

    def __init__(self, path: Path, keep: tuple[bytes, ...] = ()) -> None:
        self.path, self.keep = path, keep
        self.once = _Once()
        self.rest = b""
        self.file: IO[bytes] | None = None
        if path.exists():
            self.file = path.open("rb")
            self.file.seek(0, os.SEEK_END)

    def read(self) -> list[Call]:
        out: list[Call] = []
        while True:
            if self.file is None:
                if not self.path.exists():
                    return out
                self.file = self.path.open("rb")
            out += self._drain(self.file)
            try:
                current = self.path.stat()
            except FileNotFoundError:
                return out
            mine = os.fstat(self.file.fileno())
            if current.st_ino == mine.st_ino and current.st_size >= self.file.tell():
                return out
            # rotated (a new file under the name) or truncated: the old one is drained
            self.file.close()
            self.file, self.rest = None, b""

    def _drain(self, file: IO[bytes]) -> list[Call]:
        data = self.rest + file.read()
        lines = data.split(b"\n")
        self.rest = lines.pop()
        return list(_parse(lines, self.once, self.keep))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
