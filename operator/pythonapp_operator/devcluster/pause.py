"""The real node's pause image, made without Docker and without a registry.

Every pod's sandbox runs a pause container; the usual one comes from registry.k8s.io, which
this machine cannot reach. This one is a tiny static Go program (sleep until SIGTERM or SIGINT)
packed into an OCI image with ``umoci`` and turned into a docker-archive with ``skopeo``, built
once and cached by a hash of its source (``$CACHE/images/``), then imported into containerd's
``k8s.io`` namespace with ``ctr`` on every start (seconds; a no-op when it is there).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import DevClusterError
from .paths import cache_root

SOURCE = """\
// pause: the sandbox process of the dev cluster's real node; it holds the pod's namespaces.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
"""
TAG = hashlib.sha256(SOURCE.encode()).hexdigest()[:12]
REF = f"localhost/pythonapp-pause:{TAG}"
"""The image reference (containerd's ``sandbox_image``; tests may run it with imagePullPolicy
Never, as it is already there)."""


def archive() -> Path:
    """Where the cached docker-archive is."""
    return cache_root() / "images" / f"pause-{TAG}.tar"


def _run(argv: list[str], cwd: Path, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="")
        r = subprocess.run(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    if r.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise DevClusterError(f"building the pause image failed at `{argv[0]}` ({log}):\n{tail}")


def ensure(log: Path) -> Path:
    """The cached archive, built first when missing (go, umoci, skopeo; about a second)."""
    target = archive()
    if target.is_file():
        return target
    for tool, pkg in (("go", "Go >= 1.22"), ("umoci", "umoci"), ("skopeo", "skopeo")):
        if shutil.which(tool) is None:
            raise DevClusterError(
                f"building the pause image needs {tool} ({pkg}); "
                "run scripts/realnode-packages.sh as root"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pause-", dir=target.parent) as tmp:
        work = Path(tmp)
        (work / "main.go").write_text(SOURCE)
        (work / "go.mod").write_text("module pythonapp.dev/pause\n\ngo 1.22\n")
        (work / "root").mkdir()
        _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "root/pause", "."], work, log)
        _run(["umoci", "init", "--layout", "oci"], work, log)
        _run(["umoci", "new", "--image", "oci:pause"], work, log)
        _run(["umoci", "insert", "--image", "oci:pause", "root/pause", "/pause"], work, log)
        _run(
            [
                "umoci",
                "config",
                "--image",
                "oci:pause",
                "--config.entrypoint",
                "/pause",
                "--config.user",
                "65535:65535",
            ],
            work,
            log,
        )
        _run(["skopeo", "copy", "oci:oci:pause", f"docker-archive:pause.tar:{REF}"], work, log)
        (work / "pause.tar").replace(target)
    return target


def import_into(ctr: str, socket: Path, log: Path) -> None:
    """Import the archive into containerd's ``k8s.io`` namespace (the CRI's)."""
    tar = ensure(log)
    argv = [ctr, "--address", str(socket), "-n", "k8s.io", "images", "import", str(tar)]
    _run(argv, tar.parent, log)
