"""An operator upgrade that renders every pod template differently rolls 50 apps at most N at a
time, as the API server shows it; the author's own change jumps the queue; a restart midway
keeps the bound (the gate is rebuilt from the Deployments, not from memory).

"A new release" is the test seam PYTHONAPP_RENDER_EPOCH (a pod template annotation). The
bound is checked on the API server's side: one watch on the namespace's Deployments, and after
every event the number of Deployments whose rollout is unfinished (``kubectl rollout
status``'s rule, written out here rather than taken from the operator). Watch events of one
stream come in resourceVersion order, so each count is a state the API server was in.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from tests.conftest import wait_for
from tests.e2e.conftest import Kubectl, operator_down
from tests.e2e.test_operator import app_doc, condition
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

APPS = 50
LIMIT = 3
EPOCH = "2026.12"
EPOCH_ANNOTATION = "pythonapp.dev/render-epoch"  # the seam's, spelled out: not imported


def unfinished(dep: dict[str, Any]) -> bool:
    """The Deployment's rollout is not finished (``kubectl rollout status``)."""
    meta, spec, st = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    updated = st.get("updatedReplicas", 0)
    return bool(
        st.get("observedGeneration", 0) < meta.get("generation", 0)
        or updated < spec.get("replicas", 1)
        or st.get("replicas", 0) > updated
        or st.get("availableReplicas", 0) < updated
    )


