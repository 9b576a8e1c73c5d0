"""The real node's pure parts: host record and restore, subnet choice, generated configs.

The real node itself runs in tests/e2e/test_real_node.py (marked ``realnode``); these pin what
its teardown relies on without root: the first real node on a host records the sysctls and
which shared paths existed, the last one puts back exactly those.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

from pythonapp_operator.devcluster import realhost, realnode
from pythonapp_operator.devcluster.errors import DevClusterError
from pythonapp_operator.devcluster.paths import Layout

SYSCTLS = {"vm/overcommit_memory": "0", "kernel/panic": "1", "kernel/panic_on_oops": "0"}


def _proc_sys(tmp_path: Path) -> Path:
    root = tmp_path / "proc-sys"
    for key, value in SYSCTLS.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(f"{value}\n")
    return root


def _kubelet_sets_its_sysctls(proc_sys: Path) -> None:
    for key, value in (("vm/overcommit_memory", "1"), ("kernel/panic", "10")):
        (proc_sys / key).write_text(f"{value}\n")
    (proc_sys / "kernel/panic_on_oops").write_text("1\n")


def test_the_last_real_node_restores_sysctls_and_removes_only_new_paths(tmp_path: Path) -> None:
    proc_sys, record = _proc_sys(tmp_path), tmp_path / "run"
    old, new = tmp_path / "var-lib-kubelet", tmp_path / "run-containerd"
    old.mkdir()
    paths = (str(old), str(new))
    realhost.claim("/state/a", record, paths, proc_sys)
    realhost.claim("/state/b", record, paths, proc_sys)
    _kubelet_sets_its_sysctls(proc_sys)
    (new / "s").mkdir(parents=True)  # what containerd writes
    assert realhost.release("/state/a", record, proc_sys) == []  # b still runs one
    assert realhost.read_sysctls(proc_sys)["kernel/panic"] == "10"
    assert new.exists()
    done = realhost.release("/state/b", record, proc_sys)
    assert realhost.read_sysctls(proc_sys) == SYSCTLS
    assert not new.exists() and old.is_dir()  # it existed before: kept
    assert f"removed {new}" in done and "kernel.panic=1" in done
    assert not record.exists()


def test_a_second_claim_does_not_record_the_kubelets_values_as_the_originals(
    tmp_path: Path,
) -> None:
    proc_sys, record = _proc_sys(tmp_path), tmp_path / "run"
    realhost.claim("/state/a", record, (), proc_sys)
    _kubelet_sets_its_sysctls(proc_sys)
    realhost.claim("/state/a", record, (), proc_sys)  # a repair claims again
    realhost.release("/state/a", record, proc_sys)
    assert realhost.read_sysctls(proc_sys) == SYSCTLS


def test_the_pod_subnet_avoids_the_hosts_networks_and_is_stable() -> None:
    taken = [ipaddress.IPv4Network("10.250.7.0/24"), ipaddress.IPv4Network("192.0.2.0/24")]
    assert str(realhost.pick_subnet(7, taken)) == "10.250.8.0/24"
    assert realhost.pick_subnet(7, taken) == realhost.pick_subnet(7, taken)
    wide = [ipaddress.IPv4Network("10.0.0.0/8")]
    try:
        realhost.pick_subnet(7, wide)
    except DevClusterError as e:
        assert "no free /24" in str(e)
    else:
        raise AssertionError("a host using all of 10/8 left no subnet, yet one was picked")


def test_mountinfo_paths_are_unescaped() -> None:
    assert realhost._unescape("/a\\040b/c\\134d") == "/a b/c\\d"


def _plan(tmp_path: Path) -> dict[str, object]:
    rn = realnode.plan(Layout(tmp_path / "state"))
    return {**rn, "subnet": "10.250.9.0/24", "node_ip": "10.250.9.1"}


def test_containerd_keeps_to_its_own_paths_and_restricts_oom_score_adj(tmp_path: Path) -> None:
    rn = _plan(tmp_path)
    cfg = tomllib.loads(realnode.containerd_config(rn, "localhost/pause:x"))
    own = str(tmp_path / "state" / "realnode")
    assert cfg["root"].startswith(own) and cfg["state"].startswith(own)
    assert cfg["grpc"]["address"].startswith(own)
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/pause:x"
    assert cri["stream_server_address"] == "127.0.0.1"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"].startswith(own)
    assert cri["registry"]["config_path"].startswith(own)


def test_the_pod_network_has_no_masquerade_and_no_route_out(tmp_path: Path) -> None:
    rn = _plan(tmp_path)
    (bridge,) = realnode.cni_config(rn)["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == rn["bridge"]
    assert bridge["ipMasq"] is False
    assert "isDefaultGateway" not in bridge
    assert "routes" not in bridge["ipam"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.250.9.0/24", "gateway": "10.250.9.1"}]]


def test_the_kubelet_authenticates_callers_and_takes_only_pods_meant_for_it(
    tmp_path: Path,
) -> None:
    rn = _plan(tmp_path)
    cfg = realnode.kubelet_config(rn, Path("/ca.crt"), Path("/k.crt"), Path("/k.key"))
    assert cfg["readOnlyPort"] == 0
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["authentication"]["webhook"]["enabled"] is True
    assert cfg["authentication"]["x509"]["clientCAFile"] == "/ca.crt"
    assert cfg["authorization"]["mode"] == "Webhook"
    assert cfg["address"] == "10.250.9.1"
    assert cfg["healthzBindAddress"] == "127.0.0.1"
    assert cfg["failCgroupV1"] is False and cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["cgroupRoot"] == f"/{rn['cgroup']}"
    # an imported image stays usable with imagePullPolicy Never after the kubelet pulled it
    # under another name
    assert cfg["imagePullCredentialsVerificationPolicy"] == "NeverVerify"
    assert cfg["registerWithTaints"] == [
        {"key": "pythonapp.dev/real-node", "value": "true", "effect": "NoSchedule"}
    ]


def test_the_api_server_is_forwarded_on_the_bridge_address_only(tmp_path: Path) -> None:
    rn = _plan(tmp_path)
    server = "https://127.0.0.1:41234"
    argv = realnode.api_forward_argv(rn, server)
    assert argv[1] == f"TCP-LISTEN:41234,bind={rn['node_ip']},reuseaddr,fork"  # not 0.0.0.0
    assert argv[2] == "TCP:127.0.0.1:41234"
    name, ip, port = realnode.in_cluster_api(rn, server)
    assert (ip, port) == (rn["node_ip"], 41234)
    assert name == "kubernetes.default.svc"  # a SAN of the API server's serving certificate


def test_a_tcp_health_url_is_a_connect(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert realnode.socket_listening(f"tcp://127.0.0.1:{port}") is None
    refused = realnode.socket_listening(f"tcp://127.0.0.1:{port}")
    assert refused is not None and f"127.0.0.1:{port}" in refused
