"""One real node beside the kwok nodes (``pythonapp dev up --real-node``): containerd + kubelet.

kwok's nodes run nothing; pods whose probes, mounts, uid, limits and SIGTERM must really happen
run here. What it takes on this kind of machine (Debian, cgroup v1, no Docker, a VM without
CAP_SYS_RESOURCE) is in shared/notes/realnode.md; the choices that matter:

* containerd with a config, root, state and socket of its own (so it never meets a system
  containerd), CRI ``restrict_oom_score_adj`` (else every sandbox fails: the kernel refuses the
  pause container's negative oom_score_adj), cgroupfs, overlayfs, CNI dirs of its own, a
  ``certs.d`` dir for per-registry ``hosts.toml`` (a loopback registry pulled over plain http),
  a locally built pause image (``pause``) as the sandbox image, streaming on loopback;
* a CNI bridge of its own (named after the state dir) with host-local addresses in a free /24,
  ``ipMasq: false`` and no route out: pod traffic stays between the host and the pods;
* the kubelet with x509 (the dev CA) + webhook authentication and authorization, no read-only
  port, ``failCgroupV1: false`` (this machine has cgroup v1), cgroupfs under a cgroup root of its
  own, its node IP the bridge's gateway address (it refuses a loopback one), and a taint + label
  so only pods meant for it land there;
* the API server reachable from pods: it listens on 127.0.0.1 (which a pod's 127.0.0.1 is not),
  and has one ``--bind-address`` only, so ``socat`` forwards the same port on the bridge's
  address (reachable from the pod network only: the bridge has no route out) to it, TLS passed
  through. A pod names the API server ``kubernetes.default.svc`` (a SAN of its serving
  certificate) resolved to the bridge address by ``hostAliases`` (:func:`in_cluster_api`): no
  certificate change, and no kube-proxy needed for the ``kubernetes`` Service;
* an image registry of its own on loopback (Debian's ``docker-registry``, see ``registry``), which
  containerd pulls from over plain HTTP (``hosts.toml``);
* every listener on a free port, every file under ``<state dir>/realnode``; what it must change
  on the host (sysctls, a few fixed paths, cgroups, the bridge) goes through ``realhost``, which
  records it and puts it back on ``down``.

Processes are tracked like the control plane's (``cluster._Run``: pid + start time, address,
health), so ``dev status`` lists them and ``dev up`` restarts the dead ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from . import kubeconfig, procs, realhost, registry
from .binaries import Binaries
from .components import HOST, Spec
from .errors import DevClusterError
from .paths import Layout
from .pki import Pki, client_cert_for, serving_cert_for

ORDER = ("registry", "containerd", "kubelet", "api-forward")
"""The real node's components, in start order: the loopback image registry (``registry``,
whose images only this node pulls), containerd, the kubelet, and ``api-forward``: the API
server's port on the bridge address too, for pods (:func:`api_forward_argv`)."""
NODE_NAME = "pythonapp-dev-real-node"
LABEL = ("pythonapp.dev/real-node", "true")
"""Label and taint (NoSchedule) of the real node: a pod lands there only when it selects the
label and tolerates the taint (or its namespace's PodNodeSelector/PodTolerationRestriction
annotations say so: :func:`namespace_annotations`)."""


def namespace_annotations() -> dict[str, str]:
    """Annotations that send every pod of a namespace to the real node, whatever the pod says
    (the API server's PodNodeSelector and PodTolerationRestriction admission plugins): a
    PythonApp's pods run for real with no change to what the operator renders."""
    key, value = LABEL
    toleration = {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
    return {
        "scheduler.alpha.kubernetes.io/node-selector": f"{key}={value}",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([toleration]),
    }


CNI_BIN_DIR = "/usr/lib/cni"
"""Debian's containernetworking-plugins."""
PACKAGES_SCRIPT = "scripts/realnode-packages.sh"
_NEEDED = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    f"{CNI_BIN_DIR}/bridge": "containernetworking-plugins",
    f"{CNI_BIN_DIR}/host-local": "containernetworking-plugins",
    "umoci": "umoci",
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "socat": "socat",
}