def epoch(dep: dict[str, Any]) -> str | None:
    notes = ((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (notes.get("annotations") or {}).get(EPOCH_ANNOTATION)


def env_of(dep: dict[str, Any]) -> list[Any]:
    containers = dep["spec"]["template"]["spec"]["containers"]
    return list(containers[0].get("env") or [])


class DeploymentWatch:
    """The namespace's Deployments as one watch reports them, on a thread of its own."""

    def __init__(self, apps_v1: client.AppsV1Api, namespace: str) -> None:
        self.apps_v1, self.namespace = apps_v1, namespace
        self.lock = threading.Condition()
        self.live: dict[str, dict[str, Any]] = {}
        #: the most paced rollouts unfinished at once (the author's app left out)
        self.peak = 0
        #: Deployments of the new epoch not yet written when the author's change was first seen
        self.behind_when_authored: int | None = None
        self.error: BaseException | None = None
        #: the app whose author changes its spec while it waits for a slot (its rollout is the
        #: author's, not paced: left out of the count once it is chosen)
        self.author: str | None = None
        self._stop = threading.Event()
        listed = apps_v1.list_namespaced_deployment(namespace, _preload_content=False)
        body = json.loads(listed.data)
        for item in body["items"]:
            self._see(item)
        self._rv = body["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _see(self, dep: dict[str, Any]) -> None:
        with self.lock:
            name = dep["metadata"]["name"]
            self.live[name] = dep
            rolling = sum(1 for n, d in self.live.items() if n != self.author and unfinished(d))
            self.peak = max(self.peak, rolling)
            if name == self.author and env_of(dep) and self.behind_when_authored is None:
                self.behind_when_authored = sum(
                    1 for n, d in self.live.items() if n != self.author and epoch(d) != EPOCH
                )
            self.lock.notify_all()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                stream = watch.Watch().stream(
                    self.apps_v1.list_namespaced_deployment,
                    self.namespace,
                    resource_version=self._rv,
                    timeout_seconds=5,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    obj = event["raw_object"]
                    self._rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(obj)
                    if self._stop.is_set():
                        return
        except BaseException as exc:  # reported by the test, never lost on the thread
            self.error = exc
            with self.lock:
                self.lock.notify_all()

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: self.error is not None or check(), timeout):
                pytest.fail(f"timed out waiting for {what}", pytrace=False)
        if self.error is not None:
            pytest.fail(f"the Deployment watch failed: {self.error!r}", pytrace=False)

    def count(self, check: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for d in self.live.values() if check(d))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def deployments(apps_v1: client.AppsV1Api, namespace: str) -> Iterator[Any]:
    watches: list[DeploymentWatch] = []

    def start() -> DeploymentWatch:
        watches.append(DeploymentWatch(apps_v1, namespace))
        return watches[-1]

    yield start
    for w in watches:
        w.stop()


def test_an_upgrade_rolls_fifty_apps_at_most_n_at_a_time(
    k: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    tmp_path: Path,
    deployments: Callable[[], DeploymentWatch],
) -> None:
    names = [f"app-{i:02d}" for i in range(APPS)]
    k.apply([app_doc(namespace, name, replicas=1) for name in names])

    def all_ready() -> bool:
        items = json.loads(k.run("get", "pythonapps", "-n", namespace, "-o", "json").stdout)
        return len(items["items"]) == APPS and all(
            condition(a, "Ready").get("status") == "True"
            and a["status"].get("observedGeneration") == a["metadata"]["generation"]
            for a in items["items"]
        )

    wait_for(all_ready, 240, f"{APPS} apps Ready under the session's operator")

    with operator_down(operator):
        seen = deployments()
        assert seen.count(unfinished) == 0 and seen.count(lambda d: epoch(d) == EPOCH) == 0
        args = [
            "--namespace", namespace,
            "--leader-election-namespace", namespace,
            "--leader-election-id", f"rollouts-{secrets.token_hex(3)}",
            "--max-rollouts", str(LIMIT),
        ]  # fmt: skip
        upgraded = OperatorProcess(
            k.kubeconfig,
            tmp_path / "upgraded.log",
            args,
            env={"PYTHONAPP_RENDER_EPOCH": EPOCH, "PYTHONAPP_BACKOFF_MAX_SECONDS": "4"},
        )
        try:
            upgraded.wait_healthy()

            # an app waits for a slot: its author changes its spec, which never waits
            def a_waiting_app() -> dict[str, Any] | None:
                items = json.loads(k.run("get", "pythonapps", "-n", namespace, "-o", "json").stdout)
                waiting = [
                    a
                    for a in items["items"]
                    if condition(a, "Ready").get("reason") == "RolloutQueued"
                ]
                return waiting[-1] if waiting else None

            queued = wait_for(a_waiting_app, 60, "an app waiting for a rollout slot")
            assert condition(queued, "Ready")["status"] == "True"  # it serves meanwhile
            assert condition(queued, "Reconciling")["status"] == "False"
            with seen.lock:
                seen.author = queued["metadata"]["name"]
            k.run(
                "patch", "pythonapp", seen.author, "-n", namespace, "--type", "merge",
                "-p", '{"spec": {"env": [{"name": "MODE", "value": "authored"}]}}',
            )  # fmt: skip
            seen.wait(lambda: seen.behind_when_authored is not None, 60, "the author's change")
            assert seen.behind_when_authored, "the author's change waited behind the upgrade"

            # a restart midway: the gate is rebuilt from what the Deployments show
            seen.wait(
                lambda: seen.count(lambda d: epoch(d) == EPOCH) >= APPS // 3,
                240,
                "a third of the apps rolled",
            )
            assert upgraded.restart() == 0
            seen.wait(
                lambda: seen.count(lambda d: epoch(d) == EPOCH and not unfinished(d)) == APPS,
                300,
                f"all {APPS} apps rolled to the new render",
            )
            print(f"peak {seen.peak} paced rollouts at once (limit {LIMIT}), {APPS} apps")
            assert seen.peak <= LIMIT, f"{seen.peak} paced rollouts ran at once (limit {LIMIT})"
            assert seen.peak >= 1

            # each app rolled once: one new ReplicaSet beside the old one
            sets = seen.apps_v1.list_namespaced_replica_set(namespace)
            per_app: dict[str, int] = {}
            for rs in sets.items:
                owner = rs.metadata.owner_references[0].name
                per_app[owner] = per_app.get(owner, 0) + 1
            assert {n: c for n, c in per_app.items() if n != seen.author and c != 2} == {}

            def drained() -> bool:
                m = upgraded.metrics()
                return (
                    m.get("pythonapp_rollouts_active") == 0.0
                    and m.get("pythonapp_rollouts_pending") == 0.0
                )

            wait_for(drained, 60, "the gate to drain")
            assert "operator upgrade: rollout admitted" in upgraded.text()
            wait_for(all_ready, 60, "every app Ready after the upgrade")
        finally:
            assert upgraded.stop() == 0
            # the session's operator renders without the epoch: nothing for it to roll back
            k.run("delete", "pythonapps", "--all", "-n", namespace, "--wait=false")
