"""What each component runs with: command line, address and health endpoint.

Kept apart from process handling so the flags can be read (and reviewed) in one place. The
choices that matter:

* every listener on 127.0.0.1 with a port picked free at first start (kept across restarts of a
  single component so clients stay valid);
* etcd with ``--unsafe-no-fsync`` on tmpfs: the data is throw-away, speed matters;
* kube-apiserver with ``--authorization-mode=Node,RBAC`` and the default admission plugins plus
  NodeRestriction (so PodSecurity, webhooks and ValidatingAdmissionPolicy are real), and the
  kubelet client flags a real node (``realnode``) needs. An empty ``--admission-control=``
  (what kwokctl passes with admission off) is never used: it would switch webhooks off too;
* controller-manager and scheduler with their own identities, ``--leader-elect=false``; the
  controller-manager gets ``--use-service-account-credentials`` so each controller acts (and is
  authorised) as its own service account, like in a real cluster;
* kwok with the stage files, managing only nodes annotated ``kwok.x-k8s.io/node=fake``.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .binaries import Binaries
from .paths import Layout
from .pki import SERVICE_CIDR, Pki

HOST = "127.0.0.1"
POD_CIDR = "10.244.0.0/16"
"""Pod IPs kwok hands out. They are fake: nothing listens on them, never contact them."""
NODE_IP = "127.0.0.1"
"""The nodes' InternalIP: loopback, so an accidental kubelet call (logs/exec) fails fast."""
NODE_LEASE_SECONDS = 40
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class Ports:
    """One free loopback port per listener."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        """Ask the kernel for free ports, holding all sockets open until every one is chosen."""
        socks = []
        try:
            for _ in range(6):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((HOST, 0))
                socks.append(s)
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Spec:
    """How to run and probe one component."""

    name: str
    argv: list[str]
    address: str
    health_url: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Audit policy: metadata (who, verb, resource, when; no bodies) of every request, reads
#: included, except the Lease heartbeats of nodes and components. Tests count the operator's
#: writes from this log, e.g. zero after a restart; the benchmark counts its reads and writes
#: per app (``devcluster.audit``). Logging reads too costs the API server little: the
#: controllers and kwok read through watches, so most read lines are clients' gets and lists,
#: and a flood of GETs (16 in flight) cost it about 10% more CPU per request with reads logged
#: than without (1.85 vs 1.65 ms on 2 busy cores, measured for the benchmark).
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Metadata
"""


def audit_policy_path(layout: Layout) -> Path:
    """Where ``up`` writes :data:`AUDIT_POLICY`."""
    return layout.config / "audit-policy.yaml"


def audit_log_path(layout: Layout) -> Path:
    """The API server's audit log (JSON lines)."""
    return layout.logs / "audit.log"


def specs(bins: Binaries, layout: Layout, pki: Pki, ports: Ports) -> dict[str, Spec]:
    """All five components, keyed by name, in start order."""
    cfg = layout.config
    etcd_url = f"http://{HOST}:{ports.etcd_client}"
    peer_url = f"http://{HOST}:{ports.etcd_peer}"
    api = f"https://{HOST}:{ports.apiserver}"
    out = [
        Spec(
            "etcd",
            [
                str(bins.path("etcd")),
                "--name=dev",
                f"--data-dir={layout.data / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=dev={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",
                "--auto-compaction-mode=periodic",
                "--auto-compaction-retention=5m",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
            etcd_url,
            f"{etcd_url}/health",
        ),
        Spec(
            "kube-apiserver",
            [
                str(bins.path("kube-apiserver")),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={ports.apiserver}",
                f"--cert-dir={layout.data / 'apiserver-certs'}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # PodNodeSelector / PodTolerationRestriction: a namespace's annotations can put
                # all its pods on the real node (`dev up --real-node`) with no change to what
                # the operator renders; inert for namespaces without them.
                "--enable-admission-plugins=NodeRestriction,PodNodeSelector,"
                "PodTolerationRestriction",
                # The real node's kubelet (`dev up --real-node`): called at its InternalIP
                # (its hostname does not resolve), as a client it authorises, over TLS checked
                # against the dev CA. Harmless on a cluster of kwok nodes only.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--kubelet-client-certificate={pki.client_cert('kubelet-client')}",
                f"--kubelet-client-key={pki.client_key('kubelet-client')}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                "--allow-privileged=true",
                # The kubernetes Service's endpoints would be 127.0.0.1, which Endpoints
                # validation refuses; nothing in this cluster reaches the API through the Service.
                "--endpoint-reconciler-type=none",
                f"--audit-policy-file={audit_policy_path(layout)}",
                f"--audit-log-path={audit_log_path(layout)}",
                "--audit-log-maxsize=200",
                "--audit-log-maxbackup=1",
                "--profiling=false",
                "--v=1",
            ],
            api,
            f"{api}/readyz",
        ),
    ]
    for name, port, extra in (
        (
            "kube-controller-manager",
            ports.controller_manager,
            [
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--controllers=*",
                "--node-monitor-grace-period=60s",
            ],
        ),
        ("kube-scheduler", ports.scheduler, []),
    ):
        kc = cfg / f"{name.removeprefix('kube-')}.kubeconfig"
        url = f"https://{HOST}:{port}"
        out.append(
            Spec(
                name,
                [
                    str(bins.path(name)),
                    f"--kubeconfig={kc}",
                    f"--authentication-kubeconfig={kc}",
                    f"--authorization-kubeconfig={kc}",
                    "--leader-elect=false",
                    f"--bind-address={HOST}",
                    f"--secure-port={port}",
                    f"--cert-dir={layout.data / (name + '-certs')}",
                    "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                    # Client-side rate limits sized for thousands of apps (the defaults, 20
                    # and 50 requests/s, made the Deployment controller the bottleneck of a
                    # 500-app rollout: minutes of "has not seen the latest template"). kwokctl
                    # raises them the same way for its benchmarks.
                    "--kube-api-qps=500",
                    "--kube-api-burst=1000",
                    *extra,
                    "--v=1",
                ],
                url,
                f"{url}/healthz",
            )
        )
    kwok_url = f"http://{HOST}:{ports.kwok}"
    out.append(
        Spec(
            "kwok",
            [
                str(bins.path("kwok")),
                f"--kubeconfig={cfg / 'kwok.kubeconfig'}",
                *(f"--config={s}" for s in bins.kwok_stages),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                f"--server-address={HOST}:{ports.kwok}",
            ],
            kwok_url,
            f"{kwok_url}/healthz",
        )
    )
    return {s.name: s for s in out}
