"""The fault suite's harness: apps under two operator replicas, faults injected, invariants checked.

A run (``Chaos``) creates PythonApps in namespaces of its own, watched by two `pythonapp
operator` processes electing a leader on a Lease of their own, then injects faults one at a
time in a seeded random order. After each fault it polls the invariants until they all hold
(the fault's convergence time) or a bound passes (then each invariant still broken is a
violation). The invariants, read from the API server, never from the operator:

- every app has exactly the rendered children: each present, controlled by the app, carrying
  the hash of the app's current render, the Deployment running the app's image, no hardening
  finding (:mod:`pythonapp_operator.controller.hardening`), no owned child of a kind the
  render no longer has;
- no orphan: every managed object in the namespaces is controlled by an app that exists;
- the status matches: observedGeneration is the generation, Ready True, neither Reconciling
  nor Stalled, ``status.image`` is the spec's image;
- exactly one live operator leads, and no operator died that the run did not kill.

``report()`` gives faults by kind, convergence p50/p99 per kind and the violations; the test
writes it to build/chaos/report.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Kubectl
from tests.operator_process import OperatorProcess

from pythonapp_operator import devcluster
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller import hardening
from pythonapp_operator.controller.client import RestApi
from pythonapp_operator.controller.compare import HASH_ANNOTATION, desired_hash
from pythonapp_operator.controller.kinds import APP, CHILD_KINDS, controller_of, is_controlled_by
from pythonapp_operator.controller.rollouts import stamp
from pythonapp_operator.render import render

Obj = dict[str, Any]
#: the operator pod's terminationGracePeriodSeconds (deploy/base/deployment.yaml)
GRACE_SECONDS = 30.0


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def app_doc(namespace: str, name: str, version: int, worker: bool) -> Obj:
    spec: Obj = {
        "image": f"ghcr.io/acme/{name}:1.0.{version}@{digest(version)}",
        "replicas": 1,
        "resources": {"limits": {"memory": "128Mi"}},
    }
    if worker:
        spec["profile"] = "worker"
    return {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@dataclass
class Fault:
    """One injected fault and what followed it."""

    kind: str
    detail: str
    converged_s: float | None = None
    violations: list[str] = field(default_factory=list)
    #: for a fault on the leader: seconds until another replica led
    takeover_s: float | None = None
    #: for a SIGTERM: seconds until the process exited
    exit_s: float | None = None
    #: operators that exited by themselves while it converged, and why (restarted, as the
    #: kubelet restarts a container of a Deployment's pod)
    exits: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Chaos:
    k: Kubectl
    api: RestApi
    namespaces: list[str]
    logs: Path
    seed: int
    apps_per_namespace: int
    converge_seconds: float = 180.0
    state_dir: Path | None = None
    operators: list[OperatorProcess] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lease: str = ""
    rng: random.Random = field(init=False)
    version: int = 1

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 (reproducible fault order)
        self.lease = f"chaos-{self.seed}"

    # -- set-up ------------------------------------------------------------------------------
    def operator_args(self) -> list[str]:
        args = [a for ns in self.namespaces for a in ("--namespace", ns)]
        return [
            *args,
            "--leader-election-id",
            self.lease,
            "--leader-election-namespace",
            self.namespaces[0],
        ]

    def start_operators(self, env: dict[str, str]) -> None:
        for i in range(2):
            self.operators.append(
                OperatorProcess(
                    self.k.kubeconfig,
                    self.logs / f"operator-{i}.log",
                    self.operator_args(),
                    env=env,
                ).wait_healthy()
            )

    def create_apps(self) -> None:
        docs = [
            app_doc(ns, f"app-{i}", self.version, worker=i % 3 == 2)
            for ns in self.namespaces
            for i in range(self.apps_per_namespace)
        ]
        self.k.apply(docs)

    # -- what the API server holds ------------------------------------------------------------
    def _list(self, path: str, selector: str = "") -> list[Obj]:
        query = {"labelSelector": selector} if selector else None
        status, data = self.api.request("GET", path, query=query)
        if status == 404:
            return []
        if status >= 300:
            raise RuntimeError(f"GET {path}: {status} {data[:200]!r}")
        items: list[Obj] = json.loads(data).get("items") or []
        return items

    def check(self) -> list[str]:
        """Every invariant that does not hold now (empty: all hold)."""
        problems: list[str] = []
        for ns in self.namespaces:
            problems += self._check_namespace(ns)
        problems += self._check_operators()
        return problems

    def _check_namespace(self, ns: str) -> list[str]:
        problems: list[str] = []
        apps = self._list(APP.path(ns))
        children = {
            kind.kind: {o["metadata"]["name"]: o for o in self._list(kind.path(ns), kind.selector)}
            for kind in CHILD_KINDS
        }
        uids = {a["metadata"]["uid"] for a in apps}
        for app in apps:
            meta, name = app["metadata"], app["metadata"]["name"]
            where = f"{ns}/{name}"
            model, _ = validate_document({k: v for k, v in app.items() if k != "status"})
            if model is None:
                problems.append(f"{where}: invalid spec (the run creates only valid ones)")
                continue
            wanted = set()
            for rendered in render(model):
                manifest = stamp(rendered, meta.get("generation"))  # the operator's records
                kind = manifest["kind"]
                wanted.add(kind)
                live = children[kind].get(manifest["metadata"]["name"])
                if live is None:
                    problems.append(f"{where}: {kind} missing")
                    continue
                if not is_controlled_by(live, meta["uid"]):
                    problems.append(f"{where}: {kind} not controlled by the app")
                    continue
                annotations = live["metadata"].get("annotations") or {}
                if annotations.get(HASH_ANNOTATION) != desired_hash(manifest):
                    problems.append(f"{where}: {kind} is not the current render")
                for finding in hardening.check(manifest, live):
                    problems.append(f"{where}: {kind} hardening: {finding}")
                if kind == "Deployment":
                    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
                    if image != app["spec"]["image"]:
                        problems.append(f"{where}: Deployment runs {image}")
            for kind, objs in children.items():
                held = objs.get(name)
                if kind not in wanted and held is not None and is_controlled_by(held, meta["uid"]):
                    problems.append(f"{where}: stale {kind} left")
            problems += self._check_status(where, app)
        for kind, objs in children.items():
            for obj in objs.values():
                ref = controller_of(obj)
                if ref is None or ref.get("uid") not in uids:
                    problems.append(f"{ns}: orphan {kind} {obj['metadata']['name']}")
        return problems

    @staticmethod
    def _check_status(where: str, app: Obj) -> list[str]:
        status = app.get("status") or {}
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        problems = []
        if status.get("observedGeneration") != app["metadata"].get("generation"):
            problems.append(f"{where}: observedGeneration {status.get('observedGeneration')}")
        if (conds.get("Ready") or {}).get("status") != "True":
            ready = conds.get("Ready") or {}
            problems.append(f"{where}: Ready {ready.get('status')} ({ready.get('reason')})")
        for kind in ("Reconciling", "Stalled"):
            if (conds.get(kind) or {}).get("status") == "True":
                problems.append(f"{where}: {kind} True ({conds[kind].get('reason')})")
        if status.get("image") != app["spec"]["image"]:
            problems.append(f"{where}: status.image is not the spec's")
        return problems

    def _check_operators(self) -> list[str]:
        problems = []
        alive = [op for op in self.operators if op.proc.poll() is None]
        for op in self.operators:
            if op.proc.poll() is not None:
                problems.append(f"operator {op.log.name} exited ({op.proc.returncode})")
        leaders = [op for op in alive if self._leads(op)]
        if len(leaders) != 1:
            problems.append(f"{len(leaders)} operators lead")
        for op in self.operators:
            text = op.text()
            if "reconcile crashed" in text or "the controller stopped working" in text:
                problems.append(f"operator {op.log.name}: a crash in its log")
        return problems

    @staticmethod
    def _leads(op: OperatorProcess) -> bool:
        try:
            return op.metrics().get("pythonapp_leader") == 1.0
        except OSError:
            return False

    def leader(self, timeout: float = 60) -> OperatorProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for op in self.operators:
                if op.proc.poll() is None and self._leads(op):
                    return op
            time.sleep(0.2)
        raise AssertionError("no operator leads")

    def standby(self) -> OperatorProcess:
        lead = self.leader()
        return next(op for op in self.operators if op is not lead)

    # -- faults -----------------------------------------------------------------------------
    def settle(self, fault: Fault) -> list[str]:
        """Wait until every invariant holds; what is still broken at the bound."""
        deadline = time.monotonic() + self.converge_seconds
        self.kubelet(fault)
        problems = self.check()
        while problems and time.monotonic() < deadline:
            time.sleep(0.5)
            self.kubelet(fault)
            problems = self.check()
        return problems

    def kubelet(self, fault: Fault) -> None:
        """Restart an operator that exited by itself, as the kubelet restarts the container
        of deploy/'s Deployment (restartPolicy Always).

        One reason to exit is expected: an operator that could not renew its Lease in time
        (the API server or etcd away for longer than the renew deadline) exits 1 saying
        "leader election lost", as controller-runtime's manager does, so that it can never
        write beside a new leader. Any other exit is a violation of the fault it followed."""
        for op in self.operators:
            code = op.proc.poll()
            if code is None:
                continue
            last = op.lines()[-20:]
            lost = [line for line in last if line.get("message") == "leader election lost"]
            if code == 1 and lost:
                fault.exits.append(
                    f"{op.log.name}: leader election lost ({lost[-1].get('reason')})"
                )
            else:
                tail = " | ".join(str(line.get("message")) for line in last[-3:])
                fault.violations.append(f"operator {op.log.name} exited ({code}): {tail}")
            op.restart()

    def inject(self, kind: str, action: Callable[[Fault], None]) -> Fault:
        fault = Fault(kind, "")
        started = time.monotonic()
        action(fault)
        problems = self.settle(fault)
        if problems or fault.violations:
            fault.violations += problems
        else:
            fault.converged_s = round(time.monotonic() - started, 2)
        self.faults.append(fault)
        print(  # progress, shown with -s (make chaos)
            f"[chaos] {kind}: {fault.detail}: "
            + (
                f"converged in {fault.converged_s} s"
                if not fault.violations
                else f"{fault.violations[:3]}"
            )
            + (f"; exited and restarted: {fault.exits}" if fault.exits else ""),
            flush=True,
        )
        return fault

    def _apps(self) -> list[tuple[str, str]]:
        return [(ns, f"app-{i}") for ns in self.namespaces for i in range(self.apps_per_namespace)]

    def _pick(self) -> tuple[str, str]:
        return self.rng.choice(self._apps())

    def _roll(self, apps: list[tuple[str, str]]) -> None:
        """A new digest on ``apps`` (a rollout)."""
        self.version += 1
        docs = []
        for ns, name in apps:
            index = int(name.rsplit("-", 1)[1])
            docs.append(app_doc(ns, name, self.version, worker=index % 3 == 2))
        self.k.apply(docs)

    def _takeover(self, fault: Fault, old: OperatorProcess, started: float) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for op in self.operators:
                if op is not old and op.proc.poll() is None and self._leads(op):
                    fault.takeover_s = round(time.monotonic() - started, 2)
                    return
            time.sleep(0.1)

    def kill_leader(self, fault: Fault) -> None:
        lead = self.leader()
        fault.detail = f"SIGKILL {lead.log.name}"
        started = time.monotonic()
        lead.proc.send_signal(signal.SIGKILL)
        lead.proc.wait()
        self._takeover(fault, lead, started)
        lead.restart()  # as the kubelet would: it comes back as a standby

    def term_leader_mid_reconcile(self, fault: Fault) -> None:
        lead = self.leader()
        apps = self._apps()
        fault.detail = f"a new digest on {len(apps)} apps, then SIGTERM {lead.log.name}"
        self._roll(apps)
        started = time.monotonic()
        lead.proc.send_signal(signal.SIGTERM)
        self._takeover(fault, lead, started)
        try:  # the operator's pod gets terminationGracePeriodSeconds: 30 (deploy/)
            code = lead.proc.wait(timeout=max(0.0, GRACE_SECONDS - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            lead.proc.kill()
            lead.proc.wait()
            code = None
        fault.exit_s = round(time.monotonic() - started, 2)
        if code != 0:
            fault.violations.append(
                f"SIGTERM: exit code {code} (None: still running after {GRACE_SECONDS} s)"
            )
        lead.restart()

    def kill_standby(self, fault: Fault) -> None:
        standby = self.standby()
        fault.detail = f"SIGKILL {standby.log.name}"
        standby.proc.send_signal(signal.SIGKILL)
        standby.proc.wait()
        standby.restart()

    def _kill_component(self, fault: Fault, name: str) -> None:
        status = devcluster.status(self.state_dir)
        comp = next(c for c in status.components if c.name == name)
        fault.detail = f"SIGKILL {name} (pid {comp.pid}), then `pythonapp dev up` repairs it"
        assert comp.pid is not None
        os.kill(comp.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            c.name == name and c.alive for c in devcluster.status(self.state_dir).components
        ):
            time.sleep(0.1)  # gone, not only signalled: else `up` finds it alive and unready
        # (a restart at once has twice failed: "kube-apiserver exited while waiting for
        # kube-apiserver healthy", and `up` then started a new cluster; a pause, as a
        # kubelet's restart backoff would make, is tried)
        time.sleep(2)
        server = devcluster.status(self.state_dir).server
        devcluster.up(state_dir=self.state_dir, log=lambda line: print(f"[chaos] {line}"))
        if devcluster.status(self.state_dir).server != server:
            raise AssertionError(
                f"the dev cluster was not repaired after {name} was killed: `pythonapp dev up` "
                "started a new one (a devcluster fault, not the operator's; its log above)"
            )

    def restart_apiserver(self, fault: Fault) -> None:
        self._kill_component(fault, "kube-apiserver")

    def restart_etcd(self, fault: Fault) -> None:
        self._kill_component(fault, "etcd")

    def writer_on_owned_fields(self, fault: Fault) -> None:
        (ns, a), (ns2, b) = self._pick(), self._pick()
        fault.detail = f"{ns}/{a}: image changed; {ns2}/{b}: hostNetwork true"
        self.k.run(
            "-n", ns, "set", "image", f"deployment/{a}", f"app=ghcr.io/evil/{a}:1@{digest(0)}"
        )
        self.k.run(
            "-n", ns2, "patch", "deployment", b, "--type", "merge",
            "-p", '{"spec":{"template":{"spec":{"hostNetwork":true}}}}',
        )  # fmt: skip

    def writer_on_unowned_fields(self, fault: Fault) -> None:
        ns, name = self._pick()
        fault.detail = f"{ns}/{name}: kubectl rollout restart (an annotation the operator leaves)"
        self.k.run("-n", ns, "rollout", "restart", f"deployment/{name}")
        problems = self.settle(fault)
        live = self.k.get("deployment", name, ns) or {}
        annotations = (
            live.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
        )
        if "kubectl.kubernetes.io/restartedAt" not in annotations and not problems:
            fault.violations.append(f"{ns}/{name}: the restart annotation was removed")

    def children_deleted_mid_rollout(self, fault: Fault) -> None:
        ns, name = self._pick()
        fault.detail = f"{ns}/{name}: a new digest, then its Deployment and Service deleted"
        self._roll([(ns, name)])
        self.k.run(
            "-n", ns, "delete", "deployment,service", name, "--ignore-not-found", "--wait=false"
        )

    def app_recreated(self, fault: Fault) -> None:
        ns, name = self._pick()
        fault.detail = f"{ns}/{name}: deleted and created again under the same name"
        self.k.run("-n", ns, "delete", "pythonapp", name, "--wait=true")
        index = int(name.rsplit("-", 1)[1])
        self.k.apply(app_doc(ns, name, self.version, worker=index % 3 == 2))

    def namespace_deleted(self, fault: Fault) -> None:
        ns = self.namespaces[-1]
        fault.detail = f"namespace {ns} deleted with its {self.apps_per_namespace} apps"
        self.k.run("delete", "namespace", ns, "--wait=true", "--timeout=120s")
        self.namespaces.remove(ns)

    FAULTS = (
        "kill_leader",
        "term_leader_mid_reconcile",
        "kill_standby",
        "restart_apiserver",
        "restart_etcd",
        "writer_on_owned_fields",
        "writer_on_unowned_fields",
        "children_deleted_mid_rollout",
        "app_recreated",
    )

    def run(self, rounds: int) -> None:
        """Every fault once per round, in a seeded random order; the namespace deletion last
        (it removes a namespace the operators watch)."""
        for _ in range(rounds):
            order = list(self.FAULTS)
            self.rng.shuffle(order)
            for name in order:
                self.inject(name, getattr(self, name))
        self.inject("namespace_deleted", self.namespace_deleted)

    # -- the report -------------------------------------------------------------------------
    def report(self) -> Obj:
        by_kind: dict[str, Obj] = {}
        for kind in sorted({f.kind for f in self.faults}):
            these = [f for f in self.faults if f.kind == kind]
            times = [f.converged_s for f in these if f.converged_s is not None]
            takeovers = [f.takeover_s for f in these if f.takeover_s is not None]
            exits = [f.exit_s for f in these if f.exit_s is not None]
            by_kind[kind] = {
                "count": len(these),
                "converged_p50_s": round(statistics.median(times), 2) if times else None,
                "converged_p99_s": round(percentile(times, 0.99), 2) if times else None,
                "takeover_max_s": max(takeovers) if takeovers else None,
                "sigterm_exit_max_s": max(exits) if exits else None,
                "violations": sum(len(f.violations) for f in these),
                "operator_exits": sum(len(f.exits) for f in these),
            }
        return {
            "seed": self.seed,
            "apps_per_namespace": self.apps_per_namespace,
            "faults": [f.__dict__ for f in self.faults],
            "by_kind": by_kind,
            "violations": sum(len(f.violations) for f in self.faults),
            "operator_exits": [f"{f.kind}: {e}" for f in self.faults for e in f.exits],
        }


def summary(report: Obj) -> str:
    lines = [
        f"chaos: seed {report['seed']}, {report['apps_per_namespace']} apps per namespace, "
        f"{len(report['faults'])} faults, violations: {report['violations']}",
        "| fault | count | converged p50 / p99 s | takeover max s | violations |",
        "|---|---|---|---|---|",
    ]
    for kind, row in report["by_kind"].items():
        lines.append(
            f"| {kind} | {row['count']} | {row['converged_p50_s']} / {row['converged_p99_s']} "
            f"| {row['takeover_max_s'] if row['takeover_max_s'] is not None else '-'} "
            f"| {row['violations']} |"
        )
    for exit_ in report.get("operator_exits") or []:
        lines.append(f"- restarted, as the kubelet would: {exit_}")
    for fault in report["faults"]:
        for problem in fault["violations"][:10]:
            lines.append(f"- {fault['kind']} ({fault['detail']}): {problem}")
    return "\n".join(lines) + "\n"
