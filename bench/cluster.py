"""The cluster side of the benchmark: the dev cluster sized for it, the CRD, one identity per
client, namespaces made and removed.

Clients run as separate users so the audit log tells them apart: the harness (admin), the
operator (``pythonapp-bench-operator``) and the bare-client baseline
(``pythonapp-bench-baseline``), each a client certificate in ``system:masters``. Namespaces are
deleted *and waited for* between phases, so one phase's pod churn does not load the next.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import audit, binaries
from pythonapp_operator.devcluster.components import AUDIT_POLICY, audit_policy_path
from pythonapp_operator.devcluster.paths import Layout, own_state_dir

from .calls import USER_PREFIX
from .process import BenchError

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_USER = f"{USER_PREFIX}operator"
BASELINE_USER = f"{USER_PREFIX}baseline"
AGENT = "pythonapp-bench/harness"
Log = Callable[[str], None]
#: a list answered as metadata only (``kubectl get --output name`` asks the same way)
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Cluster:
    """A running dev cluster ready for the benchmark."""

    admin: Path
    operator: Path
    baseline: Path
    audit_log: Path
    status: devcluster.ClusterStatus


def prepare(log: Log, nodes: int | None, pods_per_node: int | None) -> Cluster:
    """Start (or resize) the benchmark's own dev cluster, install the CRD, make the identities.

    Its own (``~/.cache/pythonapp-operator/bench`` unless ``PYTHONAPP_DEV_STATE`` names one),
    never the user's dev cluster: the operator ``make demo`` leaves running there would act on
    the benchmark's apps too, and the resizing would change the demo's nodes."""
    state_dir = own_state_dir("bench")
    status = devcluster.up(state_dir, log=log, node_count=nodes, pods_per_node=pods_per_node)
    policy = audit_policy_path(Layout.of(status.state_dir))
    if not policy.is_file() or policy.read_text() != AUDIT_POLICY:
        raise BenchError(f"{policy} is not the current audit policy (reads are not logged)")
    found = binaries.find()
    if found is None:
        raise BenchError("no kubectl: `pythonapp dev up` should have built it")
    admin = devcluster.kubeconfig_path(state_dir)
    kubectl = [str(found.kubectl), "--kubeconfig", str(admin)]
    crd = ROOT / "crds" / "pythonapps.yaml"
    for args in (
        ["apply", "--server-side", "--force-conflicts", "-f", str(crd)],
        ["wait", "--for=condition=Established", "crd/pythonapps.pythonapp.dev", "--timeout=60s"],
    ):
        proc = subprocess.run([*kubectl, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    groups = ["system:masters"]
    return Cluster(
        admin=admin,
        operator=devcluster.user_kubeconfig(OPERATOR_USER, groups, state_dir),
        baseline=devcluster.user_kubeconfig(BASELINE_USER, groups, state_dir),
        audit_log=audit.log_path(state_dir),
        status=status,
    )


def api_client(kubeconfig: Path, agent: str, pool: int = 32) -> client.ApiClient:
    """An ApiClient for ``kubeconfig`` with ``pool`` connections (one per thread in flight)."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = pool
    api = client.ApiClient(cfg)
    api.user_agent = agent
    return api


def create_namespace(core: client.CoreV1Api, name: str, timeout: float = 60.0) -> None:
    """Create ``name`` and wait for its default ServiceAccount (pods are refused before)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    core.patch_namespace(
        name,
        body,
        field_manager="pythonapp-bench",
        _content_type="application/apply-patch+yaml",
        _preload_content=False,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            core.read_namespaced_service_account("default", name, _preload_content=False)
            return
        except ApiException as e:
            if e.status != 404:
                raise
        time.sleep(0.2)
    raise BenchError(f"namespace {name}: no default ServiceAccount after {timeout:.0f}s")


def delete_namespaces(core: client.CoreV1Api, names: list[str], log: Log, timeout: float) -> None:
    """Delete the namespaces and wait until they (and their pods) are gone (no wait: timeout 0).

    The pods (kwok's: nothing runs) go at once with no grace period, so the namespace
    controller does not wait out their termination grace before it finishes.
    """
    for name in names:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, _preload_content=False)
        with contextlib.suppress(ApiException):
            core.delete_collection_namespaced_pod(
                name, grace_period_seconds=0, _preload_content=False
            )
    if timeout <= 0:
        return
    deadline = time.time() + timeout
    last_report = time.time()
    left = list(names)
    while left:
        left = [n for n in left if _exists(core, n)]
        if not left:
            return
        if time.time() > deadline:
            raise BenchError(f"namespaces still terminating after {timeout:.0f}s: {left}")
        if time.time() - last_report > 15:
            log(f"waiting for {len(left)} namespace(s) to be deleted: {', '.join(left[:3])}")
            last_report = time.time()
        time.sleep(1)


def pods(api: client.ApiClient, namespace: str, *, jobs: bool = True) -> tuple[int, int]:
    """(pods, of which terminating) in the namespace, listed as metadata only (cheap at 4,000);
    without the pods of Jobs unless ``jobs`` (a finished migration's pod stays for its TTL)."""
    resp: Any = client.CoreV1Api(api).list_namespaced_pod(  # raw: _preload_content=False
        namespace,
        _headers={"Accept": METADATA_LIST},
        _preload_content=False,
        _request_timeout=60,
    )
    items = json.loads(resp.data).get("items") or []
    if not jobs:
        items = [
            it
            for it in items
            if not any(o.get("kind") == "Job" for o in it["metadata"].get("ownerReferences") or [])
        ]
    terminating = sum(1 for it in items if (it.get("metadata") or {}).get("deletionTimestamp"))
    return len(items), terminating


def _exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name, _preload_content=False)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def leftover_namespaces(core: client.CoreV1Api, prefix: str) -> list[str]:
    """Namespaces an interrupted earlier run left behind."""
    resp: Any = core.list_namespace(_preload_content=False)
    items = json.loads(resp.data)["items"]
    return [i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith(prefix)]
