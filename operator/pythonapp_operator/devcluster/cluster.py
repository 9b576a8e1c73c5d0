"""up / down / status of the local control plane.

State lives in ``state.json`` (written after every process start, so ``down`` can always find
what ``up`` started, even after a failed or interrupted ``up``), with the cluster's sizing
(fake nodes and pods per node, see ``nodes.Sizing``): ``up`` with another sizing resizes a
running cluster in place. A file lock serialises
``up``/``down`` so parallel test workers or two terminals cannot start two clusters in one dir.

Partially dead cluster (a component crashed or was killed): ``up`` restarts only the dead
components with their recorded command lines (same ports, same certificates), so clients holding
the kubeconfig keep working and etcd's data (on tmpfs) is kept. If the data is gone (reboot),
the binaries changed, or a restart does not become healthy, ``up`` tears everything down and
starts clean. The ``timeout`` of ``up`` covers starting, not a cold build of the binaries.
A component that is alive but does not answer (kube-apiserver keeps running ~60 s without
listening while it drains after SIGTERM) is stopped (SIGTERM, SIGKILL after a bound) and
restarted, instead of counted alive and waited on until the repair fails.

``up(real_node=True)`` adds one real node (containerd + kubelet, see ``realnode``) beside the
kwok nodes; its components are tracked and repaired like the others, and ``down`` (or
``up(real_node=False)``) removes it and puts the host back as it was.
A running cluster whose API server was started with an older audit policy gets the current one
(its API server alone is restarted, like a crashed component).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import api, binaries, kubeconfig, nodes, procs, realnode, registry
from .components import AUDIT_POLICY, ORDER, Ports, Spec, audit_policy_path, specs
from .errors import DevClusterError
from .paths import Layout
from .pki import CLIENTS, Pki, client_cert_for
from .pki import generate as generate_pki

Log = Callable[[str], None]
_STATE_VERSION = 1
_POLL = 0.25
_PROGRESS_EVERY = 10.0


@dataclass(frozen=True)
class ComponentStatus:
    """One process of the cluster as ``status`` sees it."""

    name: str
    pid: int | None
    address: str
    alive: bool
    rss_kib: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "address": self.address,
            "alive": self.alive,
            "rss_kib": self.rss_kib,
        }


@dataclass(frozen=True)
class ClusterStatus:
    """What ``up`` returns and ``status`` reports. ``running`` means every component is alive."""

    running: bool
    components: list[ComponentStatus]
    state_dir: Path
    kubeconfig: Path
    server: str | None = None
    ready: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    sizing: nodes.Sizing | None = None
    """Fake nodes and pods per node (None: no cluster, or one started before sizing existed)."""
    real_node: dict[str, Any] | None = None
    """The real node's name, node IP, bridge, subnet, cgroup and ports (None: it has none)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "ready": self.ready,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "state_dir": str(self.state_dir),
            "versions": self.versions,
            "sizing": None if self.sizing is None else self.sizing.to_json(),
            "real_node": self.real_node,
            "components": [c.to_json() for c in self.components],
        }


# ------------------------------------------------------------------------------------ public API


def kubeconfig_path(state_dir: Path | None = None) -> Path:
    """Where the admin kubeconfig is (written by ``up``)."""
    return Layout.of(state_dir).admin_kubeconfig


def status(state_dir: Path | None = None) -> ClusterStatus:
    """Report each recorded component (pid, address, alive) without changing anything."""
    layout = Layout.of(state_dir)
    state = _load(layout)
    if state is None:
        return ClusterStatus(False, [], layout.root, layout.admin_kubeconfig, versions=_versions())
    comps = []
    for name in _order(state):
        rec = state["components"].get(name)
        if rec is None:
            comps.append(ComponentStatus(name, None, "", False))
            continue
        ok = procs.alive(rec["pid"], rec["ticks"])
        comps.append(
            ComponentStatus(
                name,
                rec["pid"],
                rec["spec"]["address"],
                ok,
                procs.rss_kib(rec["pid"]) if ok else None,
            )
        )
    running = all(c.alive for c in comps)
    ready = running and _api_ready(layout, state["server"])
    rn = state.get("real_node")
    if ready and rn:
        ready = not nodes.not_ready(state["server"], _admin_ctx(layout), (rn["name"],))
    return ClusterStatus(
        running,
        comps,
        layout.root,
        layout.admin_kubeconfig,
        state["server"],
        ready,
        _versions(),
        nodes.Sizing.from_json(state.get("sizing")),
        rn,
    )


