"""The benchmark's command line: ``python -m bench --apps 500`` (``make bench``), or several
sizes in one go, ``--apps 100 500 2000`` (``make bench-curve``).

For each size it measures, in one run on the local dev cluster (``--repeat`` runs of each size:
on two shared cores one run is not a figure): the bare-client baseline, the operator's burst,
idle, noise, secret-noise, restart, update and steady-load figures (see ``phases``), and
writes ``build/bench/result.json``, ``latency.json``, ``summary.md`` and ``bench.png`` after
each run (each run, and the median and range of each size's runs). Progress goes to stderr.
A phase that does not converge within its timeout (``--timeout-base`` + ``--timeout-per-app``
x N seconds) fails the run with a message saying what was still missing; what was measured
until then is written.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pythonapp_operator import __version__, devcluster

from . import report
from .calls import CallLog
from .cluster import ROOT, delete_namespaces, leftover_namespaces, prepare
from .phases import SKIPPABLE, Options, Run
from .process import BenchError


def notes(opts: Options) -> list[str]:
    return [
        "Definitions. Latency: from the harness's watch receiving the PythonApp's ADDED event (an "
        "edit: the first event with the new image) to its watch receiving the Deployment's ADDED "
        "event (the first with the new image); both ends are watch receipts in the same process. "
        "Calls: the API server's audit log, every request of the operator's own user (its client "
        "and kopf's), a watch counted once when opened; reads = get/list/watch. Baseline: the "
        "fastest honest bare client (bench/baseline.py: aiohttp, at most --concurrency writes in "
        "flight across all apps; per app the PythonApp create, then the operator's own rendered "
        "children stage by stage, each stage's at once, create-only like the operator's, the "
        "Deployment after its isolation, then one status patch). Every app references a Secret "
        "of its own, made before it; kwok runs its 2 pods. Burst CPU per app: the operator "
        "process's CPU from the first create to the last app Ready, / N. Restart: caught up = "
        "the operator's "
        "`pythonapp_caught_up 1` metric if it serves one, else its last call before "
        f"{opts.quiet_seconds:g} s without any. CPU and RSS: /proc of the operator process. The "
        "machine is shared and noisy: compare ratios, not seconds, across runs."
        + (
            " --autoscaling: every app (for operator and bare client alike) has "
            "spec.autoscaling from 2 to 4 replicas, so an HPA child each."
            if opts.autoscaling
            else ""
        )
        + (
            " --migrate: every app (operator and bare client alike) has spec.migrate, so its "
            "Deployment waits for a migration Job's success (kwok completes its pod at once); "
            "the Jobs stay, with their pods, for their TTL."
            if opts.migrate
            else ""
        ),
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="The operator against the bare-client limit on the dev cluster (see "
        "bench/phases.py for the phases). Results in --out: summary.md, result.json, bench.png.",
    )
    p.add_argument("--apps", type=int, nargs="+", default=[500], help="sizes N (default 500)")
    p.add_argument(
        "--repeat", type=int, default=1, help="runs of each size (1); the report gives each run "
        "and each size's median and range",
    )  # fmt: skip
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    p.add_argument("--steady-rate", type=float, default=5.0, help="steady load per second (5)")
    p.add_argument("--steady-seconds", type=float, default=60.0, help="steady load time (60)")
    p.add_argument(
        "--idle",
        dest="idle_seconds",
        metavar="S",
        type=float,
        default=60.0,
        help="minimum idle window, s (60)",
    )
    p.add_argument(
        "--resync", dest="resync_seconds", metavar="S", type=float, default=30.0,
        help="operator resync interval, s (30); the idle window is at least twice as long, so "
        "a full resync falls inside it",
    )  # fmt: skip
    p.add_argument("--noise", type=int, default=1000, help="unowned objects (1000; 0 = skip)")
    p.add_argument("--noise-namespaces", type=int, default=10)
    p.add_argument(
        "--noise-secrets", type=int, default=1000,
        help="unreferenced Secrets in the apps' namespace (1000; 0 = skip)",
    )  # fmt: skip
    p.add_argument("--noise-secret-kib", type=int, default=100, help="KiB of data in each (100)")
    p.add_argument(
        "--settle",
        dest="settle_seconds",
        metavar="S",
        type=float,
        default=10.0,
        help="s after the noise is created (10)",
    )
    p.add_argument(
        "--quiet",
        dest="quiet_seconds",
        metavar="S",
        type=float,
        default=5.0,
        help="caught up after s without calls",
    )
    p.add_argument("--timeout-base", type=float, default=300.0)
    p.add_argument(
        "--timeout-per-app",
        type=float,
        default=2.0,
        help="a phase fails after --timeout-base (300) + this (2) x N seconds",
    )
    p.add_argument(
        "--autoscaling", action="store_true",
        help="every app autoscaled from 2 to 4 replicas (an HPA each, operator and bare client)",
    )  # fmt: skip
    p.add_argument(
        "--migrate", action="store_true",
        help="a migration Job before every app's Deployment (spec.migrate; operator and bare "
        "client), finished Jobs kept an hour with their pods",
    )  # fmt: skip
    p.add_argument("--nodes", type=int, help="resize the dev cluster: kwok nodes")
    p.add_argument("--pods-per-node", type=int, help="resize the dev cluster: pods per node")
    p.add_argument("--profile", action="store_true", help="py-spy the operator in the burst")
    p.add_argument(
        "--profile-gil", action="store_true", help="the same, sampling only the GIL holder (CPU)"
    )
    p.add_argument(
        "--operator-arg", action="append", default=[], help="extra `pythonapp operator` argument"
    )
    p.add_argument(
        "--caught-up-url", action="append", default=[], help="URL serving `pythonapp_caught_up "
        "1` when caught up ({health} = the health address); default /metrics and /readyz there",
    )  # fmt: skip
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=SKIPPABLE,
        help="leave a phase out (repeatable); baseline and burst always run",
    )
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    p.add_argument("--merge", action="store_true", help="keep other sizes from result.json")
    p.add_argument(
        "--report-only", action="store_true", help="only rewrite summary.md and bench.png in --out"
    )
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> Options:
    """The run's :class:`Options` from the parsed command line."""
    given = vars(args) | {
        "skip": frozenset(args.skip),
        "operator_args": tuple(args.operator_arg),
        "caught_up_urls": tuple(args.caught_up_url),
    }
    return Options(**{f.name: given[f.name] for f in fields(Options) if f.name in given})


