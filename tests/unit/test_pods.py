"""What the pods say (controller/pods.py), and how the status carries it (status.py), from pod
and ReplicaSet statuses in the kubelet's, the scheduler's and the ReplicaSet controller's own
words, trimmed as the cache keeps them (kinds.OBSERVED_KINDS)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pythonapp_operator.controller import pods
from pythonapp_operator.controller.kinds import KINDS_BY_KIND, trim
from pythonapp_operator.controller.status import compute_status

DEP_UID, RS_UID, OLD_RS_UID = "dep-uid", "rs-uid", "old-rs-uid"
NOW = "2026-12-07T10:00:00Z"
IMAGE = "registry.example/shop@sha256:" + "a" * 64


def deployment(*, ready: int = 0, updated: int = 2, available: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "namespace": "ns", "uid": DEP_UID, "generation": 2},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": IMAGE}]}}},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
            ],
        },
    }


def replicaset(uid: str = RS_UID, failure: str | None = None, owner: str = DEP_UID) -> Any:
    raw: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"shop-{uid}",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": "7",
            "labels": {"app.kubernetes.io/instance": "shop", "pod-template-hash": "x"},
            "annotations": {"deployment.kubernetes.io/revision": "2", "other": "dropped"},
            "ownerReferences": [
                {"kind": "Deployment", "name": "shop", "uid": owner, "controller": True}
            ],
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 0, "conditions": []},
    }
    if failure:
        raw["status"]["conditions"].append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": failure,
                "lastTransitionTime": NOW,
            }
        )
    return trim(KINDS_BY_KIND["ReplicaSet"], raw)


def pod(
    name: str,
    *,
    waiting: tuple[str, str] | None = None,
    last: dict[str, Any] | None = None,
    ready: bool = True,
    started_at: str = "2026-12-07T09:00:00Z",
    unschedulable: str | None = None,
    owner: str = RS_UID,
    restarts: int = 0,
) -> Any:
    container: dict[str, Any] = {
        "name": "app",
        "image": IMAGE,
        "imageID": "",
        "ready": ready,
        "started": waiting is None,
        "restartCount": restarts,
        "containerID": "containerd://abc",
    }
    if waiting is not None:
        container["state"] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    else:
        container["state"] = {"running": {"startedAt": started_at}}
    if last is not None:
        container["lastState"] = {"terminated": {**last, "finishedAt": NOW, "startedAt": NOW}}
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": str(ready), "lastTransitionTime": NOW, "lastProbeTime": None}
    ]
    status: dict[str, Any] = {"phase": "Running", "conditions": conditions}
    if unschedulable is not None:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": unschedulable,
                    "lastTransitionTime": NOW,
                }
            ],
        }
    else:
        status["containerStatuses"] = [container]
    raw = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": "9",
            "labels": {"app.kubernetes.io/instance": "shop", "pod-template-hash": "x"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "shop-x", "uid": owner, "controller": True}
            ],
        },
        "spec": {"containers": [{"name": "app", "image": IMAGE}]},
        "status": status,
    }
    return trim(KINDS_BY_KIND["Pod"], raw)


PULL = ("ErrImagePull", f'failed to pull and unpack image "{IMAGE}": not found')
BACKOFF = ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')
CONFIG = ("CreateContainerConfigError", "couldn't find key password in Secret ns/db")
CRASH = ("CrashLoopBackOff", "back-off 10s restarting failed container=app pod=shop-a_ns(u)")
NO_ROOM = "0/3 nodes are available: 3 Insufficient cpu."


def test_healthy_pods_say_nothing() -> None:
    said = pods.verdict(deployment(ready=2, available=2), [replicaset()], [pod("a"), pod("b")], NOW)
    assert said is None


@pytest.mark.parametrize(
    ("waiting", "reason", "words"),
    [
        (PULL, "ImagePullBackOff", "ErrImagePull: failed to pull and unpack image"),
        (BACKOFF, "ImagePullBackOff", "Back-off pulling image"),
        (("InvalidImageName", "couldn't parse image"), "ImagePullBackOff", "InvalidImageName"),
        (CONFIG, "CreateContainerConfigError", "couldn't find key password in Secret ns/db"),
    ],
)
def test_waiting_reasons_in_the_kubelets_words(
    waiting: tuple[str, str], reason: str, words: str
) -> None:
    said = pods.verdict(
        deployment(), [replicaset()], [pod("a", waiting=waiting, ready=False), pod("b")], NOW
    )
    assert said is not None
    assert said.reason == reason and said.stalled
    assert said.message.startswith(f"1 of 2 pods: {reason}: ")
    assert words in said.message


def test_crash_loop_names_the_last_exit_code() -> None:
    crashing = pod(
        "a", waiting=CRASH, ready=False, last={"exitCode": 3, "reason": "Error"}, restarts=2
    )
    said = pods.verdict(deployment(), [replicaset()], [crashing, pod("b")], NOW)
    assert said is not None and said.reason == "CrashLoopBackOff" and said.stalled
    assert "last exit code 3" in said.message


def test_crash_loop_calls_out_oomkilled() -> None:
    oom = pod("a", waiting=CRASH, ready=False, last={"exitCode": 137, "reason": "OOMKilled"})
    said = pods.verdict(
        deployment(), [replicaset()], [oom, pod("b", waiting=CRASH, ready=False)], NOW
    )
    assert said is not None
    assert said.message.startswith("2 of 2 pods: CrashLoopBackOff: ")
    assert "OOMKilled (exit code 137)" in said.message and "limits.memory" in said.message


def test_a_crash_loop_does_not_rewrite_the_status_on_every_restart() -> None:
    def message(restarts: int) -> str:
        crashing = pod("a", waiting=CRASH, ready=False, last={"exitCode": 1}, restarts=restarts)
        said = pods.verdict(deployment(), [replicaset()], [crashing], NOW)
        assert said is not None
        return said.message

    assert message(1) == message(2) == message(4)
    assert message(6) == message(19) != message(1)


def test_unschedulable_quotes_the_scheduler_and_may_pass() -> None:
    said = pods.verdict(
        deployment(), [replicaset()], [pod("a", unschedulable=NO_ROOM), pod("b")], NOW
    )
    assert said is not None and said.reason == "Unschedulable" and not said.stalled
    assert said.message == f"1 of 2 pods: Unschedulable: {NO_ROOM}"


def test_failed_create_is_seen_on_the_replicaset() -> None:
    words = 'pods "shop-x-1" is forbidden: exceeded quota: pods, limited: pods=0'
    said = pods.verdict(deployment(), [replicaset(failure=words)], [], NOW)
    assert said is not None and said.reason == "FailedCreate" and said.stalled
    assert words in said.message


def test_the_most_urgent_reason_wins() -> None:
    listed = [pod("a", unschedulable=NO_ROOM), pod("b", waiting=CONFIG, ready=False)]
    said = pods.verdict(deployment(), [replicaset()], listed, NOW)
    assert said is not None and said.reason == "CreateContainerConfigError"


def test_readiness_failing_after_a_grace_and_a_recheck_before() -> None:
    young = pod("a", ready=False, started_at="2026-12-07T09:59:30Z")
    said = pods.verdict(deployment(), [replicaset()], [young], NOW)
    assert said is not None and said.reason == "" and said.recheck_after == pytest.approx(30.0)
    old = pod("a", ready=False, started_at="2026-12-07T09:58:00Z")
    said = pods.verdict(deployment(), [replicaset()], [old], NOW)
    assert said is not None and said.reason == "ReadinessFailing" and not said.stalled
    assert "running for 120 s without passing its readiness probe" in said.message


def test_only_pods_of_the_apps_own_deployment_count() -> None:
    stranger_rs = replicaset(uid="other-rs", owner="someone-else")
    impostor = pod("x", waiting=CONFIG, ready=False, owner="other-rs")
    said = pods.verdict(deployment(), [replicaset(), stranger_rs], [impostor, pod("a")], NOW)
    assert said is None


def test_pods_of_an_old_replicaset_count_too() -> None:
    old = pod("o", waiting=CRASH, ready=False, owner=OLD_RS_UID, last={"exitCode": 1})
    said = pods.verdict(deployment(), [replicaset(), replicaset(uid=OLD_RS_UID)], [old], NOW)
    assert said is not None and said.reason == "CrashLoopBackOff"


def test_trim_keeps_what_status_needs_and_drops_time() -> None:
    a = pod("a", waiting=CRASH, ready=False, last={"exitCode": 1, "reason": "Error"})
    assert "managedFields" not in a["metadata"] and "spec" not in a
    assert a["metadata"]["labels"] == {"app.kubernetes.io/instance": "shop"}
    container = a["status"]["containerStatuses"][0]
    assert container["state"] == {"waiting": {"reason": CRASH[0], "message": CRASH[1]}}
    assert container["lastState"] == {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert all("lastTransitionTime" not in c for c in a["status"]["conditions"])
    rs = replicaset(failure="refused")
    assert rs["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "2"}
    assert rs["status"]["conditions"][0] == {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": "refused",
    }


def test_the_status_says_why_before_the_deadline_and_clears() -> None:
    dep = deployment()
    said = pods.verdict(dep, [replicaset()], [pod("a", waiting=BACKOFF, ready=False)], NOW)
    status = compute_status(
        generation=2, problems=[], deployment=dep, previous=None, now=NOW, pods=said
    )
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "ImagePullBackOff"
    assert conds["Stalled"]["status"] == "True"
    assert conds["Stalled"]["message"].startswith("1 of 1 pods: ImagePullBackOff: Back-off")
    fixed = deployment(ready=2, available=2)
    fixed["status"]["conditions"].append({"type": "Available", "status": "True"})
    healed = compute_status(
        generation=2,
        problems=[],
        deployment=fixed,
        previous=status,
        now=NOW,
        pods=pods.verdict(fixed, [replicaset()], [pod("a"), pod("b")], NOW),
    )
    conds = {c["type"]: c for c in healed["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Stalled"]["status"] == "False"


def test_pod_reason_wins_over_the_deadline_and_says_so() -> None:
    dep = deployment()
    dep["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    said = pods.verdict(dep, [replicaset()], [pod("a", unschedulable=NO_ROOM)], NOW)
    status = compute_status(
        generation=2, problems=[], deployment=dep, previous=None, now=NOW, pods=said
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert ready["reason"] == "Unschedulable" and stalled["status"] == "True"
    assert ready["message"].endswith("The rollout exceeded its progress deadline.")


def test_pod_churn_trims_to_the_same_object() -> None:
    raw_a: dict[str, Any] = {
        "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "1"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": "t1"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "s"}},
                }
            ],
        },
    }
    raw_b = copy.deepcopy(raw_a)
    raw_b["status"]["conditions"][0]["lastProbeTime"] = "t2"
    raw_b["status"]["conditions"][0]["lastTransitionTime"] = "t3"
    kind = KINDS_BY_KIND["Pod"]
    assert trim(kind, raw_a) == trim(kind, raw_b)