def check_host() -> None:
    """Refuse early, in one sentence, when this machine cannot run the real node."""
    if os.geteuid() != 0:
        raise DevClusterError(
            "the real node (--real-node) needs root: it runs containerd and a kubelet, makes a "
            "bridge and cgroups; run as root, or leave --real-node out"
        )
    missing = sorted(
        {pkg for tool, pkg in _NEEDED.items() if not (shutil.which(tool) or Path(tool).is_file())}
    )
    if missing:
        raise DevClusterError(
            f"the real node needs Debian packages not installed here ({', '.join(missing)}): "
            f"run `bash {PACKAGES_SCRIPT}` as root (it installs them), then `pythonapp dev up "
            "--real-node` again"
        )


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def plan(layout: Layout) -> dict[str, Any]:
    """The real node's names, subnet and ports, recorded in the cluster state once and kept
    across repairs (the kubelet's certificate names its IP)."""
    digest = hashlib.sha256(str(layout.root).encode()).hexdigest()
    subnet = realhost.pick_subnet(int(digest[:4], 16), realhost.host_networks())
    kubelet, healthz = _free_ports(2)
    return {
        "name": NODE_NAME,
        "dir": str(layout.root / "realnode"),
        "bridge": f"pyapp{digest[:8]}",
        "subnet": str(subnet),
        "node_ip": str(next(subnet.hosts())),
        "cgroup": f"pythonapp-{digest[:10]}",
        "ports": {"kubelet": kubelet, "healthz": healthz},
    }


class Files:
    """Paths under ``<state dir>/realnode``."""

    def __init__(self, rn: dict[str, Any]) -> None:
        self.dir = Path(rn["dir"])

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.dir / "containerd.toml"

    @property
    def registry_hosts(self) -> Path:
        """containerd's ``config_path``: one ``<host:port>/hosts.toml`` per registry."""
        return self.dir / "certs.d"

    @property
    def cni_conf(self) -> Path:
        return self.dir / "cni" / "net.d"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.dir / "kubelet.yaml"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.dir / "kubelet.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.dir / "pki"


def containerd_config(rn: dict[str, Any], sandbox_image: str) -> str:
    """containerd's config (version 2), every path its own."""
    f = Files(rn)
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{f.dir / "containerd" / "root"}"
state = "{f.dir / "containerd" / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{f.socket}"

[ttrpc]
  address = "{f.socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{f.dir / "containerd" / "opt"}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  # This VM lacks CAP_SYS_RESOURCE: a negative oom_score_adj (the pause container's) is
  # refused and every sandbox would fail with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  stream_server_address = "{HOST}"
  stream_server_port = "0"
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{f.cni_conf}"
  max_conf_num = 1

[{cri}.registry]
  config_path = "{f.registry_hosts}"