def _git(*args: str) -> str:
    cmd = ["git", "-C", str(ROOT), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def meta(opts: Options, status: devcluster.ClusterStatus) -> dict[str, Any]:
    dirty = "+dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    size = status.sizing or devcluster.Sizing()
    # the last commit that changed the code the operator runs (the dev cluster's excluded)
    core = _git(
        "log", "-1", "--format=%h %cs", "--", "operator/pythonapp_operator",
        ":(exclude)operator/pythonapp_operator/devcluster",
        ":(exclude)operator/pythonapp_operator/cli.py",
    )  # fmt: skip
    return {
        "operator": f"pythonapp-operator {__version__}, controller code of {core} (checkout "
        f"{_git('rev-parse', '--short', 'HEAD')}{dirty})",
        "cluster": f"dev cluster k8s {devcluster.K8S_VERSION}, {size.nodes} kwok nodes x "
        f"{size.pods_per_node} pods",
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "options": {
            "concurrency": opts.concurrency,
            "steady_rate_per_s": opts.steady_rate,
            "steady_seconds": opts.steady_seconds,
            "idle_window_s": opts.idle_window,
            "resync_s": opts.resync_seconds,
            "noise": opts.noise,
            "noise_secrets": opts.noise_secrets,
            "noise_secret_kib": opts.noise_secret_kib,
            "quiet_s": opts.quiet_seconds,
            "autoscaling": opts.autoscaling,
            "migrate": opts.migrate,
            "skipped": sorted(opts.skip),
        },
        "notes": notes(opts),
    }


def measure(run: Run, result: dict[str, Any]) -> None:
    """Every phase in order, filling ``result`` as it goes (so a failure keeps the rest)."""
    result["baseline"] = run.baseline()
    result["burst"] = run.burst()
    result["ratio_to_baseline"] = round(
        result["burst"]["deployments_s"] / result["baseline"]["deployments_s"], 2
    )
    skip = run.opts.skip
    if "idle" not in skip:
        result["idle"] = run.idle()
    if run.opts.noise and "noise" not in skip:
        result["noise"] = run.noise(result.get("idle"))
    if run.opts.noise_secrets and "secret-noise" not in skip:
        result["secret_noise"] = run.secret_noise()
    if "restart" not in skip:
        result["restart"] = run.restart()
    if "update" not in skip:
        result["update"] = run.update()
    if "steady" not in skip:
        result["steady"] = run.steady()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only:
        report.rewrite(args.out)
        return 0
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[bench {time.time() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    opts = options(args)
    results: list[dict[str, Any]] = []
    try:
        if args.repeat < 1:
            raise BenchError("--repeat must be at least 1")
        if opts.quiet_seconds >= opts.resync_seconds:
            raise BenchError(
                "--quiet must be shorter than --resync: the audit-log caught-up signal needs a "
                "quiet gap, and the resync loop leaves one of --resync seconds between walks"
            )
        if opts.profile or opts.profile_gil:
            from .profile import find_py_spy  # noqa: PLC0415

            find_py_spy()
        cluster = prepare(log, args.nodes, args.pods_per_node)
        size = cluster.status.sizing or devcluster.Sizing()
        need = max(3 * n + 2 * int(opts.steady_rate * opts.steady_seconds) for n in args.apps)
        if size.pods < need:
            raise BenchError(
                f"the dev cluster holds {size.pods} pods, the run needs up to {need}: "
                "pass --nodes / --pods-per-node (or PYTHONAPP_DEV_NODES / _PODS_PER_NODE)"
            )
        opts.out.mkdir(parents=True, exist_ok=True)
        calls = CallLog(cluster.audit_log)
        runs = [(n, i) for n in args.apps for i in range(1, args.repeat + 1)]
        for n, index in runs:
            run = Run(n, opts, cluster, calls, log, index)
            stale = leftover_namespaces(run.core, f"{opts.prefix}-")
            if stale:
                log(f"deleting {len(stale)} namespace(s) left by an earlier run")
                delete_namespaces(run.core, stale, log, opts.timeout(n))
            result: dict[str, Any] = {
                "apps": n,
                "run": index,
                "started": datetime.now(UTC).isoformat(),
            }
            results.append(result)
            t_n = time.time()
            try:
                measure(run, result)
            except BenchError as e:
                result["error"] = str(e)
                raise
            finally:
                result["operator"] = run.finish()
                result["seconds"] = round(time.time() - t_n, 1)
                report.write(opts.out, meta(opts, cluster.status), results, args.merge)
                run.cleanup(wait=(n, index) != runs[-1])  # the next run removes what is left
            run.say(
                f"done in {result['seconds']:.0f}s: ratio {result['ratio_to_baseline']}, "
                f"burst p99 {result['burst']['latency_ms'].get('p99')} ms, peak RSS "
                f"{result['operator']['peak_rss_mib']} MiB"
            )
        calls.close()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except devcluster.DevClusterError as e:
        print(f"bench: the dev cluster: {e}", file=sys.stderr)
        return 1
    log(f"results in {opts.out}/ (summary.md, result.json, bench.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
