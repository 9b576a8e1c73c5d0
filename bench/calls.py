"""API calls per client, counted by the API server: the audit log, read as it grows.

Each client of the benchmark runs as its own user (a client certificate of the dev cluster's
CA, see ``cluster.Identities``), so everything the operator *process* sends is attributed to it,
whatever user agent made the request: its own client (``pythonapp-operator/<version>``) and
kopf's (``kopf/<version>``) alike. Counts are broken down by user agent and by ``verb
resource`` (``get deployments``, ``patch pythonapps/status``, ``watch pythonapps``); a watch
counts once, when it is opened. Parsing stays in ``devcluster.audit``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pythonapp_operator.devcluster import audit

from .report import latency

USER_PREFIX = "pythonapp-bench-"
#: the leader election's own calls (``get``/``update``/``create leases``)
LEASES = frozenset({"leases"})


def key(call: audit.Call) -> str:
    """``verb resource``; API discovery (``GET /api``, ``/apis/<group>/<version>``) as one."""
    if call.resource.startswith(("/api/", "/apis/")) or call.resource in ("/api", "/apis"):
        return f"{call.verb} discovery"
    return call.key


@dataclass(frozen=True)
class Counts:
    """The calls of one user in one time window."""

    by_agent: dict[str, Counter[str]]
    write_seconds: tuple[float, ...] = ()
    """The API server's own time for each completed write (audit log: received to completed)."""

    def server_write_ms(self) -> dict[str, Any]:
        """:func:`report.latency` of :attr:`write_seconds` (without its samples): how fast the
        API server itself was for this client in this window (a slow phase reads differently
        when it was)."""
        summary = latency([s * 1000 for s in self.write_seconds])
        summary.pop("samples", None)
        return summary

    @property
    def by_call(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for calls in self.by_agent.values():
            total.update(calls)
        return total

    def _sum(self, verbs: frozenset[str]) -> int:
        return sum(
            n
            for key, n in self.by_call.items()
            if key.split(" ", 1)[0] in verbs and key.split(" ", 1)[-1] not in LEASES
        )

    @property
    def writes(self) -> int:
        """Writes about apps: the leader election's Lease renewals are counted apart
        (:attr:`lease_calls`), a fixed cost of a replica that leads, whatever the apps."""
        return self._sum(audit.WRITE_VERBS)

    @property
    def lease_calls(self) -> int:
        return sum(n for key, n in self.by_call.items() if key.split(" ", 1)[-1] in LEASES)

    @property
    def reads(self) -> int:
        return self._sum(audit.READ_VERBS)

    def to_json(self, apps: int) -> dict[str, Any]:
        """Totals, per app, and the breakdown (per app by ``verb resource``, raw by agent)."""
        per = max(apps, 1)
        return {
            "writes": self.writes,
            "reads": self.reads,
            "lease_calls": self.lease_calls,
            "writes_per_app": round(self.writes / per, 2),
            "reads_per_app": round(self.reads / per, 2),
            "per_app": {k: round(n / per, 3) for k, n in sorted(self.by_call.items())},
            "by_agent": {a: dict(sorted(c.items())) for a, c in sorted(self.by_agent.items())},
        }


class CallLog:
    """Follows the audit log in a thread and keeps the calls of the benchmark's users."""

    def __init__(self, path: Path) -> None:
        self.follower = audit.Follower(path, keep=(f'"username":"{USER_PREFIX}'.encode(),))
        self.calls: list[audit.Call] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.2):
            self.sync()

    def sync(self) -> None:
        """Read what the API server wrote so far (called before counting a window)."""
        with self.lock:
            self.calls += self.follower.read()

    def window(self, user: str, since: float, until: float | None = None) -> Counts:
        self.sync()
        by_agent: dict[str, Counter[str]] = {}
        took: list[float] = []
        with self.lock:
            for c in self.calls:
                if c.user == user and c.when >= since and (until is None or c.when <= until):
                    by_agent.setdefault(c.agent, Counter())[key(c)] += 1
                    if c.is_write and c.seconds is not None:
                        took.append(c.seconds)
        return Counts(by_agent, tuple(took))

    def last(self, user: str, since: float) -> float | None:
        """When ``user``'s latest call since ``since`` was received, or None."""
        self.sync()
        latest = None
        with self.lock:
            for c in reversed(self.calls):
                if c.when < since - 60:  # the log is in completion order: look a bit further
                    break
                if c.user == user and c.when >= since:
                    latest = c.when if latest is None else max(latest, c.when)
        return latest

    def settle(self, seconds: float = 1.5) -> None:
        """Let requests in flight reach the log before a window is counted."""
        time.sleep(seconds)
        self.sync()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        self.follower.close()
