"""A sample Python web app that follows the practices pythonapp-operator assumes.

Standard library only (http.server), so the example carries no dependency to lock or patch.
What it shows, and where the operator meets it:

* Health: ``GET /health`` answers liveness (and the startup probe). It reports the dependency
  checks but fails only when the process itself is broken: a database outage must not make
  Kubernetes restart every pod. ``GET /health?probe=readiness`` (the operator's default
  readiness path) fails while start-up work runs, while draining after SIGTERM, and while a
  dependency is down: the pod leaves the Service until it can serve again.
* Logs: one JSON object per line on stdout (time, level, message, fields), access log included.
* Secrets: read at run time from ``/run/secrets/<name>/<key>`` (the operator mounts each Secret
  there, read-only, without subPath), with an environment variable as fallback for local runs.
  The file is re-read periodically, so a rotated Secret reaches the app without a restart.
  Secret values are never logged.
* Shutdown: on SIGTERM the app reports not ready, stops accepting connections, lets in-flight
  requests finish (bounded by ``SHUTDOWN_TIMEOUT``, below the pod's grace period), then exits 0.

Configuration (environment):
  PORT (8000; 0 picks a free port, logged as ``listening``), HOST (0.0.0.0),
  SECRETS_DIR (/run/secrets), API_TOKEN (fallback for the Secret sample-app-api, key token),
  DATABASE_ADDR (host:port of a dependency; none when empty), WARMUP_SECONDS (0),
  SECRET_REFRESH_SECONDS (30), SHUTDOWN_TIMEOUT (20), LOG_LEVEL (info).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SECRET_NAME, SECRET_KEY, SECRET_ENV = "sample-app-api", "token", "API_TOKEN"
MAX_SLOW_SECONDS = 30.0
log = logging.getLogger("app")


# -- logging -----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def info(message: str, **fields: Any) -> None:
    log.info(message, extra={"fields": fields})


# -- configuration and secrets -----------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    secrets_dir: Path
    database_addr: str
    warmup_seconds: float
    secret_refresh_seconds: float
    shutdown_timeout: float
    log_level: str

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Config:
        return cls(
            host=env.get("HOST", "0.0.0.0"),  # noqa: S104 (a container listens on all addresses)
            port=int(env.get("PORT", "8000")),
            secrets_dir=Path(env.get("SECRETS_DIR", "/run/secrets")),
            database_addr=env.get("DATABASE_ADDR", ""),
            warmup_seconds=float(env.get("WARMUP_SECONDS", "0")),
            secret_refresh_seconds=float(env.get("SECRET_REFRESH_SECONDS", "30")),
            shutdown_timeout=float(env.get("SHUTDOWN_TIMEOUT", "20")),
            log_level=env.get("LOG_LEVEL", "info"),
        )


class MissingSecret(Exception):
    """Neither the mounted file nor the fallback variable holds the secret."""


def read_secret(root: Path, name: str, key: str, env_var: str) -> tuple[str, str]:
    """(value, where it came from): the mounted file first, then the environment."""
    path = root / name / key
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value, "file"
    value = os.environ.get(env_var, "").strip()
    if value:
        return value, "env"
    raise MissingSecret(f"no secret: mount Secret {name} (key {key}) at {path}, or set {env_var}")


# -- state -------------------------------------------------------------------------------------


class State:
    """What the probes and handlers read; changed by start-up, shutdown and the refresher."""

    def __init__(self, config: Config, token: str) -> None:
        self.config = config
        self.started = threading.Event()
        self.draining = threading.Event()
        self._token = token
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.in_flight = 0

    @property
    def token(self) -> str:
        with self._lock:
            return self._token

    def set_token(self, token: str) -> bool:
        with self._lock:
            changed, self._token = token != self._token, token
            return changed

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self.in_flight == 0, timeout)

    def dependency_checks(self) -> dict[str, str]:
        """ "ok" or the error, per dependency (a TCP connect with a short timeout)."""
        checks: dict[str, str] = {}
        if self.config.database_addr:
            host, _, port = self.config.database_addr.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=1.0):
                    checks["database"] = "ok"
            except (OSError, ValueError) as exc:
                checks["database"] = f"unreachable: {exc}"
        return checks


# -- HTTP --------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: Server
    timeout = 10  # seconds to read a request: an idle connection cannot hold a shutdown

    def do_GET(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        status = HTTPStatus.NOT_FOUND
        try:
            if url.path == "/health":
                status = self.health(query.get("probe", ["liveness"])[0])
            elif url.path.startswith("/api/"):
                status = self.api(url.path, query)
            else:
                self.reply(status, {"error": "not found"})
        finally:
            info(
                "request",
                method="GET",
                path=url.path,
                status=int(status),
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )

    def health(self, probe: str) -> HTTPStatus:
        state = self.server.state
        checks = state.dependency_checks()
        if probe != "readiness":  # liveness and startup: is this process able to serve?
            return self.reply(HTTPStatus.OK, {"status": "ok", "checks": checks})
        if not state.started.is_set():
            status = "starting"
        elif state.draining.is_set():
            status = "draining"
        elif any(result != "ok" for result in checks.values()):
            status = "dependency unavailable"
        else:
            return self.reply(HTTPStatus.OK, {"status": "ready", "checks": checks})
        return self.reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": status, "checks": checks})

    def api(self, path: str, query: dict[str, list[str]]) -> HTTPStatus:
        sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), self.server.state.token.encode()):
            return self.reply(HTTPStatus.UNAUTHORIZED, {"error": "a valid bearer token is needed"})
        if path == "/api/hello":
            return self.reply(HTTPStatus.OK, {"message": "hello"})
        if path == "/api/slow":
            seconds = min(float(query.get("seconds", ["1"])[0]), MAX_SLOW_SECONDS)
            info("slow request started", seconds=seconds)
            time.sleep(seconds)
            return self.reply(HTTPStatus.OK, {"slept": seconds})
        return self.reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def reply(self, status: HTTPStatus, body: dict[str, Any]) -> HTTPStatus:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's own lines (errors such as a bad request line), as JSON."""
        log.warning(format % args, extra={"fields": {"client": self.client_address[0]}})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log is written by do_GET, with the duration."""


class Server(ThreadingHTTPServer):
    """One thread per connection; counts connections in flight for a graceful shutdown."""

    daemon_threads = True  # a request stuck past SHUTDOWN_TIMEOUT must not keep the pod alive
    block_on_close = False  # server_close() only closes the socket; shutdown() waits (bounded)

    def __init__(self, address: tuple[str, int], state: State) -> None:
        self.state = state
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.state.enter()  # counted in the accepting thread, before shutdown() can return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.state.leave()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.state.leave()


# -- background work ---------------------------------------------------------------------------


def warm_up(state: State) -> None:
    """Start-up work (load caches, check migrations...): the app is not ready until it is done."""
    time.sleep(state.config.warmup_seconds)
    state.started.set()
    info("ready")


def refresh_secret(state: State, stop: threading.Event) -> None:
    """Re-read the mounted Secret: Kubernetes updates the files in place when it changes."""
    config = state.config
    while not stop.wait(config.secret_refresh_seconds):
        try:
            token, source = read_secret(config.secrets_dir, SECRET_NAME, SECRET_KEY, SECRET_ENV)
        except (MissingSecret, OSError) as exc:
            log.warning("secret not reloaded: %s", exc)
            continue
        if state.set_token(token):
            info("secret reloaded", secret=SECRET_NAME, key=SECRET_KEY, source=source)


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    config = Config.from_env(dict(os.environ))
    setup_logging(config.log_level)
    try:
        token, source = read_secret(config.secrets_dir, SECRET_NAME, SECRET_KEY, SECRET_ENV)
    except MissingSecret as exc:
        log.error("cannot start: %s", exc)
        return 2
    info("secret loaded", secret=SECRET_NAME, key=SECRET_KEY, source=source)

    # SIGTERM and SIGINT are taken synchronously by the main thread (sigwait); every thread
    # started from here inherits the block, so no handler runs in the middle of a request.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    state = State(config, token)
    server = Server((config.host, config.port), state)
    stop = threading.Event()
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    threading.Thread(target=warm_up, args=(state,), name="warm-up", daemon=True).start()
    threading.Thread(
        target=refresh_secret, args=(state, stop), name="secret-refresh", daemon=True
    ).start()
    info("listening", host=config.host, port=server.server_address[1])

    received = signal.sigwait(signals)
    state.draining.set()
    info("draining", signal=signal.Signals(received).name, in_flight=state.in_flight)
    server.shutdown()  # the accept loop ends
    server.server_close()  # new connections are refused from here
    info("stopped accepting connections", in_flight=state.in_flight)
    finished = state.wait_idle(config.shutdown_timeout)
    stop.set()
    info("stopped", in_flight=state.in_flight, clean=finished)
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
