"""The renderer's autoscaling and disruption budget: an HPA that owns the replica count, and a
PodDisruptionBudget that never blocks a drain and is there only when more than one pod runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.factories import make_doc
from tests.unit.test_render import app_of, by_kind

from pythonapp_operator.render import SCALED_BY_ANNOTATION, render

SCALING = {"minReplicas": 2, "maxReplicas": 10}


def rendered(**spec: Any) -> dict[str, dict[str, Any]]:
    return by_kind(render(app_of(make_doc(**spec))))


def test_without_autoscaling_the_deployment_carries_replicas_and_there_is_no_hpa() -> None:
    objs = rendered(replicas=3)
    assert objs["Deployment"]["spec"]["replicas"] == 3
    assert "HorizontalPodAutoscaler" not in objs
    assert SCALED_BY_ANNOTATION not in objs["Deployment"]["metadata"].get("annotations", {})


def test_autoscaling_renders_an_hpa_last_and_a_deployment_without_replicas() -> None:
    doc = make_doc(replicas=3, autoscaling=SCALING)
    doc["metadata"]["uid"] = "u-1"  # as read from the API server: children get an owner
    objs = render(app_of(doc))
    assert [o["kind"] for o in objs] == [
        "Deployment",
        "ServiceAccount",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
    ]
    dep, hpa = objs[0], objs[-1]
    assert "replicas" not in dep["spec"]  # replicas: 3 waits for autoscaling to go
    assert dep["metadata"]["annotations"][SCALED_BY_ANNOTATION] == "HorizontalPodAutoscaler/shop"
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["ownerReferences"] == dep["metadata"]["ownerReferences"]
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert hpa["metadata"]["labels"] == dep["metadata"]["labels"]
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
        "minReplicas": 2,
        "maxReplicas": 10,
        # no target named: CPU at 80% of the request (which the renderer always sets)
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ({"targetMemoryUtilizationPercentage": 70}, [("memory", 70)]),
        ({"targetCPUUtilizationPercentage": 50}, [("cpu", 50)]),
        (
            {"targetCPUUtilizationPercentage": 50, "targetMemoryUtilizationPercentage": 90},
            [("cpu", 50), ("memory", 90)],
        ),
    ],
)
def test_named_targets_replace_the_default(
    targets: dict[str, int], expected: list[tuple[str, int]]
) -> None:
    hpa = rendered(autoscaling={**SCALING, **targets})["HorizontalPodAutoscaler"]
    assert [
        (m["resource"]["name"], m["resource"]["target"]["averageUtilization"])
        for m in hpa["spec"]["metrics"]
    ] == expected


def test_behavior_is_rendered_as_autoscaling_v2_spells_it() -> None:
    behavior = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        "scaleDown": {"stabilizationWindowSeconds": 600},
    }
    hpa = rendered(autoscaling={**SCALING, "behavior": behavior})["HorizontalPodAutoscaler"]
    assert hpa["spec"]["behavior"] == behavior


@pytest.mark.parametrize(
    ("spec", "budget"),
    [
        ({}, 1),  # the default two pods
        ({"replicas": 1}, None),  # one pod: a budget could only delay a drain
        ({"replicas": 0}, None),
        ({"replicas": 1, "disruption": {"enabled": True}}, 1),
        ({"replicas": 5, "disruption": {"enabled": False}}, None),
        ({"replicas": 5, "disruption": {"maxUnavailable": "25%"}}, "25%"),
        ({"replicas": 5, "disruption": {"maxUnavailable": 2}}, 2),
        ({"profile": "worker", "replicas": 3}, 1),  # workers too, on the same terms
        ({"profile": "worker", "replicas": 1}, None),
        # with autoscaling the budget follows the HPA's floor, not replicas
        ({"replicas": 5, "autoscaling": {"minReplicas": 1, "maxReplicas": 4}}, None),
        ({"replicas": 1, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}, 1),
        (
            {
                "autoscaling": {"minReplicas": 1, "maxReplicas": 4},
                "disruption": {"enabled": True, "maxUnavailable": "50%"},
            },
            "50%",
        ),
    ],
)
def test_disruption_budget_when_more_than_one_pod_runs_or_asked(
    spec: dict[str, Any], budget: int | str | None
) -> None:
    pdb = rendered(**spec).get("PodDisruptionBudget")
    if budget is None:
        assert pdb is None
        return
    assert pdb is not None
    assert pdb["spec"] == {
        "maxUnavailable": budget,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "shop", "app.kubernetes.io/instance": "shop"}
        },
    }


@given(
    replicas=st.integers(0, 1000),
    scaling=st.one_of(
        st.none(),
        st.integers(1, 1000).flatmap(
            lambda low: st.fixed_dictionaries(
                {"minReplicas": st.just(low), "maxReplicas": st.integers(low, 1000)}
            )
        ),
    ),
    enabled=st.sampled_from([None, True, False]),
)
def test_a_budget_never_blocks_a_drain(
    replicas: int, scaling: dict[str, int] | None, enabled: bool | None
) -> None:
    """Never a minAvailable, never a maxUnavailable of 0, unhealthy pods always evictable."""
    disruption = None if enabled is None else {"enabled": enabled}
    objs = rendered(replicas=replicas, autoscaling=scaling, disruption=disruption)
    pdb = objs.get("PodDisruptionBudget")
    if pdb is not None:
        assert "minAvailable" not in pdb["spec"]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    floor = scaling["minReplicas"] if scaling else replicas
    assert (pdb is not None) == (floor > 1 if enabled is None else enabled)
    assert ("replicas" in objs["Deployment"]["spec"]) == (scaling is None)
