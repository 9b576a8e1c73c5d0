"""Start, check and stop the component processes, by pid, safely.

A pid alone is not an identity: after a crash or a reboot the number can belong to someone
else's process. Each record therefore keeps the kernel's start time of the process
(``/proc/<pid>/stat`` field 22); a pid whose start time differs is treated as dead and is never
signalled. Processes run in their own session so they outlive ``pythonapp dev up`` and a Ctrl-C in
the terminal does not reach them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Popen objects of processes started by this Python process: kept so they can be reaped (a
crashed child would otherwise linger as a zombie that looks alive) and are not garbage-collected
with a ResourceWarning."""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a pid, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), the second half of its identity."""
    st = _stat(pid)
    return None if st is None else st[1]


def spawn(argv: list[str], log_path: Path) -> tuple[int, int]:
    """Start ``argv`` detached, output appended to ``log_path``; return (pid, start ticks)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    ticks = start_ticks(proc.pid)
    if ticks is None:  # died before we could look: report it as such
        proc.poll()
        return proc.pid, -1
    return proc.pid, ticks


def alive(pid: int, ticks: int) -> bool:
    """True if ``pid`` is still the process we started and is not a zombie."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    st = _stat(pid)
    return st is not None and st[1] == ticks and st[0] not in ("Z", "X")


def stop(pid: int, ticks: int, grace: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; no-op if it is not ours any more."""
    if not alive(pid, ticks):
        _reap(pid)
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid, ticks):
            _reap(pid)
            return
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while alive(pid, ticks) and time.monotonic() < deadline:
        time.sleep(0.05)
    _reap(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status of our own child; for others give init a moment to do it.

    A component started by an earlier ``pythonapp dev up`` is re-parented to init, which reaps
    it shortly after it dies; waiting briefly means ``pgrep`` right after ``down`` finds nothing.
    """
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)
        return
    deadline = time.monotonic() + 2.0
    while _stat(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process in KiB (``VmRSS``), for status and measurements."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None
