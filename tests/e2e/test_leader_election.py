"""Leader election with real `pythonapp operator` processes on the real API server.

Each test runs its own replicas, confined to a namespace of their own (``--namespace``) and
electing on a Lease of their own there (``--leader-election-id``), so they never contend with
the session's operator. (That one watches every namespace, so it may reconcile these apps
too: what is checked per replica is therefore what that replica did, from its own metrics and
log: a standby made no reconcile and no write at all.)

The takeover times are measured from the signal to the moment the standby's
``pythonapp_leader`` metric turns 1, and printed (run with ``-s`` to see them; they are also
recorded as test properties). The 30 s bound is a failure bound for a hung takeover, not the
goal: the figures are in docs/operations.md, "Running two replicas".
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, ready
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
#: a failure bound for a takeover that never happens, not a goal (that is < 3 s / < 20 s)
TAKEOVER_BOUND = 30.0


class Replicas:
    """Operator processes electing on one Lease in one namespace."""

    def __init__(self, kubeconfig: Path, logs: Path, namespace: str) -> None:
        self.kubeconfig, self.logs, self.namespace = kubeconfig, logs, namespace
        self.lease = f"pythonapp-operator-{secrets.token_hex(3)}"
        self.started: list[OperatorProcess] = []

    def start(self) -> OperatorProcess:
        args = [
            "--namespace", self.namespace,
            "--leader-election-namespace", self.namespace,
            "--leader-election-id", self.lease,
        ]  # fmt: skip
        log = self.logs / f"replica-{len(self.started)}.log"
        op = OperatorProcess(self.kubeconfig, log, args).wait_healthy()
        self.started.append(op)
        return op

    def stop_all(self) -> None:
        for op in self.started:
            if op.proc.poll() is None:
                op.proc.kill()
                op.proc.wait()


@pytest.fixture
def replicas(
    crd: None, kubeconfig_path: Path, namespace: str, tmp_path: Path
) -> Iterator[Replicas]:
    group = Replicas(kubeconfig_path, tmp_path, namespace)
    yield group
    group.stop_all()


def metric(op: OperatorProcess, name: str) -> float:
    try:
        return op.metrics().get(name, -1.0)
    except OSError:
        return -1.0


def leads(op: OperatorProcess) -> bool:
    return metric(op, "pythonapp_leader") == 1.0


def stands_by(op: OperatorProcess) -> bool:
    return metric(op, "pythonapp_cache_synced") == 1.0 and metric(op, "pythonapp_leader") == 0.0


def identity(op: OperatorProcess, message: str = "became leader") -> str:
    for line in op.lines():
        if line.get("message") == message:
            return str(line["identity"])
    pytest.fail(f"no {message!r} line:\n{op.tail()}", pytrace=False)


def reconciles(op: OperatorProcess) -> float:
    return sum(
        v for k, v in op.metrics().items() if k.startswith("controller_runtime_reconcile_total{")
    )


def writes(op: OperatorProcess) -> float:
    return sum(
        v
        for k, v in op.metrics().items()
        if k.startswith("pythonapp_api_requests_total{")
        and any(f"method={m}" in k for m in ("POST", "PUT", "PATCH", "DELETE"))
    )


def readyz(op: OperatorProcess) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://{op.health}/readyz", timeout=5) as r:
        return int(r.status), r.read().decode()


def holder(k: Kubectl, replicas: Replicas) -> str:
    lease = k.get("lease", replicas.lease, replicas.namespace) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def takeover(
    op: OperatorProcess, since: float, what: str, record_property: Callable[[str, Any], None]
) -> float:
    """Seconds from ``since`` until ``op`` leads (polled every 50 ms)."""
    deadline = since + TAKEOVER_BOUND
    while not leads(op):
        if op.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no takeover within {TAKEOVER_BOUND:g} s {what}:\n{op.tail()}")
        time.sleep(0.05)
    took = time.monotonic() - since
    print(f"\ntakeover {what}: {took:.2f} s")
    record_property(f"takeover {what} (s)", round(took, 2))
    return took


def edit_and_wait(k: Kubectl, namespace: str, wait: Wait, replicas: int) -> None:
    k.apply(app_doc(namespace, replicas=replicas))
    wait(
        lambda: (ready(k, namespace) or {}).get("status", {}).get("replicas") == replicas,
        90,
        f"the app Ready at {replicas} replicas",
    )


def leader_and_standby(replicas: Replicas, wait: Wait) -> tuple[OperatorProcess, OperatorProcess]:
    """Two replicas started in turn: the first leads, the second has listed and stands by."""
    leader = replicas.start()
    wait(lambda: leads(leader), TAKEOVER_BOUND, "the first replica to lead")
    standby = replicas.start()
    wait(lambda: stands_by(standby), 60, "the second replica to list, and stand by")
    return leader, standby


def test_one_replica_writes_the_other_stands_by_then_takes_over_on_sigterm(
    replicas: Replicas,
    k: Kubectl,
    wait: Wait,
    record_property: Callable[[str, Any], None],
) -> None:
    leader, standby = leader_and_standby(replicas, wait)
    first = identity(leader)
    assert holder(k, replicas) == first
    standby_id = identity(standby, f"standing by (leader: {first})")

    # Only the leader reconciles: the app is created, edited and Ready; the standby, with
    # the same cache, made no reconcile and not one write request.
    edit_and_wait(k, replicas.namespace, wait, 1)
    edit_and_wait(k, replicas.namespace, wait, 2)
    assert reconciles(leader) > 0 and writes(leader) > 0
    assert reconciles(standby) == 0 and writes(standby) == 0, standby.tail()
    # Both are Ready (a standby never Ready would stall rollouts); the body tells them apart.
    assert readyz(leader) == (200, "ok (leader)\n")
    code, body = readyz(standby)
    assert code == 200 and body == f"ok (standby; leader: {first})\n"

    # SIGTERM: the leader stops writing, releases the Lease, exits 0; the standby takes over.
    since = time.monotonic()
    leader.proc.send_signal(signal.SIGTERM)
    takeover(standby, since, "after SIGTERM of the leader", record_property)
    assert leader.proc.wait(timeout=30) == 0, leader.tail()
    assert any(line.get("message") == "released the leader Lease" for line in leader.lines())
    assert holder(k, replicas) == standby_id
    edit_and_wait(k, replicas.namespace, wait, 3)  # the new leader does the work
    assert writes(standby) > 0


def test_after_a_sigkill_the_standby_takes_over_once_the_lease_expires(
    replicas: Replicas,
    k: Kubectl,
    wait: Wait,
    record_property: Callable[[str, Any], None],
) -> None:
    leader, standby = leader_and_standby(replicas, wait)
    edit_and_wait(k, replicas.namespace, wait, 1)

    since = time.monotonic()
    leader.proc.kill()  # no release: the Lease must expire
    leader.proc.wait()
    takeover(standby, since, "after SIGKILL of the leader", record_property)
    new = identity(standby)
    assert holder(k, replicas) == new
    edit_and_wait(k, replicas.namespace, wait, 2)
    assert writes(standby) > 0

    # A third operator started by hand stands by instead of fighting.
    extra = replicas.start()
    wait(lambda: stands_by(extra), 60, "a third replica to stand by")
    identity(extra, f"standing by (leader: {new})")
    edit_and_wait(k, replicas.namespace, wait, 3)
    assert reconciles(extra) == 0 and writes(extra) == 0, extra.tail()
    assert holder(k, replicas) == new


def test_a_leader_that_sees_another_holder_stops_and_exits_1(
    replicas: Replicas, k: Kubectl, wait: Wait
) -> None:
    """Leadership lost (here: the Lease handed to someone else by hand, as a partitioned
    leader would find it taken over): the operator says so and exits non-zero at once."""
    leader = replicas.start()
    wait(lambda: leads(leader), TAKEOVER_BOUND, "the replica to lead")
    k.run(
        "patch", "lease", replicas.lease, "-n", replicas.namespace, "--type=merge",
        "-p", '{"spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 60}}',
    )  # fmt: skip
    try:
        code = leader.proc.wait(timeout=TAKEOVER_BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the operator kept running:\n{leader.tail()}")
    assert code == 1, leader.tail()
    lost = [line for line in leader.lines() if line.get("message") == "leader election lost"]
    assert lost and "someone-else" in lost[0]["reason"], leader.tail()
    assert holder(k, replicas) == "someone-else"  # and it did not release what is not its own
