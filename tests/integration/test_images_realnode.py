"""The image pipeline for the real node, with the real tools: examples/app built without
Docker, pushed to a loopback registry this module starts, resolved by digest, and run on the
image's own python as uid 10001.

Marked ``realnode`` (root and the Debian packages of scripts/realnode-packages.sh; no cluster
is started). A missing prerequisite is a failure saying how to get it. The base rootfs is the
shared cache's (~/.cache/pythonapp-operator/images): the first run builds it (30-130 s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pythonapp_operator.api.image import parse_image
from pythonapp_operator.cli import main
from pythonapp_operator.devcluster import images, registry

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "app"
TOOLS = ("mmdebstrap", "umoci", "skopeo", "docker-registry")


def _require_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail("building and unpacking images needs root (mmdebstrap, chroot)", pytrace=False)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run `bash scripts/realnode-packages.sh` as root",
            pytrace=False,
        )


@dataclass(frozen=True)
class Built:
    state_dir: Path
    """A dev cluster's state dir as far as the image commands care: its registry is there."""
    registry: registry.Registry
    ref: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A registry of this module's own, and examples/app's image pushed to it."""
    _require_prerequisites()
    state_dir = tmp_path_factory.mktemp("state")
    root = registry.root_of(state_dir)
    reg = registry.start(root)
    try:
        yield Built(state_dir, reg, images.build(APP, reg.address, "sample-app"))
    finally:
        registry.stop(root)


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, check=False
    )


def test_the_reference_is_a_pythonapp_image_on_loopback(built: Built) -> None:
    ref = parse_image(built.ref)  # what a PythonApp's spec.image accepts
    assert ref.registry == built.registry.address
    assert ref.registry.startswith("127.0.0.1:")
    assert ref.repository == "sample-app"
    assert registry.alive(built.registry)


def test_the_digest_resolves_with_the_dockerfiles_config(built: Built) -> None:
    out = _skopeo("inspect", "--tls-verify=false", "--config", f"docker://{built.ref}")
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)["config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Cmd"] == ["python3", "/app/app.py"]
    assert "Entrypoint" not in cfg or not cfg["Entrypoint"]
    assert cfg["WorkingDir"] == "/app"
    assert {"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PORT=8000"} <= set(cfg["Env"])

    manifest = _skopeo("inspect", "--tls-verify=false", f"docker://{built.ref}")
    assert manifest.returncode == 0, manifest.stderr
    assert json.loads(manifest.stdout)["Digest"] == built.ref.split("@", 1)[1]


def test_a_digest_the_registry_lacks_does_not_resolve(built: Built) -> None:
    name, digest = built.ref.split("@", 1)
    other = "sha256:" + ("0" if digest[-1] != "0" else "1") * 64
    out = _skopeo("inspect", "--tls-verify=false", f"docker://{name}@{other}")
    assert out.returncode != 0
    assert "manifest unknown" in out.stderr.lower()


def test_the_same_inputs_give_the_same_digest(built: Built) -> None:
    assert images.build(APP, built.registry.address, "sample-app") == built.ref


def test_the_cli_prints_the_reference_alone_on_stdout(
    built: Built, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTHONAPP_DEV_STATE", str(built.state_dir))
    assert main(["dev", "image", "build", str(APP), "--name", "sample-app"]) == 0
    captured = capsys.readouterr()
    assert captured.out == built.ref + "\n"
    assert "[image " in captured.err  # progress on stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return int(resp.status)
    except (urllib.error.URLError, OSError):
        return None


def test_the_app_runs_on_the_images_python_as_uid_10001(built: Built, tmp_path: Path) -> None:
    pulled = _skopeo(
        "copy", "--src-tls-verify=false", f"docker://{built.ref}", f"oci:{tmp_path / 'oci'}:app"
    )
    assert pulled.returncode == 0, pulled.stderr
    unpack = subprocess.run(
        ["umoci", "unpack", f"--image={tmp_path / 'oci'}:app", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unpack.returncode == 0, unpack.stderr
    rootfs = tmp_path / "bundle" / "rootfs"
    app = rootfs / "app" / "app.py"
    assert app.is_file()
    assert (rootfs / "app" / "__pycache__").is_dir()
    assert list((rootfs / "app" / "__pycache__").glob("app.cpython-3*.pyc"))
    assert not (rootfs / "app" / "Dockerfile").exists()
    st = app.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o644)  # the app cannot rewrite itself

    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "API_TOKEN": "t", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["/usr/sbin/chroot", "--userspec=10001:10001", str(rootfs), "python3", "/app/app.py"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while _health(port) != 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _health(port) == 200, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("message") == "listening" for line in lines)
    assert any(line.get("message") == "stopped" and line.get("clean") for line in lines)


def test_the_registry_is_found_again_and_stopped_by_its_record(tmp_path: Path) -> None:
    _require_prerequisites()
    first = registry.start(tmp_path)
    try:
        assert registry.start(tmp_path) == first  # idempotent: the running one
        assert registry.running(tmp_path) == first
        assert first.address.startswith("127.0.0.1:")
    finally:
        registry.stop(tmp_path)
    assert registry.running(tmp_path) is None
    assert not registry.answers(first.address)
    again = registry.start(tmp_path)  # a restart: same port, so stored references stay valid
    try:
        assert again.address == first.address
        assert again.pid != first.pid
    finally:
        registry.stop(tmp_path)
