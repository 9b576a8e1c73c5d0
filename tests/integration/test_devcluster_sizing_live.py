"""The dev cluster as the benchmark needs it: its sizing is recorded and applied, reads are
audited, and another identity can be had (real API server)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from kubernetes import client, config

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import audit

pytestmark = pytest.mark.cluster


@pytest.fixture
def dev(cluster: Any) -> devcluster.ClusterStatus:
    if not cluster.is_devcluster:
        pytest.skip("sizing, audit log and identities are specific to `pythonapp dev`")
    return devcluster.status()


def test_nodes_have_the_recorded_capacity(dev: devcluster.ClusterStatus, core_v1: Any) -> None:
    sizing = dev.sizing
    assert sizing is not None
    for name in sizing.names:
        node = core_v1.read_node(name)
        assert node.status.capacity["pods"] == str(sizing.pods_per_node)
        assert node.status.allocatable["pods"] == str(sizing.pods_per_node)


def test_reads_of_another_identity_are_audited(dev: devcluster.ClusterStatus) -> None:
    user = f"pythonapp-test-{secrets.token_hex(3)}"
    kubeconfig = devcluster.user_kubeconfig(user, ["system:masters"])
    api = config.new_client_from_config(config_file=str(kubeconfig))
    api.user_agent = "audit-test/1"
    since = time.time() - 1
    try:
        client.CoreV1Api(api).read_namespace("default")
    finally:
        api.close()
    deadline = time.monotonic() + 10
    mine: list[audit.Call] = []
    while not mine and time.monotonic() < deadline:
        calls = audit.calls(audit.log_path(dev.state_dir), since, keep=(user.encode(),))
        mine = [c for c in calls if c.user == user]
        time.sleep(0.2)
    assert [(c.key, c.agent, c.code) for c in mine] == [("get namespaces", "audit-test/1", 200)]
