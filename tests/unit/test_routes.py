"""What the cluster says of an app's route, on its status (controller/routes.py, status.py)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_status import conds, deployment

from pythonapp_operator.controller import routes
from pythonapp_operator.controller.status import Failure, compute_status

UID = "u-1"
APP = {"metadata": {"name": "site", "uid": UID}, "spec": {"expose": {"host": "a.b"}}}
OWNER = [{"kind": "PythonApp", "name": "site", "uid": UID, "controller": True}]
PARENT = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gw", "name": "p"}


def http_route(*parents: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "site", "ownerReferences": OWNER},
        "spec": {"parentRefs": [PARENT]},
        "status": {"parents": list(parents)},
    }


def parent(accepted: str, resolved: str = "True", ref: dict[str, Any] = PARENT) -> dict[str, Any]:
    return {
        "parentRef": ref,
        "controllerName": "example.net/gw",
        "conditions": [
            {"type": "Accepted", "status": accepted, "reason": "R-" + accepted, "message": "m"},
            {"type": "ResolvedRefs", "status": resolved, "reason": "BackendNotFound"},
        ],
    }


def view(kind: str, child: dict[str, Any] | None) -> dict[str, Any]:
    said = routes.assess(APP, {kind: child} if child else {}, kind)
    assert said is not None
    return said.record


def test_no_controller_has_answered_yet() -> None:
    said = view("HTTPRoute", http_route())
    assert (said["accepted"], said["reason"]) == ("Unknown", "Waiting")
    assert "gw/p" in said["message"]


def test_accepted_by_the_gateway() -> None:
    said = view("HTTPRoute", http_route(parent("True")))
    assert (said["accepted"], said["reason"]) == ("True", "Accepted")
    assert "example.net/gw" in said["message"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(parent("False"), "R-False"), (parent("True", resolved="False"), "BackendNotFound")],
    ids=["Accepted=False", "ResolvedRefs=False"],
)
def test_refused_by_the_gateway(answer: dict[str, Any], reason: str) -> None:
    said = routes.assess(APP, {"HTTPRoute": http_route(answer)}, "HTTPRoute")
    assert said is not None and said.refused
    assert (said.record["accepted"], said.record["reason"]) == ("False", reason)


def test_another_parents_answer_is_not_ours() -> None:
    other = parent("False", ref=PARENT | {"name": "elsewhere"})
    said = view("HTTPRoute", http_route(other))
    assert said["accepted"] == "Unknown"


def test_ingress_address() -> None:
    ingress = {
        "metadata": {"name": "site", "ownerReferences": OWNER},
        "spec": {"ingressClassName": "nginx"},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.x"}]}},
    }
    said = view("Ingress", ingress)
    assert said["accepted"] == "True" and said["address"] == "203.0.113.7, lb.x"
    ingress["status"] = {}
    said = view("Ingress", ingress)
    assert (said["accepted"], said["reason"]) == ("Unknown", "Waiting") and "nginx" in said[
        "message"
    ]


def test_a_route_not_ours_or_not_there_yet_is_being_created() -> None:
    foreign = http_route(parent("True"))
    foreign["metadata"]["ownerReferences"] = []
    assert view("HTTPRoute", foreign)["reason"] == "Creating"
    assert view("HTTPRoute", None)["reason"] == "Creating"


def test_no_view_without_expose_or_for_a_worker() -> None:
    assert routes.expected_kind({"spec": {}}, "Ingress") is None
    worker = {"spec": {"profile": "worker", "expose": {"host": "a.b"}}}
    assert routes.expected_kind(worker, "Ingress") is None
    assert routes.expected_kind(APP, "HTTPRoute") == "HTTPRoute"
    assert routes.assess(APP, {}, None) is None


def test_only_a_refusal_changes_the_conditions() -> None:
    """Waiting for a controller that may never come leaves the app Ready (kstatus users would
    wait for ever); an explicit refusal is Ready=False and Stalled once the pods are ready, and
    a rollout in progress still says so first."""
    waiting = view("HTTPRoute", http_route())
    st = compute_status(
        generation=1, problems=[], deployment=deployment(), previous=None, now="T", route=waiting
    )
    assert conds(st)["Ready"] == ("True", "Available") and st["route"] == waiting
    refused = Failure(routes.ROUTE_NOT_ACCEPTED, "refused: NotAllowedByListeners", stalled=True)
    st = compute_status(
        generation=1,
        problems=[],
        deployment=deployment(),
        previous=None,
        now="T",
        route=waiting,
        route_refused=refused,
    )
    assert conds(st) == {
        "Ready": ("False", "RouteNotAccepted"),
        "Reconciling": ("False", "RouteNotAccepted"),
        "Stalled": ("True", "RouteNotAccepted"),
    }
    rolling = compute_status(
        generation=1,
        problems=[],
        deployment=deployment(updated=1, available=1),
        previous=None,
        now="T",
        route_refused=refused,
    )
    assert conds(rolling)["Ready"] == ("False", "Progressing")