"""


def cni_config(rn: dict[str, Any]) -> dict[str, Any]:
    """A bridge of its own, host-local addresses (their records under the state dir), no
    masquerade and no routes: pods reach the host and each other, nothing beyond."""
    return {
        "cniVersion": "1.0.0",
        "name": "pythonapp-dev",
        "plugins": [
            {
                "type": "bridge",
                "bridge": rn["bridge"],
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": rn["subnet"], "gateway": rn["node_ip"]}]],
                    "dataDir": str(Files(rn).dir / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet_config(rn: dict[str, Any], ca: Path, cert: Path, key: Path) -> dict[str, Any]:
    """The KubeletConfiguration (see the module docstring for why each choice)."""
    f = Files(rn)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": rn["node_ip"],
        "port": rn["ports"]["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": HOST,
        "healthzPort": rn["ports"]["healthz"],
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        # Kubernetes 1.35+ refuses cgroup v1 unless told; this machine has v1 (may stop
        # working in a later release).
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{rn['cgroup']}",
        "cgroupsPerQOS": True,
        "containerRuntimeEndpoint": f"unix://{f.socket}",
        "podLogsDir": str(f.dir / "pod-logs"),
        "volumePluginDir": str(f.dir / "volume-plugins"),
        "registerNode": True,
        "registerWithTaints": [{"key": LABEL[0], "value": LABEL[1], "effect": "NoSchedule"}],
        "maxPods": 30,
        # The pause image is imported, not pullable: image GC must never remove it.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        # Once the kubelet has pulled an image (say the pause image pushed to the registry),
        # its default (NeverVerifyPreloadedImages) refuses the same image under another name
        # with imagePullPolicy Never ("not present"): the imported pause image and the app
        # images are this single-user node's own, so no pull credentials are checked.
        "imagePullCredentialsVerificationPolicy": "NeverVerify",
        "protectKernelDefaults": False,
        "resolvConf": "/etc/resolv.conf",
    }


def _configs(layout: Layout, rn: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    """Each process's config file and the text this version of the code writes into it."""
    from . import pause  # noqa: PLC0415 (only the real node needs it)

    f = Files(rn)
    serving = (f.pki / f"{rn['name']}.crt", f.pki / f"{rn['name']}.key")
    kubelet = kubelet_config(rn, Pki(layout.pki).ca_cert, *serving)
    return {
        "containerd": (f.containerd_config, containerd_config(rn, pause.REF)),
        "kubelet": (f.kubelet_config, yaml.safe_dump(kubelet, sort_keys=False)),
    }


def stale(layout: Layout, rn: dict[str, Any]) -> list[str]:
    """The components whose config file differs from what this version writes (they were
    started by an older one): ``dev up`` restarts them, as it does an API server started with
    an older audit policy."""
    out = []
    for name, (path, text) in _configs(layout, rn).items():
        try:
            if path.read_text() == text:
                continue
        except FileNotFoundError:
            pass
        out.append(name)
    return out


def prepare(layout: Layout, rn: dict[str, Any], server: str) -> None:
    """Everything the processes need before they start; idempotent (a repair after a reboot
    re-creates the bridge and cgroups, keeps certificates, writes the current configs)."""
    f = Files(rn)
    realhost.claim(str(layout.root))
    realhost.make_cgroup(rn["cgroup"])
    prefix = int(rn["subnet"].split("/")[1])
    realhost.ensure_bridge(rn["bridge"], rn["node_ip"], prefix)
    for d in (f.dir, f.registry_hosts, f.cni_conf, f.kubelet_root, f.pki):
        d.mkdir(parents=True, exist_ok=True)
    (f.cni_conf / "10-pythonapp.conflist").write_text(json.dumps(cni_config(rn), indent=2))
    ca = Pki(layout.pki)
    serving = (f.pki / f"{rn['name']}.crt", f.pki / f"{rn['name']}.key")
    if not all(p.is_file() for p in serving):
        serving_cert_for(layout.pki, f.pki, rn["name"], [rn["node_ip"]], [rn["name"]])
    user = f"system:node:{rn['name']}"
    client = (f.pki / f"{user}.crt", f.pki / f"{user}.key")
    if not all(p.is_file() for p in client):
        client = client_cert_for(layout.pki, f.pki, user, ["system:nodes"])
    kubeconfig.write(
        f.kubelet_kubeconfig, server, ca=ca.ca_cert, cert=client[0], key=client[1], user=user
    )
    for path, text in _configs(layout, rn).values():
        path.write_text(text)


def api_port(server: str) -> int:
    """The API server's port, from its URL (``https://127.0.0.1:PORT``)."""
    return int(server.rsplit(":", 1)[1].rstrip("/"))


