"""The operator as users run it, and what it costs: memory and CPU from /proc, caught-up time.

The process is started by ``tests/operator_process.OperatorProcess`` (the e2e tests' helper:
same command line, same SIGTERM shutdown), with the benchmark's own kubeconfig and settings.
A :class:`Sampler` thread reads ``/proc/<pid>/status`` (VmRSS, VmHWM) and ``/proc/<pid>/stat``
(utime + stime) four times a second, so any time window can be costed afterwards.

"Caught up" after a (re)start is read from the operator when it says so, else from the audit
log (:class:`CaughtUp`).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.error
import urllib.request
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.operator_process import OperatorProcess

from .calls import CallLog

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CAUGHT_UP_METRIC = re.compile(rb"^pythonapp_caught_up(\{[^}]*\})?\s+1(\.0+)?\s*$", re.MULTILINE)


class BenchError(RuntimeError):
    """The benchmark cannot go on (the message says why); no traceback is shown for it."""


class Operator(OperatorProcess):
    """``pythonapp operator ...`` with a clean error instead of a pytest failure."""

    def start_again(self) -> None:
        """Start a fresh process after :meth:`stop` (same log, command line and settings)."""
        self._start()

    def wait_healthy(self, timeout: float = 120) -> Operator:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the operator did not become healthy:\n{self.tail()}")
            time.sleep(0.2)
        return self


@dataclass(frozen=True)
class Sample:
    when: float
    rss_kib: int
    hwm_kib: int
    cpu_s: float


def read_sample(pid: int) -> Sample | None:
    """One reading of a process's memory and CPU time, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    mem = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            mem[key] = int(value.split()[0])
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return Sample(time.time(), mem.get("VmRSS", 0), mem.get("VmHWM", 0), cpu)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process (absent: gone)."""
    out = {}
    for name, pid in pids.items():
        sample = read_sample(pid)
        if sample is not None:
            out[name] = sample.cpu_s
    return out


def cpu_between(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two :func:`cpu_seconds` readings, and their sum:
    on two shared cores the cluster's own CPU is what a client's extra work slows, so a ratio
    is read beside where the machine's CPU went in the same window."""
    used = {n: round(end[n] - start[n], 1) for n in start if n in end}
    used["total"] = round(sum(used.values()), 1)
    return used


@dataclass(frozen=True)
class Usage:
    """CPU and memory of one process over one window."""

    seconds: float
    cpu_s: float
    rss_start_mib: float
    rss_end_mib: float
    rss_peak_mib: float

    def to_json(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 1),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_percent": round(100 * self.cpu_s / self.seconds, 1) if self.seconds else 0.0,
            "rss_start_mib": round(self.rss_start_mib, 1),
            "rss_end_mib": round(self.rss_end_mib, 1),
            "rss_peak_mib": round(self.rss_peak_mib, 1),
        }


class Sampler:
    """Samples one pid until it exits or :meth:`stop` is called."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        first = read_sample(pid)
        if first is not None:
            self.samples.append(first)
        self.thread = threading.Thread(target=self._run, name=f"sample-{pid}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            s = read_sample(self.pid)
            if s is None:
                return
            with self.lock:
                self.samples.append(s)

    def now(self) -> Sample:
        s = read_sample(self.pid)
        if s is None:
            with self.lock:
                return self.samples[-1]
        with self.lock:
            self.samples.append(s)
        return s

    def _at(self, when: float) -> Sample:
        """The last sample taken at or before ``when`` (the first one if none)."""
        times = [s.when for s in self.samples]
        return self.samples[max(bisect_right(times, when) - 1, 0)]

    def usage(self, since: float, until: float | None = None) -> Usage:
        if until is None:
            self.now()
        with self.lock:
            start = self._at(since)
            end = self._at(until) if until is not None else self.samples[-1]
            inside = [s.rss_kib for s in self.samples if start.when <= s.when <= end.when]
        return Usage(
            seconds=end.when - start.when,
            cpu_s=end.cpu_s - start.cpu_s,
            rss_start_mib=start.rss_kib / 1024,
            rss_end_mib=end.rss_kib / 1024,
            rss_peak_mib=max(inside or [end.rss_kib]) / 1024,
        )

    @property
    def peak_mib(self) -> float:
        """Peak resident memory of the process's life so far (the kernel's VmHWM)."""
        with self.lock:
            return max((s.hwm_kib for s in self.samples), default=0) / 1024

    @property
    def cpu_s(self) -> float:
        with self.lock:
            return self.samples[-1].cpu_s if self.samples else 0.0

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback, http)
            return bytes(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class CaughtUp:
    """When a freshly started operator has caught up with the apps it found.

    Preferred signal: one of ``urls`` (by default the health address's ``/metrics`` and
    ``/readyz``) serves the line ``pythonapp_caught_up 1``. An operator that does not offer the
    metric at all gets the audit log as a fallback (a converged restart makes no call, so
    silence alone would end the wait before the reconciles do): caught up at its last call
    before ``quiet`` seconds without any call at all (its watches count when opened, so they
    do not keep it "busy").
    """

    calls: CallLog
    user: str
    urls: list[str]
    quiet: float = 5.0

    def wait(self, since: float, timeout: float) -> dict[str, Any]:
        deadline = time.time() + timeout
        offered = False  # once the operator serves the metric at all, only the metric counts
        while time.time() < deadline:
            for url in self.urls:
                body = _get(url)
                if body is not None and CAUGHT_UP_METRIC.search(body):
                    return {"signal": url, "caught_up_at": time.time()}
                offered = offered or (body is not None and b"pythonapp_caught_up" in body)
            last = self.calls.last(self.user, since)
            if not offered and last is not None and time.time() - last >= self.quiet:
                return {"signal": f"audit log: no call for {self.quiet:g}s", "caught_up_at": last}
            time.sleep(0.25)
        raise BenchError(f"the operator did not catch up within {timeout:.0f}s of its start")
