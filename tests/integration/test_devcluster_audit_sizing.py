"""The dev cluster's audit-log reader and node sizing, without a cluster (fast, run everywhere)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pythonapp_operator.devcluster import DevClusterError, Sizing, audit, nodes


def event(
    verb: str,
    resource: str,
    *,
    stage: str = "ResponseComplete",
    audit_id: str = "",
    user: str = "pythonapp-bench-operator",
    agent: str = "pythonapp-operator/0.1.0",
    namespace: str | None = "ns",
    when: str = "2030-01-01T00:00:00.250000Z",
    done: str = "2030-01-01T00:00:00.262500Z",
) -> str:
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    return json.dumps(
        {
            "kind": "Event",
            "level": "Metadata",
            "auditID": audit_id or f"{verb}-{resource}-{stage}",
            "stage": stage,
            "requestURI": f"/api/v1/{resource}",
            "verb": verb,
            "user": {"username": user, "groups": ["system:masters"]},
            "userAgent": agent,
            "objectRef": ref,
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": when,
            "stageTimestamp": done,
        },
        separators=(",", ":"),
    )


def test_each_request_counts_once_and_watches_when_opened(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join(
            [
                event("watch", "pods", stage="ResponseStarted", audit_id="w1"),
                event("get", "pods"),
                event("watch", "pods", stage="ResponseComplete", audit_id="w1"),
                event("watch", "pods", stage="ResponseComplete", audit_id="w2"),  # refused early
                "not json",
            ]
        )
        + "\n"
    )
    calls = list(audit.calls(log))
    assert [c.key for c in calls] == ["watch pods", "get pods", "watch pods"]
    assert all(c.is_read and not c.is_write for c in calls)
    assert calls[0].when == pytest.approx(1893456000.25)
    # the server's own time: for a completed request only (a watch's is its whole life)
    assert calls[0].seconds is None and calls[1].seconds == pytest.approx(0.0125, abs=1e-6)


def test_count_writes_by_namespace_agent_and_time(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join(
            [
                event("patch", "deployments"),
                event("create", "events", agent="kopf/1.45.2"),
                event("patch", "deployments", agent="kubectl/v1.36"),
                event("patch", "deployments", namespace="other"),
                event("get", "deployments"),
                event("delete", "services", when="2020-01-01T00:00:00Z"),
            ]
        )
        + "\n"
    )
    assert audit.count_writes(log, "ns", since=1.6e9) == 2


def test_follower_reads_new_lines_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(event("get", "before") + "\n")
    follower = audit.Follower(log, keep=(b'"username":"pythonapp-bench-',))
    assert follower.read() == []  # starts at the end
    with log.open("a") as f:
        f.write(event("get", "a") + "\n" + event("get", "ignored", user="system:kwok") + "\n")
        f.write(event("get", "b")[:30])  # a line still being written
    assert [c.resource for c in follower.read()] == ["a"]
    rotated = tmp_path / "audit-2030-01-01T00-00-00.000.log"
    log.rename(rotated)
    with rotated.open("a") as f:
        f.write(event("get", "b")[30:] + "\n")
    log.write_text(event("get", "c") + "\n")
    assert [c.resource for c in follower.read()] == ["b", "c"]
    assert audit.log_files(log) == [rotated, log]
    assert [c.resource for c in audit.calls(log)] == ["before", "a", "ignored", "b", "c"]
    follower.close()


def test_sizing_resolution_and_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(nodes.NODES_ENV, raising=False)
    monkeypatch.delenv(nodes.PODS_ENV, raising=False)
    default = Sizing.resolve(None, None, None)
    assert default == Sizing(3, 2500)
    assert (
        default.names
        == nodes.NODE_NAMES
        == (
            "pythonapp-dev-node-0",
            "pythonapp-dev-node-1",
            "pythonapp-dev-node-2",
        )
    )
    assert default.pods >= 3 * 2000 + 600  # the benchmark's 2,000 apps, surge and steady load
    recorded = Sizing(5, 100)
    assert Sizing.resolve(None, None, recorded) == recorded
    monkeypatch.setenv(nodes.PODS_ENV, "900")
    assert Sizing.resolve(None, None, recorded) == Sizing(5, 900)
    assert Sizing.resolve(4, 200, recorded) == Sizing(4, 200)
    monkeypatch.setenv(nodes.NODES_ENV, "many")
    with pytest.raises(DevClusterError, match="PYTHONAPP_DEV_NODES"):
        Sizing.resolve(None, None, None)
    with pytest.raises(DevClusterError):
        Sizing(0, 10)
    assert Sizing.from_json(None) is None
    assert Sizing.from_json(recorded.to_json()) == recorded
    # capacity grows with pods, never below the historical 32 CPU / 128Gi per node
    assert nodes.capacity(110) == {
        "cpu": "32",
        "memory": "128Gi",
        "pods": "110",
        "ephemeral-storage": "500Gi",
    }
    big = nodes.capacity(2500)
    assert big["pods"] == "2500" and int(big["cpu"]) * 10 >= 2500  # 100m requests fit
    zones = [nodes.manifest(n, nodes.ZONES[i % 3])["metadata"]["labels"] for i, n in
             enumerate(nodes.node_names(6))]  # fmt: skip
    assert [z["topology.kubernetes.io/zone"] for z in zones] == list(nodes.ZONES) * 2