def up(
    state_dir: Path | None = None,
    timeout: float = 300.0,
    log: Log = print,
    *,
    node_count: int | None = None,
    pods_per_node: int | None = None,
    real_node: bool | None = None,
) -> ClusterStatus:
    """Start the cluster (or repair it) and return once /readyz is ok and all nodes are Ready.

    ``node_count`` and ``pods_per_node`` size the fake nodes (see ``nodes.Sizing.resolve`` for
    the defaults); a running cluster with another sizing is resized in place. ``real_node``
    adds (True) or removes (False) the real node; None keeps what the cluster has.
    """
    _require_linux()
    layout = Layout.of(state_dir)
    clock = _Clock(log)
    with _locked(layout):
        state = _load(layout)
        recorded = None if state is None else nodes.Sizing.from_json(state.get("sizing"))
        sizing = nodes.Sizing.resolve(node_count, pods_per_node, recorded)
        want_real = bool(state and state.get("real_node")) if real_node is None else real_node
        if want_real:
            realnode.check_host()
        if (
            state is not None
            and _all_alive(state, ORDER)
            and _fully_ready(layout, state, sizing)
            and (not want_real or _kubelet_ready_api(state))
            and not _audit_policy_stale(layout, state, clock)
        ):
            run = _Run(layout, state, time.monotonic() + timeout, clock)
            run.watched.update(ORDER)
            changed = sizing != recorded
            if changed:
                run.wait_cluster_ready(sizing)
            if want_real:
                changed = _ensure_real_node(run, binaries.ensure(log)) or changed
            elif state.get("real_node"):
                _remove_real_node(run)
                changed = True
            if not changed:
                where = f"{state['server']} (kubeconfig {layout.admin_kubeconfig})"
                clock.say(f"already running: {where}")
            return status(layout.root)
        bins = binaries.ensure(log)
        deadline = time.monotonic() + timeout
        if state is not None and _repairable(layout, state, bins):
            try:
                run = _Run(layout, state, deadline, clock)
                _repair(run, sizing)
                if want_real:
                    _ensure_real_node(run, bins)
                elif state.get("real_node"):
                    _remove_real_node(run)
                return status(layout.root)
            except DevClusterError as e:
                clock.say(f"repair failed ({str(e).splitlines()[0]}); starting clean")
        if state is not None:
            _teardown(layout, clock)
        try:
            run = _fresh_start(layout, bins, deadline, clock, sizing)
            if want_real:
                _ensure_real_node(run, bins)
        except BaseException:
            clock.say(f"start failed; stopping what was started (logs kept in {layout.logs})")
            _teardown(layout, clock)
            raise
        return status(layout.root)


def user_kubeconfig(user: str, groups: list[str], state_dir: Path | None = None) -> Path:
    """A kubeconfig for another identity on the running cluster (a client certificate signed by
    its CA), e.g. to tell one client's requests apart in the audit log by user name."""
    layout = Layout.of(state_dir)
    state = _load(layout)
    if state is None:
        raise DevClusterError("no dev cluster: run `pythonapp dev up` first")
    out = layout.config / "users"
    out.mkdir(parents=True, exist_ok=True)
    cert, key = client_cert_for(layout.pki, out, user, groups)
    return kubeconfig.write(
        out / f"{user}.kubeconfig",
        state["server"],
        ca=Pki(layout.pki).ca_cert,
        cert=cert,
        key=key,
        user=user,
    )


def down(state_dir: Path | None = None, log: Log | None = None) -> None:
    """Stop every process ``up`` started (by pid) and remove the cluster's data; logs are kept.
    A real node's host changes are undone too (``realnode.teardown``); ``log`` hears each step."""
    layout = Layout.of(state_dir)
    if not layout.root.exists():
        return
    with _locked(layout):
        _teardown(layout, None if log is None else _Clock(log))


