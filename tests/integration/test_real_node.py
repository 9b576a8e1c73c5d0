"""The dev cluster's real node (``pythonapp dev up --real-node``): pods run for real, and
``dev down`` leaves the host as it found it.

Marked ``realnode``: root only, opt-in with ``PYTHONAPP_REAL_NODE=1`` (``make test`` sets it
as root); elsewhere these tests fail saying how to get it (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from tests.conftest import Cluster, RealNode, real_node_refusal

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import pause, realhost, realnode, registry

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 65535,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pause_pod(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "pause",
                    "image": pause.REF,
                    "imagePullPolicy": "Never",
                    "securityContext": RESTRICTED,
                }
            ],
        },
    }


def _ready(pod: client.V1Pod) -> bool:
    conds = (pod.status and pod.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conds)


def _processes_naming(path: str) -> list[str]:
    """Command lines that name ``path`` (the real node's dir: its kubelet, containerd, shims)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and path in cmd:
            found.append(cmd)
    return found


def _bridge_exists(name: str) -> bool:
    link = subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False)
    return link.returncode == 0


def test_a_pod_on_the_real_node_runs_and_becomes_ready(
    real_node: RealNode,
    core_v1: client.CoreV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    core_v1.create_namespaced_pod(namespace, _pause_pod("p", real_node.pod_spec()))

    def ready_pod() -> client.V1Pod | None:
        pod = core_v1.read_namespaced_pod("p", namespace)
        return pod if _ready(pod) else None

    pod = wait_until(
        ready_pod,
        120,
        f"pod {namespace}/p Ready on {real_node.name}",
    )
    assert pod.spec.node_name == real_node.name
    assert pod.status.phase == "Running"
    assert pod.status.host_ip == real_node.node_ip
    (status,) = pod.status.container_statuses
    # a container containerd really started (kwok's fake pods have no container id)
    assert status.container_id.startswith("containerd://"), status
    assert status.state.running is not None and status.ready
    assert pod.status.pod_ip.startswith(real_node.subnet.rsplit(".", 1)[0] + ".")
    node = core_v1.read_node(real_node.name)
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    # the API server reaches the kubelet (InternalIP, client certificate, serving cert
    # checked against the dev CA): the pause container logs nothing, and says so
    assert core_v1.read_namespaced_pod_log("p", namespace) == ""


def test_namespace_annotations_put_every_pod_on_the_real_node(
    real_node: RealNode,
    core_v1: client.CoreV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    """A pod that says nothing about nodes (as the operator renders them) in an annotated
    namespace: the API server adds the selector and the toleration, the pod runs for real."""
    ns = core_v1.read_namespace(namespace)
    ns.metadata.annotations = {
        **(ns.metadata.annotations or {}),
        **realnode.namespace_annotations(),
    }
    core_v1.replace_namespace(namespace, ns)
    core_v1.create_namespaced_pod(namespace, _pause_pod("plain", {}))
    pod = core_v1.read_namespaced_pod("plain", namespace)
    assert pod.spec.node_selector == {realnode.LABEL[0]: realnode.LABEL[1]}
    wait_until(lambda: _ready(core_v1.read_namespaced_pod("plain", namespace)), 120, "pod Ready")
    assert core_v1.read_namespaced_pod("plain", namespace).spec.node_name == real_node.name


def test_images_are_pulled_by_digest_from_the_loopback_registry(
    real_node: RealNode,
    core_v1: client.CoreV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """The cluster's registry is a tracked component on 127.0.0.1, and containerd pulls from
    it over plain HTTP (hosts.toml): the pause image pushed there, run by digest with
    imagePullPolicy Always."""
    st = devcluster.status()
    (comp,) = [c for c in st.components if c.name == "registry"]
    assert comp.alive and comp.address.startswith("http://127.0.0.1:")
    address = registry.of_cluster().address
    assert comp.address == f"http://{address}"
    digest_file = tmp_path / "digest"
    push = subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            f"--digestfile={digest_file}",
            f"docker-archive:{pause.archive()}",
            f"docker://{address}/pythonapp-pause:{pause.TAG}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert push.returncode == 0, push.stderr
    ref = f"{address}/pythonapp-pause@{digest_file.read_text().strip()}"
    doc = _pause_pod("pulled", real_node.pod_spec())
    doc["spec"]["containers"][0].update(image=ref, imagePullPolicy="Always")
    core_v1.create_namespaced_pod(namespace, doc)
    wait_until(lambda: _ready(core_v1.read_namespaced_pod("pulled", namespace)), 120, "pod Ready")
    (status,) = core_v1.read_namespaced_pod("pulled", namespace).status.container_statuses
    assert status.image_id.endswith(digest_file.read_text().strip()), status.image_id
    # The kubelet pulled that image: the same image under its imported name must still run
    # with imagePullPolicy Never (1.36's default credential check said "not present").
    core_v1.create_namespaced_pod(namespace, _pause_pod("imported", real_node.pod_spec()))
    wait_until(
        lambda: _ready(core_v1.read_namespaced_pod("imported", namespace)),
        120,
        "the imported image's pod Ready after the kubelet pulled the same image",
    )


def test_a_dead_containerd_and_kubelet_are_restarted_and_pods_keep_running(
    real_node: RealNode,
    core_v1: client.CoreV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    core_v1.create_namespaced_pod(namespace, _pause_pod("p", real_node.pod_spec()))
    wait_until(lambda: _ready(core_v1.read_namespaced_pod("p", namespace)), 120, "pod Ready")
    (before,) = core_v1.read_namespaced_pod("p", namespace).status.container_statuses
    old = {c.name: c.pid for c in devcluster.status().components}
    for name in ("kubelet", "containerd"):
        pid = old[name]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not devcluster.status().running, 10, "status to report them dead")
    st = devcluster.up(log=lambda _m: None)
    assert st.running and st.ready
    new = {c.name: c.pid for c in st.components}
    assert new["kubelet"] != old["kubelet"] and new["containerd"] != old["containerd"]
    unchanged = {n: p for n, p in new.items() if n not in ("kubelet", "containerd")}
    assert unchanged == {n: p for n, p in old.items() if n not in ("kubelet", "containerd")}
    # the container outlived both (its shim holds it): same container, not restarted
    pod = core_v1.read_namespaced_pod("p", namespace)
    (after,) = pod.status.container_statuses
    assert after.container_id == before.container_id and after.restart_count == 0
    assert _ready(pod)

    # asked through the new kubelet and containerd (the status above may predate them),
    # once the new kubelet has synced its pods
    def log_via_new_kubelet() -> bool:
        try:
            return core_v1.read_namespaced_pod_log("p", namespace) == ""
        except client.ApiException as e:
            if e.status == 404:  # not synced yet
                return False
            raise

    wait_until(log_via_new_kubelet, 60, "the pod's log through the restarted kubelet")
    (latest,) = core_v1.read_namespaced_pod("p", namespace).status.container_statuses
    assert latest.container_id == before.container_id and latest.restart_count == 0


def test_kwok_pods_stay_off_the_real_node(
    real_node: RealNode,
    core_v1: client.CoreV1Api,
) -> None:
    node = core_v1.read_node(real_node.name)
    taints = [(t.key, t.effect) for t in node.spec.taints or []]
    assert (realnode.LABEL[0], "NoSchedule") in taints
    assert node.metadata.labels[realnode.LABEL[0]] == realnode.LABEL[1]


@pytest.fixture
def session_real_node_set_aside(cluster: Cluster) -> Iterator[None]:
    """The session cluster without its real node meanwhile (its control plane keeps running),
    so that a test's own real node is the only one on the host and its ``down`` must restore
    the host itself; the session's real node is added back afterwards."""
    had = cluster.is_devcluster and devcluster.status().real_node is not None
    if had:
        devcluster.up(real_node=False, log=lambda _m: None)
    try:
        yield
    finally:
        if had:
            devcluster.up(real_node=True, log=lambda _m: None)


def test_dev_down_puts_the_host_back(
    session_real_node_set_aside: None,
    tmp_path_factory: pytest.TempPathFactory,
    wait_until: Callable[..., Any],
) -> None:
    """A cluster of its own: up with the real node, a pod on it, down; then its processes,
    bridge, cgroups and mounts are gone, and, when no other real node runs on this host (the
    session's is set aside; a developer's own dev cluster may have one), the sysctls and host
    paths are as before."""
    refusal = real_node_refusal()
    if refusal is not None:
        pytest.fail(refusal, pytrace=False)
    state = tmp_path_factory.mktemp("rn")
    record = realhost.RECORD_DIR / "realnode-host.json"
    others = json.loads(record.read_text())["users"] if record.exists() else []
    before = realhost.read_sysctls()
    existed = {p: os.path.lexists(p) for p in realhost.SHARED_PATHS}
    rn: dict[str, Any] | None = None
    try:
        st = devcluster.up(state, real_node=True, log=lambda _m: None)
        rn = st.real_node
        assert rn is not None and _bridge_exists(rn["bridge"])
        assert realhost.read_sysctls()["vm/overcommit_memory"] == "1"  # the kubelet's
        api = client.CoreV1Api(
            config.new_client_from_config(config_file=str(devcluster.kubeconfig_path(state)))
        )
        api.create_namespaced_pod(
            "default", _pause_pod("p", RealNode(rn["name"], "", "", "", "").pod_spec())
        )
        wait_until(lambda: _ready(api.read_namespaced_pod("p", "default")), 120, "pod Ready")
        assert realhost.cgroup_pids(rn["cgroup"]), "the pod's processes are in its cgroup"
    finally:
        devcluster.down(state)
    assert rn is not None
    assert not _bridge_exists(rn["bridge"])
    assert not any((h / rn["cgroup"]).exists() for h in realhost.cgroup_hierarchies())
    assert not realhost.mounts_under(Path(rn["dir"]))
    assert not Path(rn["dir"]).exists()
    assert not _processes_naming(rn["dir"]), "kubelet, containerd or a shim still runs"
    assert not _processes_naming(str(registry.root_of(state))), "the registry still runs"
    if not others:
        assert realhost.read_sysctls() == before
        assert {p: os.path.lexists(p) for p in realhost.SHARED_PATHS} == existed
        assert not record.exists()
    else:  # the last real node on this host restores them; this one only leaves the record
        assert json.loads(record.read_text())["users"] == others
