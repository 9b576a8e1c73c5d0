"""`pythonapp operator` as a real process for tests: started as a user would, log in a file.

Shared by tests/e2e (admin credentials) and tests/deploy (a token of the shipped
ServiceAccount), so both exercise the same command line and the same shutdown path.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PYTHONAPP = Path(sys.executable).with_name("pythonapp")
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """One operator process; ``restart()`` replaces it with a fresh one (same log)."""

    def __init__(
        self, kubeconfig: Path, log: Path, args: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.kubeconfig, self.log, self.args = kubeconfig, log, list(args)
        self.extra_env = dict(env or {})
        self._start()

    def _start(self) -> None:
        self.health = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        env |= {"KUBECONFIG": str(self.kubeconfig), **self.extra_env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(PYTHONAPP), "operator", *self.args, "--health", self.health],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.health}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 60) -> OperatorProcess:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"operator not healthy:\n{self.tail()}", pytrace=False)
            time.sleep(0.3)
        return self

    def tail(self) -> str:
        """The end of the log, for failure messages only (checks read the whole log)."""
        return self.log.read_text(errors="replace")[-4000:]

    def text(self) -> str:
        """The whole log."""
        return self.log.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as {"name{label=value,...}": value} (labels sorted)."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://{self.health}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def wait_caught_up(self, timeout: float = 60) -> OperatorProcess:
        """Until the operator says it has listed everything and drained its queue.

        ``pythonapp_caught_up`` is 1 once every watched kind is listed and every key queued so
        far is processed: after it, a restarted operator has done all it will do.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.metrics().get("pythonapp_caught_up") == 1.0:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"operator never caught up:\n{self.tail()}", pytrace=False)
            time.sleep(0.3)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log, one dict per line (non-JSON lines as {"message": line})."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"message": line})
        return out

    def stop(self) -> int | None:
        """SIGTERM; the exit code, or None if it did not exit within STOP_SECONDS."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def restart(self) -> int | None:
        """Stop (SIGTERM) and start again; returns the old process's exit code."""
        code = self.stop()
        self._start()
        self.wait_healthy()
        return code
