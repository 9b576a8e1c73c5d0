"""The Gateway API's HTTPRoute CRD for tests, from the Go module proxy, cached outside the repo.

The dev cluster has no Gateway API: its CRDs are not part of Kubernetes. They are published in
the ``sigs.k8s.io/gateway-api`` Go module (``config/crd/standard/``), which the module proxy
serves, the way the control plane's sources come (devcluster/build-controlplane.sh): one
``go mod download`` into Go's module cache, and the one file the tests install copied to
``~/.cache/pythonapp-operator/gateway-api/<version>/`` (kept between runs, as CI keeps
``~/.cache``; never committed). A missing ``go`` or an unreachable proxy is a failure that says
so, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import wait_for

from pythonapp_operator.devcluster.paths import cache_root

if TYPE_CHECKING:
    from tests.e2e.conftest import Kubectl

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.6.3"
HTTPROUTE_CRD = "gateway.networking.k8s.io_httproutes.yaml"
CRD_NAME = "httproutes.gateway.networking.k8s.io"


class GatewayApiUnavailable(RuntimeError):
    """The CRD could not be had; the message says how to get it."""


def httproute_crd() -> Path:
    """The standard channel's HTTPRoute CRD of :data:`VERSION`, downloaded once."""
    cached = cache_root() / "gateway-api" / VERSION / HTTPROUTE_CRD
    if cached.is_file():
        return cached
    go = shutil.which("go")
    if go is None:
        raise GatewayApiUnavailable(
            f"the Gateway API CRDs come from the Go module {MODULE}@{VERSION} and `go` is not "
            f"on PATH: install Go, or put {HTTPROUTE_CRD} (config/crd/standard/ of that module) "
            f"at {cached}"
        )
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory() as workdir:  # outside any Go module of the repo
        proc = subprocess.run(
            [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=workdir,
            env=env,
        )
    if proc.returncode != 0:
        raise GatewayApiUnavailable(
            f"`go mod download {MODULE}@{VERSION}` failed (is the module proxy reachable?): "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    source = Path(json.loads(proc.stdout)["Dir"]) / "config" / "crd" / "standard" / HTTPROUTE_CRD
    if not source.is_file():
        raise GatewayApiUnavailable(f"{MODULE}@{VERSION} has no {source}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    shutil.copyfile(source, partial)
    partial.replace(cached)
    return cached


def install(k: Kubectl) -> None:
    """The HTTPRoute CRD applied (server-side, idempotent) and Established; left installed."""
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(httproute_crd()))
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'

    def established() -> bool:
        got = k.run("get", f"crd/{CRD_NAME}", "-o", f"jsonpath={jsonpath}", check=False)
        return got.stdout.strip() == "True"

    wait_for(established, 60, f"the CRD {CRD_NAME} Established")
