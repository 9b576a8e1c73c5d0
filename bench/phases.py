"""One benchmark run at one size N: the phases, in order, each returning its figures.

1. baseline: the bare client (:mod:`.baseline`) does the operator's work for N apps (operator
   not running); namespace deleted and waited for.
2. burst: the operator starts; N PythonApps are created at once; seconds until every
   Deployment exists and every app is Ready, per-app latency, calls, CPU (and CPU per app),
   memory, the pods kwok then runs.
3. idle: nothing changes for ``max(idle, 2 x resync)`` seconds (a periodic resync starts
   inside it and has as long again to run): writes, reads, CPU.
4. noise: objects the operator does not own are created in other namespaces: its CPU against
   the idle rate, its memory before and after.
5. secret-noise: Secrets nobody references (1,000 of 100 KiB by default, as Helm's release
   Secrets fill real clusters) in the apps' own namespace: the operator's RSS growth and its
   writes meanwhile (there should be none); deleted again afterwards, so later phases compare
   with earlier runs.
6. restart: SIGTERM, start again: time until caught up, writes, reads.
7. update: a new digest on every app: seconds until every Deployment has it, until every app is
   Ready again, latency, calls.
8. steady: new apps at a fixed rate, then digest edits at a fixed rate: per-item latency.

Every app references a Secret of its own (``spec.secrets``), which the harness creates before
the app, outside every timed window: the cluster holds N referenced Secrets and 2 x N pods.

Latency origin, everywhere: the moment the harness's watch *received* the PythonApp's ADDED
event (or, for an edit, the first event showing the new image); its end: the moment the
Deployment watch received the Deployment's ADDED event (or the first event with the new
image). Both ends go through the same kind of watch in the same process, so harness-side delays
largely cancel. Should the app-side event be missing, the create/patch call's return is used.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from . import load, watch
from .baseline import BareClient
from .calls import CallLog
from .cluster import (
    AGENT,
    BASELINE_USER,
    OPERATOR_USER,
    Cluster,
    api_client,
    create_namespace,
    delete_namespaces,
    pods,
)
from .process import BenchError, CaughtUp, Operator, Sampler, cpu_between, cpu_seconds
from .profile import Profiler
from .report import latency

Log = Callable[[str], None]
Result = dict[str, Any]


SKIPPABLE = ("idle", "noise", "secret-noise", "restart", "update", "steady")


@dataclass(frozen=True)
class Options:
    """Knobs of one run (``python -m bench --help`` explains each)."""

    out: Path
    concurrency: int = 16
    steady_rate: float = 5.0
    steady_seconds: float = 60.0
    idle_seconds: float = 60.0
    resync_seconds: float = 30.0
    noise: int = 1000
    noise_namespaces: int = 10
    noise_secrets: int = 1000
    noise_secret_kib: int = 100
    quiet_seconds: float = 5.0
    settle_seconds: float = 10.0
    timeout_base: float = 300.0
    timeout_per_app: float = 2.0
    profile: bool = False
    profile_gil: bool = False
    skip: frozenset[str] = frozenset()
    operator_args: tuple[str, ...] = ()
    caught_up_urls: tuple[str, ...] = ()
    prefix: str = "bench"
    #: every app autoscaled (an HPA child each; ``--autoscaling``)
    autoscaling: bool = False
    #: a migration Job before every new image (``--migrate``)
    migrate: bool = False

    def timeout(self, apps: int) -> float:
        """How long anything may take at this size before the run fails."""
        return self.timeout_base + self.timeout_per_app * apps

    @property
    def idle_window(self) -> float:
        """Long enough for a periodic resync to start inside it and have as long to run."""
        return max(self.idle_seconds, 2 * self.resync_seconds)


@dataclass
class Run:
    """The phases for one N; each method returns its part of the result."""

    n: int
    opts: Options
    cluster: Cluster
    calls: CallLog
    log: Log
    #: which run of this size (1, 2, ... with ``--repeat``): names its files
    index: int = 1
    harness: client.ApiClient = field(init=False)
    core: client.CoreV1Api = field(init=False)
    api: load.Client = field(init=False)
    names: list[str] = field(init=False)
    samplers: list[Sampler] = field(default_factory=list)
    operator: Operator | None = None
    operator_started: float = 0.0  # when the first operator process was started
    apps_watch: watch.Watch | None = None
    deps_watch: watch.Watch | None = None

    def __post_init__(self) -> None:
        self.harness = api_client(self.cluster.admin, AGENT, self.opts.concurrency + 16)
        self.core = client.CoreV1Api(self.harness)
        self.api = load.Client(self.harness, "pythonapp-bench")
        self.names = [f"app-{i:05d}" for i in range(self.n)]
        self.namespace = f"{self.opts.prefix}-{self.n}"

    # ------------------------------------------------------------------------------ helpers

    def say(self, msg: str) -> None:
        self.log(f"N={self.n} {msg}" if self.index == 1 else f"N={self.n} #{self.index} {msg}")

    @property
    def tag(self) -> str:
        """This run in file names: ``500``, then ``500-2``, ``500-3``."""
        return str(self.n) if self.index == 1 else f"{self.n}-{self.index}"

    def app(self, namespace: str, name: str, image_ref: str) -> dict[str, Any]:
        """One benchmark PythonApp, as the options say (:func:`.load.pythonapp`)."""
        return load.pythonapp(
            namespace,
            name,
            image_ref,
            autoscaled=self.opts.autoscaling,
            migrate=self.opts.migrate,
        )

    def secrets(self, namespace: str, apps: list[str]) -> None:
        """Each app's Secret, made by the harness before the app (outside any timed window)."""
        items = [(name, load.secret(namespace, name)) for name in apps]
        load.Batch(items, self.api.apply, self.opts.concurrency).wait()

    def wait(self, what: str, check: Callable[[], tuple[bool, str]], timeout: float) -> None:
        """Poll ``check`` (done, progress text) until done; fail clearly after ``timeout``."""
        deadline, last = time.time() + timeout, time.time()
        while True:
            done, detail = check()
            if done:
                return
            if time.time() > deadline:
                raise BenchError(f"N={self.n}: {what} not reached in {timeout:.0f}s ({detail})")
            if time.time() - last >= 10:
                self.say(f"{what}: {detail}")
                last = time.time()
            time.sleep(0.2)

    def watches(self, namespace: str) -> tuple[watch.Watch, watch.Watch]:
        apps = watch.start(watch.pythonapps(self.harness, namespace))
        deps = watch.start(watch.deployments(self.harness, namespace))
        return apps, deps

    def processes(self) -> dict[str, int]:
        """The cluster's processes, the harness (its watches, and the bare client in the
        baseline) and the operator when it runs: whose CPU a window is read against."""
        pids = {c.name: c.pid for c in self.cluster.status.components if c.pid is not None}
        pids["harness"] = os.getpid()
        if self.operator is not None:
            pids["operator"] = self.operator.proc.pid
        return pids

    def sampler(self) -> Sampler:
        assert self.operator is not None
        return self.samplers[-1]

    # ------------------------------------------------------------------------------ phases

    def baseline(self) -> Result:
        ns = f"{self.namespace}-baseline"
        create_namespace(self.core, ns)
        apps, deps = self.watches(ns)
        images = {name: load.image(f"n{self.n}-{i}") for i, name in enumerate(self.names)}
        self.secrets(ns, self.names)
        bare = BareClient(
            self.cluster.baseline,
            self.opts.concurrency,
            autoscaled=self.opts.autoscaling,
            migrate=self.opts.migrate,
        )
        self.say(f"baseline: bare client, {self.opts.concurrency} in flight")
        cpu0 = cpu_seconds(self.processes())
        t0 = time.time()
        batch = bare.start(ns, images)
        timeout = self.opts.timeout(self.n)
        self.wait("baseline Deployments", lambda: self._progress(deps.seen, batch), timeout)
        cpu = cpu_between(cpu0, cpu_seconds(self.processes()))
        batch.wait()
        t_deps = deps.seen.last_added(self.names) - t0
        t_done = max(batch.returned.values())
        self.calls.settle()
        counts = self.calls.window(BASELINE_USER, t0, t_done)
        self.say(f"baseline: all Deployments after {t_deps:.1f}s; waiting for pods")
        self._wait_ready(
            "baseline Deployments available", deps.seen, dict.fromkeys(self.names), timeout
        )
        t_avail = deps.seen.last_ready(self.names) - t0
        result = {
            "deployments_s": round(t_deps, 2),
            "all_done_s": round(t_done - t0, 2),
            "deployments_available_s": round(t_avail, 2),
            "cluster_cpu_s": cpu,
            "latency_ms": latency(self._created_latency(apps.seen, deps.seen, batch.returned)),
            "calls": counts.to_json(self.n),
        }
        if "steady" not in self.opts.skip:
            result["steady"] = self._baseline_steady(bare, ns, apps.seen, deps.seen, timeout)
        bare.close()
        for w in (apps, deps):
            w.stop()
        self.say(f"baseline: {t_deps:.1f}s to all Deployments; deleting its namespace")
        delete_namespaces(self.core, [ns], self.say, timeout)
        return result

    def _baseline_steady(
        self,
        bare: BareClient,
        ns: str,
        apps: watch.Seen,
        deps: watch.Seen,
        timeout: float,
    ) -> Result:
        """The steady load's new apps, done by the bare client over its N converged apps: the
        latency the cluster itself allows at that rate (the operator's steady figure is read
        against it; a rate above what the API server sustains queues up for any client)."""
        settled = self._settle(ns)
        self.say(f"baseline steady: {self._steady_count()} new apps by the bare client")
        t0 = time.time()
        names, returned = self._steady_new_apps(
            "baseline steady Deployments",
            "b",
            ns=ns,
            start=lambda new, rate: bare.start(ns, new, rate),
            deps=deps,
            timeout=timeout,
        )
        t1 = max(deps.last_added(names), time.time())
        self.calls.settle()
        return {
            "rate_per_s": self.opts.steady_rate,
            "count": len(names),
            "settle_s": settled,
            "latency_ms": latency(self._created_latency(apps, deps, returned, names)),
            "server_write_ms": self.calls.window(BASELINE_USER, t0, t1).server_write_ms(),
        }

    def _steady_count(self) -> int:
        return max(1, math.floor(self.opts.steady_rate * self.opts.steady_seconds))

    def _steady_new_apps(
        self,
        what: str,
        prefix: str,
        *,
        ns: str,
        start: Callable[[dict[str, str], float], load.Started],
        deps: watch.Seen,
        timeout: float,
    ) -> tuple[list[str], dict[str, float]]:
        """New apps at the steady rate (``start({name: image}, rate)``; their Secrets made
        first), until every one has its Deployment; (their names, when each returned)."""
        count = self._steady_count()
        new = {f"steady-{i:05d}": load.image(f"{prefix}{self.n}-{i}") for i in range(count)}
        names = list(new)
        self.secrets(ns, names)
        batch = start(new, self.opts.steady_rate)
        self.wait(
            what,
            lambda: (
                deps.count_added(names) == count,
                f"{batch.done}/{count} created, {deps.count_added(names)} Deployments",
            ),
            self.opts.steady_seconds + timeout,
        )
        return names, batch.wait()

    def start_operator(self) -> None:
        out = self.opts.out
        self.operator_started = time.time()
        self.operator = Operator(
            self.cluster.operator,
            out / f"operator-{self.tag}.log",
            ["--all-namespaces", *self.opts.operator_args],
            env={
                "PYTHONAPP_RESYNC_SECONDS": f"{self.opts.resync_seconds:g}",
                # the same requests in flight as the baseline (an operator without the
                # setting ignores it)
                "PYTHONAPP_WORKERS": str(self.opts.concurrency),
            },
        ).wait_healthy()
        self.samplers.append(Sampler(self.operator.proc.pid))

    def burst(self) -> Result:
        create_namespace(self.core, self.namespace)
        self.secrets(self.namespace, self.names)
        self.apps_watch, self.deps_watch = self.watches(self.namespace)
        apps, deps = self.apps_watch.seen, self.deps_watch.seen
        self.start_operator()
        assert self.operator is not None
        profiler = None
        if self.opts.profile or self.opts.profile_gil:
            kind = "gil" if self.opts.profile_gil else "burst"
            path = self.opts.out / f"profile-{self.tag}-{kind}.txt"
            profiler = Profiler(self.operator.proc.pid, path, gil=self.opts.profile_gil)
        self.say(f"burst: creating {self.n} PythonApps, {self.opts.concurrency} in flight")
        images = {name: load.image(f"n{self.n}-{i}") for i, name in enumerate(self.names)}
        ns = self.namespace
        cpu0 = cpu_seconds(self.processes())
        t0 = time.time()
        batch = load.Batch(
            load.keyed(images),
            lambda it: self.api.create_app(self.app(ns, it[0], it[1])),
            self.opts.concurrency,
        )
        timeout = self.opts.timeout(self.n)
        self.wait("burst Deployments", lambda: self._progress(deps, batch), timeout)
        cpu = cpu_between(cpu0, cpu_seconds(self.processes()))
        t_deps = deps.last_added(self.names) - t0
        self.say(f"burst: all Deployments after {t_deps:.1f}s; waiting for every app Ready")
        self._wait_ready("burst apps Ready", apps, dict.fromkeys(self.names), timeout)
        created = batch.wait()
        t_ready = apps.last_ready(self.names) - t0
        result: Result = {
            "deployments_s": round(t_deps, 2),
            "ready_s": round(t_ready, 2),
            "cluster_cpu_s": cpu,
            "latency_ms": latency(self._created_latency(apps, deps, created)),
        }
        if profiler is not None:
            result["profile"] = profiler.stop()
        self.calls.settle()
        result["calls"] = self.calls.window(OPERATOR_USER, t0, t0 + t_ready).to_json(self.n)
        usage = self.sampler().usage(t0, t0 + t_ready)
        result["usage"] = usage.to_json()
        result["cpu_ms_per_app"] = round(1000 * usage.cpu_s / self.n, 1)
        result["pods"], _ = pods(self.harness, self.namespace)
        result["referenced_secrets"] = self.n
        self.say(f"burst: every app Ready after {t_ready:.1f}s")
        return result

    def idle(self) -> Result:
        window = self.opts.idle_window
        resync = self.opts.resync_seconds
        self.say(f"idle: {window:.0f}s with nothing changing (resync every {resync:g}s)")
        t0 = time.time()
        time.sleep(window)
        t1 = time.time()
        self.calls.settle()
        counts = self.calls.window(OPERATOR_USER, t0, t1)
        return {
            "seconds": round(t1 - t0, 1),
            "writes": counts.writes,
            "reads": counts.reads,
            "calls": counts.to_json(self.n),
            "usage": self.sampler().usage(t0, t1).to_json(),
        }

    def noise(self, idle: Result | None) -> Result:
        spaces = [f"{self.namespace}-noise-{k}" for k in range(self.opts.noise_namespaces)]
        for ns in spaces:
            create_namespace(self.core, ns)
        objects = load.noise(spaces, self.opts.noise)
        self.say(f"noise: {len(objects)} unowned Deployments/Services/ServiceAccounts")
        t0 = time.time()
        items = [(f"{o['metadata']['namespace']}/{o['metadata']['name']}", o) for o in objects]
        load.Batch(items, self.api.apply, self.opts.concurrency).wait()
        created_s = time.time() - t0
        time.sleep(self.opts.settle_seconds)  # the watch events reach the operator
        t1 = time.time()
        self.calls.settle()
        usage = self.sampler().usage(t0, t1)
        idle_rate = idle["usage"]["cpu_s"] / max(idle["usage"]["seconds"], 1e-9) if idle else None
        result = {
            "objects": len(objects),
            "namespaces": len(spaces),
            "create_s": round(created_s, 1),
            "usage": usage.to_json(),
            "cpu_s": round(usage.cpu_s, 2),
            "idle_cpu_s_same_length": None
            if idle_rate is None
            else round(idle_rate * usage.seconds, 2),
            "rss_delta_mib": round(usage.rss_end_mib - usage.rss_start_mib, 1),
            "calls": self.calls.window(OPERATOR_USER, t0, t1).to_json(self.n),
        }
        delete_namespaces(self.core, spaces, self.say, self.opts.timeout(self.n))
        return result

    def secret_noise(self) -> Result:
        """Unreferenced Secrets in the apps' namespace: what they cost the operator."""
        ns, count, kib = self.namespace, self.opts.noise_secrets, self.opts.noise_secret_kib
        self.say(f"secret-noise: {count} unreferenced Secrets of {kib} KiB in {ns}")
        items = [(s["metadata"]["name"], s) for s in load.noise_secrets(ns, count, kib)]
        t0 = time.time()
        load.Batch(items, self.api.apply, self.opts.concurrency).wait()
        created_s = time.time() - t0
        del items
        time.sleep(self.opts.settle_seconds)  # the watch events reach the operator
        t1 = time.time()
        self.calls.settle()
        usage = self.sampler().usage(t0, t1)
        counts = self.calls.window(OPERATOR_USER, t0, t1)
        self.core.delete_collection_namespaced_secret(
            ns, label_selector=f"{load.ROLE_LABEL}=noise", _preload_content=False
        )
        return {
            "secrets": count,
            "kib_each": kib,
            "create_s": round(created_s, 1),
            "usage": usage.to_json(),
            "rss_growth_mib": round(usage.rss_end_mib - usage.rss_start_mib, 1),
            "rss_peak_growth_mib": round(usage.rss_peak_mib - usage.rss_start_mib, 1),
            "writes": counts.writes,
            "reads": counts.reads,
            "calls": counts.to_json(self.n),
        }

    def restart(self) -> Result:
        assert self.operator is not None
        self.say("restart: SIGTERM, then a fresh operator over the converged apps")
        exit_code = self.operator.stop()
        self.sampler().stop()
        t0 = time.time()
        self.operator.start_again()
        self.samplers.append(Sampler(self.operator.proc.pid))
        health = self.operator.health
        urls = list(self.opts.caught_up_urls) or [
            f"http://{health}/metrics",
            f"http://{health}/readyz",
        ]
        urls = [u.replace("{health}", health) for u in urls]
        self.operator.wait_healthy()
        found = CaughtUp(self.calls, OPERATOR_USER, urls, self.opts.quiet_seconds).wait(
            t0, self.opts.timeout(self.n)
        )
        t1 = time.time()
        self.calls.settle()
        counts = self.calls.window(OPERATOR_USER, t0, t1)
        caught_up = found["caught_up_at"] - t0
        self.say(f"restart: caught up after {caught_up:.1f}s ({found['signal']})")
        return {
            "sigterm_exit_code": exit_code,
            "caught_up_s": round(caught_up, 2),
            "signal": found["signal"],
            "window_s": round(t1 - t0, 1),
            "writes": counts.writes,
            "reads": counts.reads,
            "calls": counts.to_json(self.n),
            "usage": self.sampler().usage(t0, t1).to_json(),
        }

    def update(self) -> Result:
        assert self.apps_watch is not None and self.deps_watch is not None
        apps, deps = self.apps_watch.seen, self.deps_watch.seen
        images = {name: load.image(f"u{self.n}-{i}") for i, name in enumerate(self.names)}
        ns = self.namespace
        self.say(f"update: a new digest on all {self.n} apps, {self.opts.concurrency} in flight")
        t0 = time.time()
        batch = load.Batch(
            load.keyed(images),
            lambda it: self.api.set_image(ns, it[0], it[1]),
            self.opts.concurrency,
        )
        timeout = self.opts.timeout(self.n)
        self.wait(
            "update Deployments",
            lambda: (
                deps.count_with_image(images) == self.n,
                f"{batch.done}/{self.n} edited, {deps.count_with_image(images)} Deployments",
            ),
            timeout,
        )
        t_deps = deps.last_image(images) - t0
        self.say(f"update: every Deployment has the new image after {t_deps:.1f}s")
        self._wait_ready("update apps Ready", apps, dict(images), timeout)
        edited = batch.wait()
        t_ready = apps.last_ready(self.names) - t0
        self.calls.settle()
        return {
            "deployments_s": round(t_deps, 2),
            "ready_s": round(t_ready, 2),
            "latency_ms": latency(self._edit_latency(apps, deps, list(images.items()), edited)),
            "calls": self.calls.window(OPERATOR_USER, t0, t0 + t_ready).to_json(self.n),
            "usage": self.sampler().usage(t0, t0 + t_ready).to_json(),
        }

    def steady(self) -> Result:
        assert self.apps_watch is not None and self.deps_watch is not None
        apps, deps = self.apps_watch.seen, self.deps_watch.seen
        rate = self.opts.steady_rate
        count = self._steady_count()
        ns = self.namespace
        timeout = self.opts.timeout(self.n)

        settled = self._settle(ns)
        self.say(f"steady: {count} new apps at {rate:g}/s over {self.n} converged ones")
        t0 = time.time()
        names, created = self._steady_new_apps(
            "steady Deployments",
            "s",
            ns=ns,
            start=lambda new, rate: load.Batch(
                load.keyed(new),
                lambda it: self.api.create_app(self.app(ns, it[0], it[1])),
                self.opts.concurrency,
                rate=rate,
            ),
            deps=deps,
            timeout=timeout,
        )
        t1 = max(deps.last_added(names), time.time())
        self.calls.settle()
        create = {
            "rate_per_s": rate,
            "count": count,
            "settle_s": settled,
            "latency_ms": latency(self._created_latency(apps, deps, created, names)),
            "server_write_ms": self.calls.window(OPERATOR_USER, t0, t1).server_write_ms(),
            "usage": self.sampler().usage(t0, t1).to_json(),
        }

        # edits: the burst's apps in turn, each edit a new digest
        edits = [
            (f"{name}#{i}", (name, load.image(f"e{self.n}-{i}")))
            for i, name in zip(range(count), itertools.cycle(self.names), strict=False)
        ]
        final = {name: img for _, (name, img) in edits}
        self.say(f"steady: {count} digest edits at {rate:g}/s")
        t0 = time.time()
        batch = load.Batch(
            edits,
            lambda it: self.api.set_image(ns, it[0], it[1]),
            self.opts.concurrency,
            rate=rate,
        )
        self.wait(
            "steady edits on Deployments",
            lambda: (
                deps.count_with_image(final) == len(final),
                f"{batch.done}/{count} edits sent, {deps.count_with_image(final)}/{len(final)} "
                "apps show their last edit",
            ),
            self.opts.steady_seconds + timeout,
        )
        returned = batch.wait()
        t1 = time.time()
        self.calls.settle()
        pairs = [pair for _, pair in edits]
        lat = self._edit_latency(
            apps, deps, pairs, {k.split("#")[0]: v for k, v in returned.items()}
        )
        edit = {
            "rate_per_s": rate,
            "count": count,
            "superseded": count - len(lat),
            "latency_ms": latency(lat),
            "usage": self.sampler().usage(t0, t1).to_json(),
        }
        return {"create": create, "edit": edit}

    def finish(self) -> Result:
        """Stop the operator; its totals over the whole run.

        ``calls`` covers both operator processes from the first start to the stop: the only
        window sure to hold kopf's watch requests (counted when opened, which may be after a
        phase's window closed, as a restart counts up to the caught-up signal).
        """
        result: Result = {}
        if self.operator is not None:
            sampler = self.sampler()
            sampler.now()
            result["sigterm_exit_code"] = self.operator.stop()
            sampler.stop()
            self.calls.settle()
            counts = self.calls.window(OPERATOR_USER, self.operator_started)
            result["calls"] = counts.to_json(self.n)
        result["peak_rss_mib"] = round(max((s.peak_mib for s in self.samplers), default=0), 1)
        result["cpu_s"] = round(sum(s.cpu_s for s in self.samplers), 1)
        result["processes"] = len(self.samplers)
        return result

    def cleanup(self, wait: bool = True) -> None:
        for w in (self.apps_watch, self.deps_watch):
            if w is not None:
                w.stop()
        if self.operator is not None and self.operator.proc.poll() is None:
            self.operator.stop()
        for s in self.samplers:
            s.stop()
        self.say("deleting the benchmark namespace")
        timeout = self.opts.timeout(self.n) if wait else 0
        delete_namespaces(self.core, [self.namespace], self.say, timeout)
        self.harness.close()  # type: ignore[no-untyped-call]

    def _settle(self, ns: str) -> float:
        """Before a steady phase: until the N apps' pods are exactly there, none terminating.

        "Over N converged apps" means the last phase's pod churn is over: an app turns Ready
        when its new pods are, while its old ones are still being deleted (and their
        ReplicaSets and EndpointSlices updated). Started at once, a steady phase measured the
        tail of a 500-app rollout, not the operator. Seconds waited (reported).
        """
        want = load.REPLICAS * self.n
        t0 = time.time()

        def settled() -> tuple[bool, str]:
            count, terminating = pods(self.harness, ns, jobs=False)
            return count == want and not terminating, f"{count} pods, {terminating} terminating"

        self.wait(f"{want} settled pods", settled, self.opts.timeout(self.n))
        waited = time.time() - t0
        self.say(f"{want} pods settled after {waited:.1f}s")
        return round(waited, 1)

    def _wait_ready(
        self, what: str, seen: watch.Seen, wanted: dict[str, str | None], timeout: float
    ) -> None:
        """Until every wanted object is ready (showing the wanted image, if one is given)."""
        self.wait(
            what,
            lambda: (seen.count_ready(wanted) == len(wanted), f"{seen.count_ready(wanted)} ready"),
            timeout,
        )

    # ------------------------------------------------------------------------------ figures

    def _progress(self, deps: watch.Seen, batch: load.Started) -> tuple[bool, str]:
        seen, done = deps.count_added(self.names), batch.done
        return seen == self.n, f"{done}/{self.n} apps created, {seen}/{self.n} Deployments"

    @staticmethod
    def _created_latency(
        apps: watch.Seen,
        deps: watch.Seen,
        returned: dict[str, float],
        names: list[str] | None = None,
    ) -> list[float]:
        """Milliseconds from each app's ADDED event to its Deployment's."""
        out = []
        for name in names or list(returned):
            origin = apps.added.get(name, returned.get(name))
            if origin is not None and name in deps.added:
                out.append(1000 * (deps.added[name] - origin))
        return out

    @staticmethod
    def _edit_latency(
        apps: watch.Seen,
        deps: watch.Seen,
        pairs: list[tuple[str, str]],
        returned: dict[str, float],
    ) -> list[float]:
        """Milliseconds from the first event showing each new image on the app to the first
        showing it on the Deployment (edits overtaken by the next edit of the same app before
        their Deployment showed them are left out)."""
        out = []
        for name, img in pairs:
            origin = apps.image_at.get((name, img), returned.get(name))
            seen = deps.image_at.get((name, img))
            if origin is not None and seen is not None:
                out.append(1000 * (seen - origin))
        return out
