"""Clean start: nothing to run against ends in one line and exit 2; no CRD means unhealthy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.fake_watch import FakeWatchServer

from pythonapp_operator.controller import health
from pythonapp_operator.controller.manager import Controller, Settings

PYTHONAPP = Path(sys.executable).with_name("pythonapp")


def run_operator(tmp_path: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env |= {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    return subprocess.run(
        [str(PYTHONAPP), "operator", "--health", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_no_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run_operator(tmp_path, tmp_path / "missing")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Kubernetes configuration" in lines[0], proc.stderr


def test_an_unreachable_api_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    proc = run_operator(tmp_path, kubeconfig)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "127.0.0.1:1" in lines[0], lines


def test_without_the_crd_health_is_503_with_the_reason_and_recovers() -> None:
    async def main() -> None:
        server = FakeWatchServer()
        server.unserved.add("pythonapps")  # the PythonApp CRD is not installed
        controller = Controller(
            server,  # type: ignore[arg-type]
            Settings(workers=1, crd_poll_seconds=0.01),
            [],
            watch_api=server,  # type: ignore[arg-type]
        )
        controller.start()
        client = TestClient(TestServer(health.app(controller)))
        await client.start_server()
        try:
            for _ in range(200):
                if not controller.crd_installed:
                    break
                await asyncio.sleep(0.01)
            response = await client.get("/healthz")
            assert response.status == 503
            assert "CRD" in await response.text() and "kubectl apply" in await response.text()
            metrics = await (await client.get("/metrics")).text()
            assert "pythonapp_crd_installed 0.0" in metrics
            server.unserved.clear()
            for _ in range(200):
                if controller.crd_installed:
                    break
                await asyncio.sleep(0.01)
            assert (await client.get("/healthz")).status == 200
            await asyncio.wait_for(controller.synced.wait(), 10)  # listed (nothing to list)
            assert (await client.get("/readyz")).status == 200
        finally:
            await client.close()
            await controller.stop()

    asyncio.run(main())
