"""The install path users take, on real pods: the operator's own image (built here without
Docker, ``operator_image``) installed with ``kubectl apply --server-side -k`` of deploy/, its
pods running on the real node, reaching the API server, Ready, and reconciling a PythonApp.

The only differences from deploy/ as shipped are the overlay's (generated in a temp dir, the
way CI sets the pushed image): the image by digest from the loopback registry; the operator's
namespace annotated so its pods land on the real node; and how a pod reaches this dev
cluster's API server, which has no kube-proxy for the ``kubernetes`` Service:
``KUBERNETES_SERVICE_HOST=kubernetes.default.svc`` (a name its certificate holds) mapped by
``hostAliases`` to the bridge address, where ``api-forward`` relays the API server's port.

Marked ``realnode`` (root, ``PYTHONAPP_REAL_NODE=1``; tests/conftest.py). The Deployment and
the admission policy are removed afterwards: other modules run operators of their own on the
session's cluster and must not meet this one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.conftest import Cluster, RealNode, wait_for
from tests.deploy.tools import remove_policy, run

from pythonapp_operator.devcluster import operator_image, realnode, registry

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

ROOT = Path(__file__).resolve().parents[2]
NS = "pythonapp-system"
NAME = "pythonapp-operator"
SHIPPED_IMAGE = "ghcr.io/pythonapp-operator/operator"
GROUP, VERSION, PLURAL = "pythonapp.dev", "v1alpha1", "pythonapps"


def overlay(directory: Path, image: str, rn: RealNode, api: tuple[str, str, int]) -> Path:
    """A kustomization over deploy/ that sets the image by digest and puts the operator's pods
    on the real node, reaching the API server at ``api`` (name, IP, port)."""
    name_part, digest = image.split("@", 1)
    host, ip, port = api
    deployment_patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "template": {
                "spec": {
                    "hostAliases": [{"ip": ip, "hostnames": [host]}],
                    "containers": [
                        {
                            "name": "operator",
                            "env": [
                                {"name": "KUBERNETES_SERVICE_HOST", "value": host},
                                {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)},
                            ],
                        }
                    ],
                }
            }
        },
    }
    namespace_patch = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "annotations": realnode.namespace_annotations()},
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # relative: kustomize refuses an absolute path to another kustomization
        "resources": [os.path.relpath(ROOT / "deploy", directory)],
        "images": [{"name": SHIPPED_IMAGE, "newName": name_part, "digest": digest}],
        "patches": [
            {"patch": yaml.safe_dump(deployment_patch)},
            {"patch": yaml.safe_dump(namespace_patch)},
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


@dataclass(frozen=True)
class Installed:
    image: str
    apply: subprocess.CompletedProcess[str]


def _kubectl(kubectl: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([kubectl, "--kubeconfig", kubeconfig, *args], timeout=300)


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster,
    real_node: RealNode,
    kubectl: Path,
    kubeconfig_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    """The operator's image built and pushed, deploy/ applied through the overlay."""
    assert cluster.state_dir is not None
    image = operator_image.build(registry.of_cluster(cluster.state_dir).address)
    state = json.loads((cluster.state_dir / "state.json").read_text())
    api = realnode.in_cluster_api(state["real_node"], state["server"])
    kust = overlay(tmp_path_factory.mktemp("overlay"), image, real_node, api)
    proc = _kubectl(
        kubectl, kubeconfig_path, "apply", "--server-side", "--force-conflicts", "-k", str(kust)
    )
    try:
        yield Installed(image, proc)
    finally:
        deleted = _kubectl(
            kubectl,
            kubeconfig_path,
            "-n",
            NS,
            "delete",
            "deployment",
            NAME,
            "--ignore-not-found",
            # foreground: returns once the pods are gone (their Lease released), so the next
            # module's operator never meets one of these
            "--cascade=foreground",
            "--wait=true",
            "--timeout=120s",
        )
        remove_policy(kubectl, kubeconfig_path)
        # the namespace stays (deploy/ made it); its pods go back to being scheduled anywhere
        unset = [f"{key}-" for key in realnode.namespace_annotations()]
        unannotated = _kubectl(kubectl, kubeconfig_path, "annotate", "namespace", NS, *unset)
        assert deleted.returncode == 0, deleted.stderr
        assert unannotated.returncode == 0, unannotated.stderr


def _operator_pods(core_v1: client.CoreV1Api, image: str) -> list[client.V1Pod]:
    pods = core_v1.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={NAME}").items
    return [
        p for p in pods if p.spec.containers[0].image == image and not p.metadata.deletion_timestamp
    ]


def _ready(pod: client.V1Pod) -> bool:
    conds = (pod.status and pod.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conds)


def test_the_operator_pods_run_the_built_image_on_the_real_node_and_go_ready(
    installed: Installed, real_node: RealNode, core_v1: client.CoreV1Api
) -> None:
    assert installed.apply.returncode == 0, installed.apply.stderr
    assert "Warning:" not in installed.apply.stderr, installed.apply.stderr

    def all_ready() -> list[client.V1Pod] | None:
        pods = _operator_pods(core_v1, installed.image)
        return pods if len(pods) == 2 and all(_ready(p) for p in pods) else None

    pods = wait_for(all_ready, 240, "both operator pods Ready (their /readyz) on the real node")
    for pod in pods:
        assert pod.spec.node_name == real_node.name
        status = pod.status.container_statuses[0]
        assert status.image_id.endswith(
            installed.image.split("@", 1)[1]
        )  # what ran is what was built
        assert status.restart_count == 0  # /healthz never failed: the API server was reached


def test_the_installed_operator_reconciles_a_pythonapp_to_ready(
    installed: Installed,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    wait_for(
        lambda: len([p for p in _operator_pods(core_v1, installed.image) if _ready(p)]) == 2,
        240,
        "the operator pods Ready",
    )
    app: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PythonApp",
        "metadata": {"name": "hello", "namespace": namespace},
        "spec": {
            "image": "ghcr.io/acme/hello:1.0.0@sha256:" + "3b1f4b6d2a7c9e0f" * 4,
            "replicas": 1,
            "resources": {"limits": {"memory": "128Mi"}},
        },
    }
    custom_objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, app)

    def ready() -> dict[str, Any] | None:
        got = custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "hello"
        )
        status = got.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        fresh = status.get("observedGeneration") == got["metadata"]["generation"]
        return got if conditions.get("Ready") == "True" and fresh else None

    wait_for(ready, 120, "the PythonApp Ready, reconciled by the operator in its pod")
    # the operator that did it is the one in a pod: it holds the Lease under its pod's name
    lease = client.CoordinationV1Api(core_v1.api_client).read_namespaced_lease(NAME, NS)
    leaders = {p.metadata.name for p in _operator_pods(core_v1, installed.image)}
    holder = lease.spec.holder_identity or ""
    assert any(holder.startswith(name) for name in leaders), (holder, leaders)
