"""The operator's pod logic (kinds.trim, pods.verdict) on pod statuses captured from the real
kubelet (tests/fixtures/pods/, by tests/e2e/test_real_pods.py): each failure gives its reason
and quotes the kubelet's words, so the kwok-based tests' hand-written statuses are not the
only thing holding it."""

from __future__ import annotations

import pytest
from tests import pod_fixtures

from pythonapp_operator.controller import pods

#: fixture, reason, words the message must carry (the kubelet's, or the exit it reported)
CASES = [
    (
        "imagepullbackoff.json",
        pods.IMAGE_PULL_BACK_OFF,
        'Back-off pulling image "127.0.0.1:5000/sample-app@sha256:',
    ),
    ("crashloopbackoff.json", pods.CRASH_LOOP_BACK_OFF, "last exit code 3"),
    (
        "createcontainerconfigerror.json",
        pods.CREATE_CONTAINER_CONFIG_ERROR,
        "couldn't find key password in Secret shop-ns/db",
    ),
]

#: what the 1.36 kubelet shows for most of a crash loop's back-off: ``state.terminated`` (not
#: ``waiting: CrashLoopBackOff``); controller/pods.py reads only the waiting state
TERMINATED = [
    ("crashloop-terminated.json", "last exit code 3"),
    ("oomkilled.json", "container app was OOMKilled (exit code 137)"),
]


@pytest.mark.parametrize(("fixture", "reason", "words"), CASES)
def test_each_captured_failure_gives_its_reason_in_the_kubelets_words(
    fixture: str, reason: str, words: str
) -> None:
    said = pod_fixtures.verdict(fixture)
    assert said is not None
    assert said.reason == reason
    assert said.message.startswith(f"1 of 1 pods: {reason}: "), said.message
    assert words in said.message, said.message
    assert said.stalled


@pytest.mark.parametrize(("fixture", "words"), TERMINATED)
def test_a_crash_loop_between_restarts_is_a_crash_loop(fixture: str, words: str) -> None:
    said = pod_fixtures.verdict(fixture)
    assert said is not None and said.reason == pods.CRASH_LOOP_BACK_OFF, said
    assert words in said.message, said.message


def test_the_captured_statuses_are_the_kubelets_not_kwoks() -> None:
    """Real containers: a containerd id on every started one, the kubelet's conditions."""
    for fixture in [c[0] for c in CASES] + [t[0] for t in TERMINATED]:
        status = pod_fixtures.status(fixture)
        types = {c["type"] for c in status["conditions"]}
        assert {"PodReadyToStartContainers", "Initialized", "Ready", "PodScheduled"} <= types
        (container,) = status["containerStatuses"]
        if "running" in container["state"] or "terminated" in container["state"]:
            assert container["containerID"].startswith("containerd://"), fixture