def api_forward_argv(rn: dict[str, Any], server: str) -> list[str]:
    """socat listening on the bridge address at the API server's port, one forked child per
    connection to the API server on loopback (bytes only: TLS is between the pod and it)."""
    port = api_port(server)
    return [
        shutil.which("socat") or "/usr/bin/socat",
        f"TCP-LISTEN:{port},bind={rn['node_ip']},reuseaddr,fork",
        f"TCP:{HOST}:{port}",
    ]


def in_cluster_api(rn: dict[str, Any], server: str) -> tuple[str, str, int]:
    """How a pod on the real node reaches the API server: (host name, IP, port). The name is
    one the serving certificate holds; a pod maps it to the IP with ``hostAliases`` and sets
    ``KUBERNETES_SERVICE_HOST``/``_PORT`` to the name and port (explicit env wins over the
    kubelet's service variables, whose ClusterIP nothing routes here)."""
    return "kubernetes.default.svc", rn["node_ip"], api_port(server)


def specs(bins: Binaries, rn: dict[str, Any], server: str) -> dict[str, Spec]:
    """containerd, the kubelet and the API forwarder, in start order."""
    f = Files(rn)
    healthz = f"http://{HOST}:{rn['ports']['healthz']}/healthz"
    containerd = shutil.which("containerd") or "/usr/bin/containerd"
    return {
        "containerd": Spec(
            "containerd",
            [containerd, f"--config={f.containerd_config}", "--log-level=warn"],
            f"unix://{f.socket}",
            f"unix://{f.socket}",
        ),
        "kubelet": Spec(
            "kubelet",
            [
                str(bins.kubelet),
                f"--config={f.kubelet_config}",
                f"--kubeconfig={f.kubelet_kubeconfig}",
                f"--root-dir={f.kubelet_root}",
                f"--hostname-override={rn['name']}",
                f"--node-ip={rn['node_ip']}",
                f"--node-labels={LABEL[0]}={LABEL[1]}",
                "--v=1",
            ],
            f"https://{rn['node_ip']}:{rn['ports']['kubelet']}",
            healthz,
        ),
        "api-forward": Spec(
            "api-forward",
            api_forward_argv(rn, server),
            f"https://{rn['node_ip']}:{api_port(server)}",
            f"tcp://{rn['node_ip']}:{api_port(server)}",
        ),
    }


def registry_root(layout: Layout) -> Path:
    """The cluster's registry dir (config, storage, log, record; see ``registry``)."""
    return registry.root_of(layout.root)


def registry_spec(reg: registry.Registry) -> Spec:
    """How ``dev status`` shows the registry and ``dev up`` checks it (``GET /v2/``)."""
    url = f"http://{reg.address}"
    return Spec("registry", registry.argv(registry.find_binary(), reg.root), url, f"{url}/v2/")


