"""Benchmark the operator on the local control plane: latency, writes, idle writes, memory.

    python bench/run.py [--apps 20] [--idle 30]

Starts `pythonapp dev` (if needed) and the operator as a real process, creates N PythonApps in a
fresh namespace, and reports:

- apply -> Ready latency per app (p50, p95, max), from the PythonApp's creation to its Ready
  condition's lastTransitionTime as the API server stored them;
- the operator's writes per app (from the API server's audit log, by user agent);
- writes while idle (everything Ready, nothing changing) over ``--idle`` seconds;
- writes after an operator restart over the existing apps;
- the operator's resident memory (VmRSS) once all apps are Ready.

It stops by itself, talks only to 127.0.0.1 and deletes its namespace at the end. Results go
to stdout as JSON (and a short table to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import audit, binaries

ROOT = Path(__file__).resolve().parents[1]
PYTHONAPP = Path(sys.executable).with_name("pythonapp")


def kubectl(*args: str, stdin: str | None = None) -> str:
    found = binaries.find()
    assert found is not None, "run `pythonapp dev up` first"
    return subprocess.run(
        [str(found.kubectl), "--kubeconfig", str(devcluster.kubeconfig_path()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def audit_writes(namespace: str, since: float) -> int:
    return audit.count_writes(audit.log_path(), namespace, since=since)


def start_operator(log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(devcluster.kubeconfig_path())}
    proc = subprocess.Popen(
        [str(PYTHONAPP), "operator", "--all-namespaces", "--health", "127.0.0.1:18181"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    time.sleep(3)
    return proc


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def app(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonApp",
        "metadata": {"name": f"app-{i:03d}", "namespace": namespace},
        "spec": {
            "image": f"ghcr.io/acme/app:1.{i}.0@sha256:{'c3' * 32}",
            "replicas": 2,
            "resources": {"limits": {"memory": "128Mi"}},
        },
    }


def all_ready(namespace: str) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = json.loads(
        kubectl("get", "pyapp", "-n", namespace, "-o", "json")
    )["items"]
    for item in items:
        conds = {c["type"]: c for c in (item.get("status") or {}).get("conditions") or []}
        if conds.get("Ready", {}).get("status") != "True":
            return None
    return items


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()

    devcluster.up(log=lambda line: print(line, file=sys.stderr))
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds" / "pythonapps.yaml")
    )
    kubectl("wait", "--for=condition=Established", "crd/pythonapps.pythonapp.dev")
    namespace = f"bench-{int(time.time())}"
    kubectl("create", "namespace", namespace)
    log = Path(tempfile.gettempdir()) / f"{namespace}-operator.log"
    op = start_operator(log)
    result: dict[str, Any] = {"apps": args.apps}
    try:
        t0 = time.time()
        kubectl(
            "apply",
            "--server-side",
            "-f",
            "-",
            stdin=yaml.safe_dump_all([app(namespace, i) for i in range(args.apps)]),
        )
        deadline = time.time() + 300
        items = None
        while items is None and time.time() < deadline:
            time.sleep(0.5)
            items = all_ready(namespace)
        if items is None:
            raise SystemExit("not all apps became Ready within 300 s")
        t_ready = time.time()
        latencies = []
        for item in items:
            ready = next(c for c in item["status"]["conditions"] if c["type"] == "Ready")
            latencies.append(
                stamp(ready["lastTransitionTime"]) - stamp(item["metadata"]["creationTimestamp"])
            )
        latencies.sort()
        result["apply_to_ready_s"] = {
            "p50": statistics.median(latencies),
            "p95": latencies[max(0, int(len(latencies) * 0.95) - 1)],
            "max": latencies[-1],
            "all_ready_wall_s": round(t_ready - t0, 2),
        }
        time.sleep(3)
        writes = audit_writes(namespace, since=t0 - 1)
        result["writes_per_app_to_ready"] = round(writes / args.apps, 2)
        result["operator_rss_mib"] = round(rss_kib(op.pid) / 1024, 1)
        idle_from = time.time()
        time.sleep(args.idle)
        result["idle_writes"] = {
            "seconds": args.idle,
            "writes": audit_writes(namespace, since=idle_from),
        }
        op.send_signal(signal.SIGTERM)
        result["sigterm_exit_code"] = op.wait(timeout=30)
        restart_from = time.time()
        op = start_operator(log)
        time.sleep(10)
        result["writes_after_restart"] = audit_writes(namespace, since=restart_from)
    finally:
        op.send_signal(signal.SIGTERM)
        try:
            op.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.kill()
        kubectl("delete", "namespace", namespace, "--wait=false")
    print(json.dumps(result, indent=2))
    lat = result["apply_to_ready_s"]
    print(
        f"{args.apps} apps: apply->Ready p50 {lat['p50']:.1f}s p95 {lat['p95']:.1f}s "
        f"max {lat['max']:.1f}s; {result['writes_per_app_to_ready']} writes/app; "
        f"idle writes {result['idle_writes']['writes']} in {args.idle:.0f}s; "
        f"after restart {result['writes_after_restart']}; "
        f"operator RSS {result['operator_rss_mib']} MiB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
