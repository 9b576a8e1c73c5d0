"""examples/app: the sample app run as a local process, each practice checked by its outcome.

The app listens on a free 127.0.0.1 port (PORT=0; it logs the port it got). Waiting is bounded
polling on its JSON log lines or on answers, never a sleep followed by an assertion.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pythonapp_operator.cli import main as pythonapp

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "app"
TOKEN = "s3cret-token-value"
WAIT = 30.0  # an upper bound for things that take milliseconds (a busy CI machine)


class App:
    """The app as a child process, with its stdout parsed as JSON lines."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(APP_DIR / "app.py")],
            env={"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": "0", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.raw: list[str] = []
        self.logs: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.raw.append(line)
                try:
                    self.logs.append(json.loads(line))
                except json.JSONDecodeError:
                    self.logs.append({"unparsable": line})

    def wait_log(self, message: str, **fields: Any) -> dict[str, Any]:
        """The first log entry with this message (and fields), polling up to WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self._lock:
                for entry in self.logs:
                    if entry.get("message") == message and fields.items() <= entry.items():
                        return entry
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        pytest.fail(f"no log line {message!r} {fields} in:\n{''.join(self.raw)[-3000:]}")

    def start(self) -> App:
        self.port = int(self.wait_log("listening")["port"])
        return self

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310 (http://127.0.0.1)
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """A stand-in for /run/secrets with the Secret the manifest mounts."""
    (tmp_path / "sample-app-api").mkdir()
    (tmp_path / "sample-app-api" / "token").write_text(TOKEN + "\n")
    return tmp_path


@pytest.fixture
def run_app() -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def start(**env: str) -> App:
        app = App(env)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


@pytest.fixture(scope="module")
def rendered_probes() -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pythonapp_operator.cli", "render", str(APP_DIR / "pythonapp.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    deployment = next(yaml.safe_load_all(proc.stdout))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {
        kind: container[f"{kind}Probe"]["httpGet"]["path"]
        for kind in ("liveness", "readiness", "startup")
    }


def test_the_manifest_is_valid_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    assert pythonapp(["validate", "--strict", str(APP_DIR / "pythonapp.yaml")]) == 0
    assert capsys.readouterr().err == "1 PythonApp(s) valid\n"


def test_ready_after_start_up_work_and_liveness_before(
    run_app: Callable[..., App], secrets_dir: Path, rendered_probes: dict[str, str]
) -> None:
    """The operator's probe paths, as rendered: liveness answers while start-up work runs,
    readiness does not."""
    app = run_app(SECRETS_DIR=str(secrets_dir), WARMUP_SECONDS="600").start()
    assert app.get(rendered_probes["liveness"])[0] == 200
    assert app.get(rendered_probes["startup"])[0] == 200
    assert app.get(rendered_probes["readiness"]) == (503, {"status": "starting", "checks": {}})
    assert app.terminate() == 0


def test_readiness_follows_a_dependency_liveness_does_not(
    run_app: Callable[..., App], secrets_dir: Path, rendered_probes: dict[str, str]
) -> None:
    database = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{database.getsockname()[1]}"
    app = run_app(SECRETS_DIR=str(secrets_dir), DATABASE_ADDR=address).start()
    app.wait_log("ready")
    assert app.get(rendered_probes["readiness"]) == (
        200,
        {"status": "ready", "checks": {"database": "ok"}},
    )
    database.close()  # the database goes away
    status, body = app.get(rendered_probes["readiness"])
    assert (status, body["status"]) == (503, "dependency unavailable")
    assert body["checks"]["database"].startswith("unreachable")
    status, body = app.get(rendered_probes["liveness"])
    assert (status, body["status"]) == (200, "ok"), "a database outage must not restart pods"
    assert body["checks"]["database"].startswith("unreachable"), "but liveness reports it"
    assert app.terminate() == 0


def test_the_token_is_read_from_the_mounted_secret_file(
    run_app: Callable[..., App], secrets_dir: Path
) -> None:
    app = run_app(SECRETS_DIR=str(secrets_dir), API_TOKEN="env-value-not-used").start()
    assert app.wait_log("secret loaded")["source"] == "file"
    assert app.get("/api/hello", token=TOKEN) == (200, {"message": "hello"})
    assert app.get("/api/hello", token="env-value-not-used")[0] == 401
    assert app.get("/api/hello")[0] == 401
    assert app.terminate() == 0
    assert TOKEN not in "".join(app.raw), "a secret value reached the logs"


def test_a_rotated_secret_reaches_the_running_app(
    run_app: Callable[..., App], secrets_dir: Path
) -> None:
    app = run_app(SECRETS_DIR=str(secrets_dir), SECRET_REFRESH_SECONDS="0.1").start()
    (secrets_dir / "sample-app-api" / "token").write_text("rotated-token")
    app.wait_log("secret reloaded", source="file")
    assert app.get("/api/hello", token="rotated-token")[0] == 200
    assert app.get("/api/hello", token=TOKEN)[0] == 401
    assert app.terminate() == 0
    assert "rotated-token" not in "".join(app.raw)


def test_the_environment_is_the_fallback(run_app: Callable[..., App], tmp_path: Path) -> None:
    app = run_app(SECRETS_DIR=str(tmp_path), API_TOKEN="from-env").start()
    assert app.wait_log("secret loaded")["source"] == "env"
    assert app.get("/api/hello", token="from-env")[0] == 200
    assert app.terminate() == 0


def test_no_secret_at_all_fails_fast_with_a_json_line(
    run_app: Callable[..., App], tmp_path: Path
) -> None:
    app = run_app(SECRETS_DIR=str(tmp_path))
    assert app.proc.wait(timeout=WAIT) == 2
    entry = app.wait_log(
        "cannot start: no secret: mount Secret sample-app-api (key token) at "
        f"{tmp_path}/sample-app-api/token, or set API_TOKEN"
    )
    assert entry["level"] == "error"


SLOW = 5.0  # long enough that SIGTERM surely lands while the request runs (checked below)


def test_sigterm_lets_an_in_flight_request_finish(
    run_app: Callable[..., App], secrets_dir: Path
) -> None:
    app = run_app(SECRETS_DIR=str(secrets_dir)).start()
    result: dict[str, Any] = {}

    def slow_request() -> None:
        result["answer"] = app.get(f"/api/slow?seconds={SLOW}", token=TOKEN)

    client = threading.Thread(target=slow_request)
    client.start()
    app.wait_log("slow request started")
    app.proc.send_signal(signal.SIGTERM)
    assert app.wait_log("draining", signal="SIGTERM")["in_flight"] == 1
    app.wait_log("stopped accepting connections")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", app.port), timeout=WAIT).close()
    client.join(timeout=WAIT)
    assert result["answer"] == (200, {"slept": SLOW}), "the in-flight request was cut"
    assert app.proc.wait(timeout=WAIT) == 0
    assert app.wait_log("stopped")["clean"] is True
    assert app.wait_log("request", path="/api/slow")["status"] == 200


def test_every_log_line_is_json_with_the_usual_fields(
    run_app: Callable[..., App], secrets_dir: Path
) -> None:
    app = run_app(SECRETS_DIR=str(secrets_dir)).start()
    app.get("/health")
    app.get("/nowhere?token=should-not-be-logged")
    assert app.terminate() == 0
    app.stop()
    assert app.raw, "no log lines"
    for line in app.raw:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    access = [e for e in app.logs if e["message"] == "request"]
    assert [(e["path"], e["status"]) for e in access] == [("/health", 200), ("/nowhere", 404)]
    assert all(isinstance(e["duration_ms"], float) for e in access)
    assert "should-not-be-logged" not in "".join(app.raw), "query strings are not logged"
    assert app.proc.stderr is not None and app.proc.stderr.read() == ""
