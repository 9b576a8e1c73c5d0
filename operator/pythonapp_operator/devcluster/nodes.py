"""The fake nodes kwok keeps alive, and how many of them (the cluster's sizing).

kwok only manages nodes that exist and match its annotation selector, so the harness creates
them. The nodes are spread over three zones so topology spread constraints and anti-affinity
can be tested; capacity is generous so scheduling never fails for lack of room.

How many nodes and how many pods each holds is the cluster's :class:`Sizing`, recorded in its
state (``pythonapp dev status`` shows it) and changed on a running cluster by ``up`` with other
values: missing nodes are created, capacities patched, surplus nodes deleted. The default (three
nodes, 2,500 pods each) holds the benchmark's 2,000 apps of two replicas with room for a
rolling update of all of them; the names and zones of the first three nodes never change.
Status set on create is kept by the API server (as when a kubelet registers), and kwok's
node-initialize stage reuses it.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from typing import Any

from . import api
from .errors import DevClusterError

NAME_PREFIX = "pythonapp-dev-node-"
ZONES = ("zone-a", "zone-b", "zone-c")
REGION = "dev"
ANNOTATION = ("kwok.x-k8s.io/node", "fake")
NODES_ENV = "PYTHONAPP_DEV_NODES"
PODS_ENV = "PYTHONAPP_DEV_PODS_PER_NODE"
DEFAULT_NODES = 3
DEFAULT_PODS_PER_NODE = 2500


def node_names(count: int) -> tuple[str, ...]:
    """``pythonapp-dev-node-0`` ... ``-<count-1>``."""
    return tuple(f"{NAME_PREFIX}{i}" for i in range(count))


NODE_NAMES = node_names(DEFAULT_NODES)
"""The nodes of a cluster with the default sizing (every cluster has the first three)."""


def capacity(pods: int) -> dict[str, str]:
    """Room for ``pods`` pods with the renderer's default requests, and then some."""
    return {
        "cpu": str(max(32, -(-pods // 4))),
        "memory": f"{max(128, -(-pods // 2))}Gi",
        "pods": str(pods),
        "ephemeral-storage": f"{max(500, pods)}Gi",
    }


@dataclass(frozen=True)
class Sizing:
    """How many fake nodes, each holding how many pods."""

    nodes: int = DEFAULT_NODES
    pods_per_node: int = DEFAULT_PODS_PER_NODE

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 100:
            raise DevClusterError(f"nodes must be 1..100 (got {self.nodes})")
        if not 1 <= self.pods_per_node <= 20_000:
            raise DevClusterError(f"pods per node must be 1..20000 (got {self.pods_per_node})")

    @property
    def names(self) -> tuple[str, ...]:
        return node_names(self.nodes)

    @property
    def pods(self) -> int:
        """Pods the whole cluster holds."""
        return self.nodes * self.pods_per_node

    def to_json(self) -> dict[str, int]:
        return {"nodes": self.nodes, "pods_per_node": self.pods_per_node}

    @classmethod
    def from_json(cls, data: Any) -> Sizing | None:
        """The sizing a state file recorded (None for state files older than sizing)."""
        if not isinstance(data, dict):
            return None
        return cls(
            int(data.get("nodes", DEFAULT_NODES)),
            int(data.get("pods_per_node", DEFAULT_PODS_PER_NODE)),
        )

    @classmethod
    def resolve(
        cls, nodes: int | None, pods_per_node: int | None, recorded: Sizing | None
    ) -> Sizing:
        """Explicit values, else ``$PYTHONAPP_DEV_NODES`` / ``_PODS_PER_NODE``, else what the
        running cluster recorded, else the defaults."""
        base = recorded or cls()

        def pick(given: int | None, env: str, default: int) -> int:
            if given is not None:
                return given
            raw = os.environ.get(env, "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise DevClusterError(f"{env}={raw!r} is not a whole number") from None

        return cls(
            pick(nodes, NODES_ENV, base.nodes), pick(pods_per_node, PODS_ENV, base.pods_per_node)
        )


def manifest(name: str, zone: str, pods: int = DEFAULT_PODS_PER_NODE) -> dict[str, Any]:
    """One Node object as kwok expects it."""
    cap = capacity(pods)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION[0]: ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": REGION,
                "type": "kwok",
            },
        },
        "status": {"capacity": cap, "allocatable": cap},
    }


def _ours(server: str, ctx: ssl.SSLContext) -> dict[str, dict[str, Any]]:
    code, body = api.request(f"{server}/api/v1/nodes", ctx)
    if code != 200:
        raise RuntimeError(f"listing nodes: HTTP {code}: {body[:300]}")
    items = json.loads(body).get("items", [])
    return {
        n["metadata"]["name"]: n
        for n in items
        if n["metadata"]["name"].startswith(NAME_PREFIX)
        and (n["metadata"].get("annotations") or {}).get(ANNOTATION[0]) == ANNOTATION[1]
    }


def ensure(server: str, ctx: ssl.SSLContext, sizing: Sizing | None = None) -> None:
    """Make the fake nodes match ``sizing``: create missing ones, patch their capacity,
    delete surplus ones (their pods are then garbage-collected)."""
    sizing = sizing or Sizing()
    existing = _ours(server, ctx)
    cap = capacity(sizing.pods_per_node)
    for i, name in enumerate(sizing.names):
        node = existing.get(name)
        if node is None:
            doc = manifest(name, ZONES[i % len(ZONES)], sizing.pods_per_node)
            code, body = api.request(f"{server}/api/v1/nodes", ctx, "POST", doc)
            if code not in (201, 409):
                raise RuntimeError(f"creating node {name}: HTTP {code}: {body[:300]}")
        elif (node.get("status") or {}).get("capacity", {}).get("pods") != cap["pods"]:
            code, body = api.request(
                f"{server}/api/v1/nodes/{name}/status",
                ctx,
                "PATCH",
                {"status": {"capacity": cap, "allocatable": cap}},
                content_type="application/merge-patch+json",
            )
            if code != 200:
                raise RuntimeError(f"resizing node {name}: HTTP {code}: {body[:300]}")
    for name in sorted(set(existing) - set(sizing.names)):
        code, body = api.request(f"{server}/api/v1/nodes/{name}", ctx, "DELETE")
        if code not in (200, 404):
            raise RuntimeError(f"deleting surplus node {name}: HTTP {code}: {body[:300]}")


def not_ready(server: str, ctx: ssl.SSLContext, names: tuple[str, ...] = NODE_NAMES) -> list[str]:
    """Names of our nodes that are missing or not Ready (empty list = all Ready)."""
    code, body = api.request(f"{server}/api/v1/nodes", ctx)
    if code != 200:
        return list(names)
    ready = set()
    for item in json.loads(body).get("items", []):
        conds = item.get("status", {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            ready.add(item["metadata"]["name"])
    return [n for n in names if n not in ready]


def release_leases(server: str, ctx: ssl.SSLContext, names: tuple[str, ...] = NODE_NAMES) -> None:
    """Delete our nodes' Leases, so a restarted kwok takes the nodes over at once.

    kwok only acts on a node (and its pods) while it holds the node's Lease; a new kwok process
    would otherwise wait for the dead one's Lease to expire before pods move again.
    """
    for name in names:
        url = f"{server}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        code, body = api.request(url, ctx, "DELETE")
        if code not in (200, 404):
            raise RuntimeError(f"deleting lease {name}: HTTP {code}: {body[:300]}")