# ------------------------------------------------------------------------------------ internals


class _Clock:
    """Progress lines prefixed with the time elapsed since the operation began."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def say(self, msg: str) -> None:
        # Progress must never break start-up or clean-up (e.g. stdout piped into `head`).
        with contextlib.suppress(OSError, ValueError):
            self.log(f"[dev {self.elapsed():5.1f}s] {msg}")


def _require_linux() -> None:
    if not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists():
        raise DevClusterError(
            "pythonapp dev runs the control plane as local Linux processes and needs /proc; "
            "on this system use kind (see deploy/) and point tests at it with KUBECONFIG_E2E."
        )


def _versions() -> dict[str, str]:
    return {
        "kubernetes": binaries.K8S_VERSION,
        "etcd": binaries.ETCD_VERSION,
        "kwok": binaries.KWOK_VERSION,
    }


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load(layout: Layout) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(layout.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if state.get("version") == _STATE_VERSION else None


def _save(layout: Layout, state: dict[str, Any]) -> None:
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(layout.state_file)


def _order(state: dict[str, Any]) -> tuple[str, ...]:
    """The components of this cluster, in start order (the real node's last, when it has one)."""
    return ORDER + realnode.ORDER if state.get("real_node") else ORDER


def _all_alive(state: dict[str, Any], names: tuple[str, ...]) -> bool:
    recs = state["components"]
    return all(n in recs and procs.alive(recs[n]["pid"], recs[n]["ticks"]) for n in names)


def _kubelet_ready_api(state: dict[str, Any]) -> bool:
    """The API server was started with the flags a kubelet needs (older clusters were not:
    they are started afresh rather than given a node the API server cannot reach)."""
    argv = state["components"]["kube-apiserver"]["spec"]["argv"]
    return any(a.startswith("--kubelet-preferred-address-types=") for a in argv)


def _admin_ctx(layout: Layout) -> Any:
    pki = Pki(layout.pki)
    return api.admin_context(pki.ca_cert, pki.client_cert("admin"), pki.client_key("admin"))


def _api_ready(layout: Layout, server: str) -> bool:
    try:
        ctx = _admin_ctx(layout)
    except (OSError, ValueError):
        return False
    return api.request(f"{server}/readyz", ctx, timeout=3.0)[0] == 200


def _fully_ready(layout: Layout, state: dict[str, Any], sizing: nodes.Sizing) -> bool:
    if not _api_ready(layout, state["server"]):
        return False
    return not nodes.not_ready(state["server"], _admin_ctx(layout), sizing.names)


def _audit_policy_stale(layout: Layout, state: dict[str, Any], clock: _Clock) -> bool:
    """True (and the running API server stopped, for ``_repair`` to restart it) when the policy
    it was started with is not the current :data:`AUDIT_POLICY`."""
    path = audit_policy_path(layout)
    try:
        if path.read_text() == AUDIT_POLICY:
            return False
    except FileNotFoundError:
        pass
    clock.say("the audit policy changed; restarting kube-apiserver with the current one")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(AUDIT_POLICY)
    rec = state["components"]["kube-apiserver"]
    procs.stop(rec["pid"], rec["ticks"])
    return True


def _repairable(layout: Layout, state: dict[str, Any], bins: binaries.Binaries) -> bool:
    return (
        state.get("bin_dir") == str(bins.dir)
        and Path(state["data_dir"], "etcd").is_dir()
        and Pki(layout.pki).complete()
        and all(n in state["components"] for n in ORDER)
        and _kubelet_ready_api(state)
    )


@dataclass
class _Run:
    """One ``up`` in progress: where to record processes, when to give up, how to report."""

    layout: Layout
    state: dict[str, Any]
    deadline: float
    clock: _Clock
    watched: set[str] = field(default_factory=set)
    """Components that must stay alive while waiting (started or found alive by this run)."""

    def start(self, spec: Spec) -> None:
        self.clock.say(f"starting {spec.name} on {spec.address}")
        log_path = self.layout.logs / f"{spec.name}.log"
        pid, ticks = procs.spawn(spec.argv, log_path)
        self.record(spec, pid, ticks, log_path)

    def record(self, spec: Spec, pid: int, ticks: int, log_path: Path) -> None:
        """Track a process (started here or by a component's own module) like the others."""
        self.state["components"][spec.name] = {
            "spec": spec.to_json(),
            "pid": pid,
            "ticks": ticks,
            "log": str(log_path),
        }
        _save(self.layout, self.state)
        self.watched.add(spec.name)

    def wait_healthy(self, name: str) -> None:
        spec = self.state["components"][name]["spec"]
        ctx = _admin_ctx(self.layout) if name == "kube-apiserver" else None

        def probe() -> str | None:
            if spec["health_url"].startswith(("unix://", "tcp://")):
                return realnode.socket_listening(spec["health_url"])
            code, body = api.request(spec["health_url"], ctx, timeout=3.0)
            if code == 200:
                return None
            failing = [ln[3:].split(" ")[0] for ln in body.splitlines() if ln.startswith("[-]")]
            if failing:  # /readyz lists its checks; name the ones still failing
                return f"HTTP {code}, pending: {', '.join(failing)}"
            return f"HTTP {code}: {' '.join(body.split())[-200:]}" if code else body

        self.wait(f"{name} healthy", probe)

    def wait(self, what: str, check: Callable[[], str | None]) -> None:
        """Poll ``check`` (None = done, else why not) until the deadline; fail fast on a crash."""
        last_report = time.monotonic()
        while True:
            for name in self.watched:
                rec = self.state["components"][name]
                if not procs.alive(rec["pid"], rec["ticks"]):
                    raise DevClusterError(
                        f"{name} exited while waiting for {what}.\n{_tail(Path(rec['log']))}"
                    )
            why = check()
            if why is None:
                return
            now = time.monotonic()
            if now >= self.deadline:
                logs = "\n".join(
                    _tail(Path(r["log"]), 8) for r in self.state["components"].values()
                )
                raise DevClusterError(
                    f"timed out waiting for {what} (last: {why}).\n{logs}\n"
                    "Give it more time (a busy 2-core machine can need 2 minutes) or run "
                    "`pythonapp dev down` and `pythonapp dev up` again."
                )
            if now - last_report >= _PROGRESS_EVERY:
                self.clock.say(f"waiting for {what} ({why[:120]})")
                last_report = now
            time.sleep(_POLL)

    def wait_cluster_ready(self, sizing: nodes.Sizing) -> None:
        server, ctx = self.state["server"], _admin_ctx(self.layout)
        self.clock.say(
            f"ensuring {sizing.nodes} kwok nodes of {sizing.pods_per_node} pods exist and are Ready"
        )
        self.wait("node creation", lambda: _try(lambda: nodes.ensure(server, ctx, sizing)))
        self.state["sizing"] = sizing.to_json()
        _save(self.layout, self.state)
        self.wait(
            "nodes Ready", lambda: _describe_missing(nodes.not_ready(server, ctx, sizing.names))
        )
        sa_url = f"{server}/api/v1/namespaces/default/serviceaccounts/default"
        self.wait(
            "default ServiceAccount",
            lambda: None if api.request(sa_url, ctx)[0] == 200 else "not created yet",
        )
        self.clock.say(f"ready: {server}; kubeconfig: {self.layout.admin_kubeconfig}")


_UNRESPONSIVE_AFTER = 5.0
"""How long a live component may refuse connections before ``_repair`` counts it dead."""
_DRAIN_BOUND = 15.0
"""How long a stopped component may take to exit (kube-apiserver drains for ~60 s after
SIGTERM without listening) before it is killed."""


def _unresponsive(run: _Run, name: str) -> bool:
    """True when the live process ``name`` refuses connections for ``_UNRESPONSIVE_AFTER``
    seconds: not a slow start (that answers, with an error) but a process on its way out, such
    as a kube-apiserver draining after SIGTERM."""
    spec = run.state["components"][name]["spec"]
    if spec["health_url"].startswith(("unix://", "tcp://")):
        return False
    ctx = _admin_ctx(run.layout) if name == "kube-apiserver" else None
    deadline = time.monotonic() + _UNRESPONSIVE_AFTER
    while True:
        if api.request(spec["health_url"], ctx, timeout=2.0)[0] != 0:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(_POLL)


def _repair(run: _Run, sizing: nodes.Sizing) -> None:
    recs = run.state["components"]
    dead = [n for n in ORDER if not procs.alive(recs[n]["pid"], recs[n]["ticks"])]
    for name in [n for n in ORDER if n not in dead]:
        if _unresponsive(run, name):
            rec = recs[name]
            run.clock.say(
                f"{name} (pid {rec['pid']}) is alive but not listening (draining after "
                "SIGTERM?); stopping it"
            )
            procs.stop(rec["pid"], rec["ticks"], grace=_DRAIN_BOUND)
            dead.append(name)
    run.watched.update(n for n in ORDER if n not in dead)
    if dead:
        run.clock.say(f"restarting dead component(s): {', '.join(dead)}")
    server, ctx = run.state["server"], _admin_ctx(run.layout)
    names = (nodes.Sizing.from_json(run.state.get("sizing")) or nodes.Sizing()).names
    for name in ORDER:
        if name == "kwok" and name in dead:
            run.wait(
                "old node leases released",
                lambda: _try(lambda: nodes.release_leases(server, ctx, names)),
            )
        if name in dead:
            run.start(Spec(**recs[name]["spec"]))
        run.wait_healthy(name)
    run.wait_cluster_ready(sizing)


def _fresh_start(
    layout: Layout, bins: binaries.Binaries, deadline: float, clock: _Clock, sizing: nodes.Sizing
) -> _Run:
    for d in (layout.pki, layout.config, layout.data):
        shutil.rmtree(d, ignore_errors=True)
    layout.data.mkdir(parents=True, mode=0o700)
    layout.logs.mkdir(parents=True, exist_ok=True)
    for old in layout.logs.glob("*.log"):
        old.unlink()
    clock.say("generating certificates and kubeconfigs")
    pki = generate_pki(layout.pki)
    ports = Ports.pick()
    server = f"https://127.0.0.1:{ports.apiserver}"
    for who, (user, _groups) in CLIENTS.items():
        target = layout.admin_kubeconfig if who == "admin" else layout.config / f"{who}.kubeconfig"
        kubeconfig.write(
            target,
            server,
            ca=pki.ca_cert,
            cert=pki.client_cert(who),
            key=pki.client_key(who),
            user=user,
        )
    audit_policy_path(layout).write_text(AUDIT_POLICY)
    state: dict[str, Any] = {
        "version": _STATE_VERSION,
        "bin_dir": str(bins.dir),
        "data_dir": str(layout.data),
        "server": server,
        "ports": ports.to_json(),
        "components": {},
    }
    _save(layout, state)
    run = _Run(layout, state, deadline, clock)
    all_specs = specs(bins, layout, pki, ports)
    for name in ("etcd", "kube-apiserver"):
        run.start(all_specs[name])
        run.wait_healthy(name)
    for name in ORDER[2:]:
        run.start(all_specs[name])
    for name in ORDER[2:]:
        run.wait_healthy(name)
    run.wait_cluster_ready(sizing)
    return run


def _ensure_real_node(run: _Run, bins: binaries.Binaries) -> bool:
    """Start the real node, or restart its dead components; False when it was running and
    Ready already. Its plan (names, subnet, ports) is recorded once and kept."""
    layout, state = run.layout, run.state
    server, ctx = state["server"], _admin_ctx(layout)
    rn = state.get("real_node")
    recs = state["components"]
    outdated = realnode.stale(layout, rn) if rn else []
    if (
        rn
        and not outdated
        and _all_alive(state, realnode.ORDER)
        and not nodes.not_ready(server, ctx, (rn["name"],))
    ):
        run.watched.update(realnode.ORDER)
        return False
    for name in outdated:
        rec = recs.get(name)
        if rec is not None and procs.alive(rec["pid"], rec["ticks"]):
            run.clock.say(f"{name}'s configuration changed; restarting it")
            procs.stop(rec["pid"], rec["ticks"])
    if rn is None:
        rn = state["real_node"] = realnode.plan(layout)
        _save(layout, state)
    run.clock.say(
        f"real node {rn['name']}: bridge {rn['bridge']} {rn['subnet']}, cgroup /{rn['cgroup']}"
    )
    realnode.prepare(layout, rn, server)
    all_specs = realnode.specs(bins, rn, server)
    for name in realnode.ORDER:
        rec = recs.get(name)
        if rec is not None and procs.alive(rec["pid"], rec["ticks"]):
            run.watched.add(name)
            run.wait_healthy(name)
            continue
        if name == "registry":  # started by its module (config, port kept when free)
            root = realnode.registry_root(layout)
            reg = registry.start(root)
            run.clock.say(f"image registry on http://{reg.address} (loopback only)")
            run.record(realnode.registry_spec(reg), reg.pid, reg.ticks, registry.log_path(root))
            realnode.write_registry_hosts(rn, reg.address)
            continue
        run.start(all_specs[name])
        run.wait_healthy(name)
        if name == "containerd":
            run.clock.say("importing the pause image into containerd (built once, cached)")
            realnode.import_pause(rn, layout.logs / "pause-image.log")
    run.wait(
        f"real node {rn['name']} Ready",
        lambda: _describe_missing(nodes.not_ready(server, ctx, (rn["name"],))),
    )
    run.clock.say(f"real node {rn['name']} Ready at {rn['node_ip']}")
    return True


def _remove_real_node(run: _Run) -> None:
    """``up(real_node=False)`` on a cluster that has one: stop it, undo its host changes and
    delete its Node object."""
    rn = run.state["real_node"]
    run.clock.say(f"removing real node {rn['name']}")
    problems = realnode.teardown(run.layout, run.state, run.clock.say)
    _save(run.layout, run.state)
    if problems:
        raise DevClusterError("removing the real node left work undone: " + "; ".join(problems))
    api.request(
        f"{run.state['server']}/api/v1/nodes/{rn['name']}", _admin_ctx(run.layout), "DELETE"
    )


def _try(action: Callable[[], None]) -> str | None:
    """Run an API action for ``_Run.wait``: None when it worked, else why it did not."""
    try:
        action()
    except RuntimeError as e:
        return str(e)
    return None


def _describe_missing(names: list[str]) -> str | None:
    return f"not Ready: {', '.join(names)}" if names else None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"  ({path} missing)"
    return f"  last lines of {path}:\n" + "\n".join(f"    {t}" for t in text)


def _teardown(layout: Layout, clock: _Clock | None) -> None:
    """Stop recorded processes (reverse start order) and delete data, PKI and kubeconfigs."""
    state = _load(layout)
    data_dirs = {layout.data}
    problems: list[str] = []
    if state is not None:
        data_dirs.add(Path(state["data_dir"]))
        problems = realnode.teardown(
            layout, state, clock.say if clock is not None else lambda _m: None
        )
        _save(layout, state)
        recs = state["components"]
        for name in reversed([n for n in ORDER if n in recs]):
            rec = recs[name]
            if clock is not None and procs.alive(rec["pid"], rec["ticks"]):
                clock.say(f"stopping {name} (pid {rec['pid']})")
            procs.stop(rec["pid"], rec["ticks"])
    for d in data_dirs:
        shutil.rmtree(d, ignore_errors=True)
    for d in (layout.pki, layout.config):
        shutil.rmtree(d, ignore_errors=True)
    if problems and state is not None:
        # only the real node's record is kept, so `down` (or `up`) tries its teardown again
        state["components"] = {n: r for n, r in state["components"].items() if n in realnode.ORDER}
        _save(layout, state)
        raise DevClusterError(
            "the control plane is stopped, but undoing the real node's host changes failed: "
            + "; ".join(problems)
            + "\nRun `pythonapp dev down` again to retry."
        )
    for f in (layout.admin_kubeconfig, layout.state_file):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)
