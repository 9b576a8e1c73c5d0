"""Status as a pure function of the Deployment the API server reports (kstatus conditions)."""

from __future__ import annotations

from typing import Any

from pythonapp_operator.controller.status import compute_status, status_differs

IMG = "ghcr.io/acme/shop:1.0@sha256:" + "ab" * 32


def deployment(
    *,
    replicas: int = 2,
    ready: int = 2,
    updated: int = 2,
    available: int = 2,
    current: int | None = None,
    generation: int = 1,
    observed: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": IMG}]}}},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas if current is None else current,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions
            if conditions is not None
            else [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"},
            ],
        },
    }


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def compute(
    dep: dict[str, Any] | None, problems: list[str] | None = None, previous: Any = None
) -> dict[str, Any]:
    return compute_status(
        generation=3, problems=problems or [], deployment=dep, previous=previous, now="T1"
    )


def test_ready_when_available_and_rolled_out() -> None:
    st = compute(deployment())
    assert conds(st) == {
        "Ready": ("True", "Available"),
        "Reconciling": ("False", "Available"),
        "Stalled": ("False", "Available"),
    }
    assert st["observedGeneration"] == 3
    assert st["ready"] == "2/2" and st["image"] == IMG
    assert st["shortImage"] == "shop:1.0@sha256:abababababab"
    assert all(c["observedGeneration"] == 3 for c in st["conditions"])


def test_reconciling_while_rolling_out() -> None:
    for dep in (
        deployment(observed=0),
        deployment(updated=1),
        deployment(current=3),
        deployment(available=1, ready=1),
    ):
        assert conds(compute(dep))["Reconciling"] == ("True", "Progressing")
        assert conds(compute(dep))["Ready"][0] == "False"


def test_missing_deployment_is_reconciling() -> None:
    assert conds(compute(None))["Reconciling"] == ("True", "Creating")


def test_stalled_on_progress_deadline_and_replica_failure() -> None:
    dep = deployment(
        updated=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "timed out",
            }
        ],
    )
    st = compute(dep)
    assert conds(st)["Stalled"] == ("True", "ProgressDeadlineExceeded")
    assert conds(st)["Reconciling"][0] == "False"
    dep = deployment(
        ready=0,
        available=0,
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": "forbidden: violates PodSecurity",
            }
        ],
    )
    st = compute(dep)
    assert conds(st)["Stalled"] == ("True", "FailedCreate")
    assert "PodSecurity" in next(c["message"] for c in st["conditions"] if c["type"] == "Ready")


def test_invalid_spec_is_stalled_and_keeps_reporting_what_runs() -> None:
    st = compute(deployment(), problems=["spec.image: must be pinned by digest"])
    assert conds(st)["Stalled"] == ("True", "InvalidSpec")
    assert conds(st)["Ready"] == ("False", "InvalidSpec")
    assert st["image"] == IMG
    assert "left as it was" in next(c["message"] for c in st["conditions"] if c["type"] == "Ready")


def test_scaled_to_zero_is_ready() -> None:
    assert (
        conds(compute(deployment(replicas=0, ready=0, updated=0, available=0, conditions=[])))[
            "Ready"
        ][0]
        == "True"
    )


def test_transition_time_is_stable_while_status_holds() -> None:
    first = compute_status(
        generation=1, problems=[], deployment=deployment(), previous=None, now="T1"
    )
    again = compute_status(
        generation=1, problems=[], deployment=deployment(), previous=first, now="T2"
    )
    assert again == first
    assert not status_differs(first, again)
    flipped = compute_status(
        generation=1,
        problems=[],
        deployment=deployment(available=1, ready=1),
        previous=first,
        now="T3",
    )
    times = {c["type"]: c["lastTransitionTime"] for c in flipped["conditions"]}
    assert times == {"Ready": "T3", "Reconciling": "T3", "Stalled": "T1"}
    assert status_differs(first, flipped)
