"""A local Kubernetes control plane for development and tests, without Docker.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes whose pods
become Running/Ready) run as plain processes on 127.0.0.1 (and, with ``real_node``, one real
node: containerd and a kubelet, see ``realnode``), from binaries built once from the Go
module proxy (see ``build-controlplane.sh``). ``pythonapp dev up|down|status|kubeconfig`` wraps
this API; the integration tests use it through a session-scoped fixture.
"""

from . import realnode
from .binaries import ETCD_VERSION, K8S_VERSION, KWOK_VERSION
from .cluster import (
    ClusterStatus,
    ComponentStatus,
    down,
    kubeconfig_path,
    status,
    up,
    user_kubeconfig,
)
from .errors import DevClusterError
from .nodes import Sizing

__all__ = [
    "ETCD_VERSION",
    "K8S_VERSION",
    "KWOK_VERSION",
    "ClusterStatus",
    "ComponentStatus",
    "DevClusterError",
    "Sizing",
    "down",
    "kubeconfig_path",
    "realnode",
    "status",
    "up",
    "user_kubeconfig",
]
