"""The fake nodes kwok keeps alive.

kwok only manages nodes that exist and match its annotation selector, so the harness creates
them. Three nodes in three zones let topology spread constraints and anti-affinity be tested;
capacity is generous so scheduling never fails for lack of room. Status set on create is kept by
the API server (as when a kubelet registers), and kwok's node-initialize stage reuses it.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

from . import api

NODE_NAMES = ("pythonapp-dev-node-0", "pythonapp-dev-node-1", "pythonapp-dev-node-2")
ZONES = ("zone-a", "zone-b", "zone-c")
REGION = "dev"
ANNOTATION = ("kwok.x-k8s.io/node", "fake")
CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}


def manifest(name: str, zone: str) -> dict[str, Any]:
    """One Node object as kwok expects it."""
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
        "status": {"capacity": CAPACITY, "allocatable": CAPACITY},
    }


def ensure(server: str, ctx: ssl.SSLContext) -> None:
    """Create any missing node (an existing one is left alone)."""
    for name, zone in zip(NODE_NAMES, ZONES, strict=True):
        code, body = api.request(f"{server}/api/v1/nodes", ctx, "POST", manifest(name, zone))
        if code not in (201, 409):
            raise RuntimeError(f"creating node {name}: HTTP {code}: {body[:300]}")


def not_ready(server: str, ctx: ssl.SSLContext) -> list[str]:
    """Names of our nodes that are missing or not Ready (empty list = all Ready)."""
    code, body = api.request(f"{server}/api/v1/nodes", ctx)
    if code != 200:
        return list(NODE_NAMES)
    ready = set()
    for item in json.loads(body).get("items", []):
        conds = item.get("status", {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            ready.add(item["metadata"]["name"])
    return [n for n in NODE_NAMES if n not in ready]


def release_leases(server: str, ctx: ssl.SSLContext) -> None:
    """Delete our nodes' Leases, so a restarted kwok takes the nodes over at once.

    kwok only acts on a node (and its pods) while it holds the node's Lease; a new kwok process
    would otherwise wait for the dead one's Lease to expire before pods move again.
    """
    for name in NODE_NAMES:
        url = f"{server}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        code, body = api.request(url, ctx, "DELETE")
        if code not in (200, 404):
            raise RuntimeError(f"deleting lease {name}: HTTP {code}: {body[:300]}")
