"""`python -m bench` end to end with 20 apps and short phases: the harness still works.

No timed assertions (the machine is shared); only that every phase ran, saw every object it
waited for, and counted calls the way the audit log must count them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
APPS = 20
STEADY = 6  # 2 per second for 3 seconds


def run_bench(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` on the test cluster; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.mark.cluster
def test_bench_smoke(cluster: Cluster, tmp_path: Path) -> None:
    if not cluster.is_devcluster:
        pytest.skip("the benchmark reads the audit log of `pythonapp dev`")
    args = [
        "--apps", str(APPS), "--steady-rate", "2", "--steady-seconds", "3", "--idle", "4",
        "--resync", "5", "--noise", "30", "--noise-namespaces", "2", "--settle", "2",
        "--noise-secrets", "20", "--noise-secret-kib", "8",
        "--quiet", "2", "--timeout-base", "150", "--timeout-per-app", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    proc = run_bench(args)
    assert "N=20 burst" in proc.stderr  # progress lines

    data = json.loads((tmp_path / "result.json").read_text())
    assert data["meta"]["options"]["concurrency"] == 16
    (r,) = data["results"]
    assert "error" not in r
    assert r["apps"] == APPS and r["run"] == 1 and r["ratio_to_baseline"] > 0
    assert data["sizes"][str(APPS)]["ratio_to_baseline"]["runs"] == [r["ratio_to_baseline"]]

    base = r["baseline"]
    assert base["latency_ms"]["count"] == APPS
    # exactly: create, five server-side applies, one status patch; no reads
    assert base["calls"]["writes_per_app"] == 7 and base["calls"]["reads"] == 0
    assert base["calls"]["per_app"]["patch deployments"] == 1

    burst = r["burst"]
    assert burst["latency_ms"]["count"] == APPS  # every Deployment seen by the watch
    assert 0 < burst["deployments_s"] <= burst["ready_s"]
    calls: dict[str, Any] = burst["calls"]
    # every child created (create-only applies: no GET first), the status patched; no more
    # reads than writes
    assert calls["writes_per_app"] >= 6 and calls["per_app"]["patch deployments"] == 1
    assert calls["reads_per_app"] <= calls["writes_per_app"]
    # the only GETs: discovery, and each app's Secret read once for its hash (rotation)
    gets = {k: v for k, v in calls["per_app"].items() if k.startswith("get ")}
    assert set(gets) <= {"get discovery", "get secrets"}, gets
    assert gets.get("get secrets", 0) <= 1, gets
    assert any(a.startswith("pythonapp-operator") for a in calls["by_agent"])
    assert burst["usage"]["cpu_s"] > 0 and burst["usage"]["rss_peak_mib"] > 0
    assert burst["cpu_ms_per_app"] > 0
    # the load the cluster holds: kwok runs each app's two pods; each app's own Secret
    assert burst["pods"] == 2 * APPS and burst["referenced_secrets"] == APPS

    assert r["idle"]["seconds"] >= 10 and r["idle"]["usage"]["cpu_s"] >= 0  # 2 x resync
    assert r["noise"]["objects"] == 30
    # unreferenced Secrets in the apps' namespace make the converged operator write nothing
    secret_noise = r["secret_noise"]
    assert secret_noise["secrets"] == 20 and secret_noise["kib_each"] == 8
    assert secret_noise["writes"] == 0, secret_noise["calls"]
    restart = r["restart"]
    assert restart["sigterm_exit_code"] == 0 and restart["caught_up_s"] > 0
    assert restart["reads"] > 0  # it listed what it watches
    # kopf's own requests count too (its watches; kopf sends them with the operator's user
    # agent or its own, depending on how it found the credentials). Looked for over the
    # operator's whole life: a watch is counted when opened, which may be outside every phase's
    # window (before the burst began; after the restarted operator's caught-up signal).
    whole: dict[str, Any] = r["operator"]["calls"]
    keys = {key for by_key in whole["by_agent"].values() for key in by_key}
    assert any(key.startswith("watch ") for key in keys), keys
    assert whole["writes"] >= burst["calls"]["writes"] and whole["reads"] >= restart["reads"]
    assert r["update"]["latency_ms"]["count"] == APPS
    assert r["steady"]["create"]["latency_ms"]["count"] == STEADY
    # both steady phases began over settled pods (waited for, not assumed: a number of seconds,
    # within the phase's timeout)
    for settle in (r["steady"]["create"]["settle_s"], r["baseline"]["steady"]["settle_s"]):
        assert isinstance(settle, float) and 0 <= settle < 150 + 2 * APPS, settle
    # the API server's own time for each client's writes in its steady window (audit log)
    for server in (
        r["steady"]["create"]["server_write_ms"],
        r["baseline"]["steady"]["server_write_ms"],
    ):
        assert server["count"] >= STEADY * 5 and 0 < server["p50"] <= server["p99"], server
    assert r["baseline"]["steady"]["latency_ms"]["count"] == STEADY  # the cluster's own figure
    assert r["steady"]["edit"]["count"] == STEADY
    op = r["operator"]
    assert op["sigterm_exit_code"] == 0 and op["peak_rss_mib"] > 0 and op["processes"] == 2

    latencies = json.loads((tmp_path / "latency.json").read_text())[str(APPS)]
    assert len(latencies["burst.latency_ms"]) == APPS
    summary = (tmp_path / "summary.md").read_text()
    assert f"| apps | {APPS} |" in summary and "ratio_to_baseline" in summary


@pytest.mark.cluster
def test_bench_smoke_with_migrations_and_autoscaling(cluster: Cluster, tmp_path: Path) -> None:
    """``--migrate --autoscaling``: both clients run a migration Job before each Deployment and
    create it at the HPA's floor; the report says where the machine's CPU went."""
    if not cluster.is_devcluster:
        pytest.skip("the benchmark reads the audit log of `pythonapp dev`")
    apps = 4
    skip = [a for phase in ("idle", "noise", "secret-noise", "restart", "update", "steady")
            for a in ("--skip", phase)]  # fmt: skip
    args = ["--apps", str(apps), "--migrate", "--autoscaling", "--quiet", "2",
            "--timeout-base", "150", "--out", str(tmp_path), *skip]  # fmt: skip
    run_bench(args)
    (r,) = json.loads((tmp_path / "result.json").read_text())["results"]
    assert "error" not in r
    for phase in ("baseline", "burst"):
        calls = r[phase]["calls"]
        # a Job and an HPA per app, written once each, by both clients
        assert calls["per_app"]["patch jobs"] == 1, (phase, calls["per_app"])
        assert calls["per_app"]["patch horizontalpodautoscalers"] == 1, phase
        assert calls["per_app"]["patch deployments"] == 1, phase
        cpu = r[phase]["cluster_cpu_s"]
        assert cpu["kube-apiserver"] > 0 and cpu["total"] >= cpu["kube-apiserver"], cpu
    assert r["burst"]["cluster_cpu_s"]["operator"] > 0
    # each app's two pods and its finished migration pod
    assert r["burst"]["pods"] == 3 * apps