def write_registry_hosts(rn: dict[str, Any], address: str) -> None:
    """containerd's per-registry config (``certs.d/<host:port>/hosts.toml``): the loopback
    registry is pulled over plain HTTP. containerd reads it at each pull, so a registry that
    came back on another port needs no containerd restart; entries for old ports go."""
    hosts = Files(rn).registry_hosts
    for old in hosts.glob(f"{registry.HOST}:*"):
        if old.name != address:
            shutil.rmtree(old, ignore_errors=True)
    d = hosts / address
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(
        f'server = "http://{address}"\n\n'
        f'[host."http://{address}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )


def import_pause(rn: dict[str, Any], log: Path) -> None:
    """The sandbox image into containerd (built once and cached; see ``pause``)."""
    from . import pause  # noqa: PLC0415

    ctr = shutil.which("ctr") or "/usr/bin/ctr"
    pause.import_into(ctr, Files(rn).socket, log)


def socket_listening(url: str) -> str | None:
    """Health of a component with no HTTP health endpoint (``unix://PATH`` or
    ``tcp://HOST:PORT``): None when it accepts connections, else why not."""
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        family, address = socket.AF_INET, (host, int(port))
    else:
        family, address = socket.AF_UNIX, url.removeprefix("unix://")  # type: ignore[assignment]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        try:
            s.connect(address)
        except OSError as e:
            return f"{url}: {e.strerror or e}"
    return None


def _shims(sock: Path) -> list[int]:
    """Our containerd's shim processes (they outlive containerd; their command line names its
    socket, which no other containerd uses)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"containerd-shim" in argv[0] and str(sock).encode() in argv:
            found.append(int(proc.name))
    return found


def _net_ns_inodes(pids: set[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
    return inodes


def _kill_all(pids_of: Callable[[], set[int] | list[int]], wait: float = 10.0) -> None:
    deadline = time.monotonic() + wait
    while True:
        pids = set(pids_of())
        if not pids or time.monotonic() >= deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def teardown(layout: Layout, state: dict[str, Any], say: Callable[[str], None]) -> list[str]:
    """Stop the real node and undo what it did on the host: kubelet, pods' processes and
    containerd's shims, containerd; then the mounts, the pods' network namespaces, the
    cgroups, the bridge, and (when no other cluster's real node runs) the sysctls and the
    host paths the kubelet and containerd wrote. Every step runs even when one before it
    failed; the failures are returned (empty: the host is as it was). Safe to repeat."""
    rn = state.get("real_node")
    if not rn:
        return []
    f = Files(rn)
    recs = state["components"]
    problems: list[str] = []

    def step(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # reported; the other steps must still run
            problems.append(f"{what}: {e}")

    def stop(name: str) -> None:
        rec = recs.get(name)
        if rec is None:
            return
        if procs.alive(rec["pid"], rec["ticks"]):
            say(f"stopping {name} (pid {rec['pid']})")
        procs.stop(rec["pid"], rec["ticks"])

    netns: set[int] = set()

    def kill_pods() -> None:
        pod_pids = realhost.cgroup_pids(rn["cgroup"])
        netns.update(_net_ns_inodes(pod_pids))
        if pod_pids:
            say(f"stopping the real node's pods ({len(pod_pids)} processes)")
        _kill_all(lambda: realhost.cgroup_pids(rn["cgroup"]))
        _kill_all(lambda: _shims(f.socket))

    def remove_netns() -> None:
        for ns in Path("/run/netns").glob("cni-*"):
            with contextlib.suppress(FileNotFoundError):
                if ns.stat().st_ino in netns:
                    realhost.unmount_under(ns)
                    ns.unlink()

    def release_host() -> None:
        for what in realhost.release(str(layout.root)):
            say(f"host restored: {what}")

    def stop_registry() -> None:
        stop("registry")
        root = registry_root(layout)
        registry.stop(root)  # forgets its record; its images go with the cluster's data
        shutil.rmtree(registry.storage_dir(root), ignore_errors=True)

    step("stopping the kubelet", lambda: stop("kubelet"))
    step("stopping the pods", kill_pods)
    step("stopping the API forwarder", lambda: stop("api-forward"))
    step("stopping containerd", lambda: stop("containerd"))
    step("stopping the image registry", stop_registry)
    step("removing the pods' network namespaces", remove_netns)
    step(f"unmounting under {f.dir}", lambda: realhost.unmount_under(f.dir))
    step(f"removing cgroup /{rn['cgroup']}", lambda: realhost.remove_cgroup(rn["cgroup"]))
    step(f"deleting bridge {rn['bridge']}", lambda: realhost.delete_bridge(rn["bridge"]))
    step("restoring the host", release_host)
    left = realhost.mounts_under(f.dir)
    if left:
        problems.append(f"still mounted: {', '.join(map(str, left))}")
    if problems:  # kept in the state, so the next `down` or `up` tries again
        return problems
    shutil.rmtree(f.dir, ignore_errors=True)
    for name in ORDER:
        recs.pop(name, None)
    state.pop("real_node", None)
    return problems
