"""spec.expose on the real API server: an HTTPRoute where the Gateway API is served, an Ingress
where it is not wanted, each a child like the others, its acceptance on the PythonApp.

The Gateway API's HTTPRoute CRD (tests/gatewayapi.py) is installed once and left installed: it
changes nothing for the rest of the session, whose operator has no ``--gateway`` and so gives
exposed apps Ingresses whether the API is served or not. Each test stops the session's operator
(``operator_down``, restarted after) and runs one of its own on its namespace with the route
options under test, so two operators never disagree about an app's route:

- ``--gateway``: the Gateway API is served and a Gateway is set: HTTPRoutes;
- ``--route-api ingress``: Ingresses although the API is served (the option that forces it).

No gateway or ingress controller runs: each test writes the route's status as one would
(``status.parents`` of the HTTPRoute; ``status.loadBalancer`` of the Ingress) and reads it back
on the PythonApp. Before any controller answers, the app is Ready (status.route says Unknown).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Kubectl, operator_down
from tests.e2e.test_operator import app_doc, condition, ready
from tests.gatewayapi import GatewayApiUnavailable, install
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster
Wait = Callable[..., Any]
GATEWAY_NS, GATEWAY = "gateway-system", "public"
CONTROLLER = "example.net/gateway-controller"


@pytest.fixture(scope="session")
def gateway_api(k: Kubectl) -> None:
    """The HTTPRoute CRD, installed and Established (left installed: see the module doc)."""
    try:
        install(k)
    except GatewayApiUnavailable as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def own_operator(
    operator: OperatorProcess,
    gateway_api: None,
    kubeconfig_path: Path,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start an operator of this test's own on its namespace, the session's stopped meanwhile."""
    started: list[OperatorProcess] = []

    def start(*route_args: str) -> OperatorProcess:
        args = [
            "--namespace", namespace,
            "--leader-election-namespace", namespace,
            "--leader-election-id", f"expose-{secrets.token_hex(3)}",
            *route_args,
        ]  # fmt: skip
        op = OperatorProcess(kubeconfig_path, tmp_path / "operator.log", args).wait_healthy()
        started.append(op)
        return op

    with operator_down(operator):
        try:
            yield start
        finally:
            for op in started:
                assert op.stop() == 0, op.tail()


def route_status(k: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    app = k.get("pythonapp", name, namespace) or {}
    return dict((app.get("status") or {}).get("route") or {})


def controlled_by(obj: dict[str, Any] | None, uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in refs)


def write_status(k: Kubectl, kind: str, name: str, namespace: str, status: Any) -> None:
    """Write a route's status subresource, as its controller would."""
    body = json.dumps({"status": status})
    k.run("patch", kind, name, "-n", namespace, "--subresource=status", "--type=merge", "-p", body)


def write_parents(k: Kubectl, namespace: str, name: str, accepted: str, reason: str) -> None:
    """Write the HTTPRoute's status as the Gateway's controller would."""
    route = k.get("httproute", name, namespace)
    assert route is not None
    generation = route["metadata"]["generation"]

    def cond(kind: str, status: str, why: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": why,
            "message": f"{kind} {status} ({why}), said by the test's gateway controller",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": generation,
        }

    status = {
        "parents": [
            {
                "parentRef": {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "namespace": GATEWAY_NS,
                    "name": GATEWAY,
                },
                "controllerName": CONTROLLER,
                "conditions": [
                    cond("Accepted", accepted, reason),
                    cond("ResolvedRefs", "True", "ResolvedRefs"),
                ],
            }
        ]
    }
    write_status(k, "httproute", name, namespace, status)


def applies(op: OperatorProcess, child: str, why: str) -> int:
    """How many times the operator applied ``child`` for ``why`` (its "reconciled" lines): the
    API server's defaulting of a route must not read as drift (an apply loop)."""
    return sum(
        1
        for line in op.lines()
        for applied in line.get("applied") or []
        if applied == f"{child} ({why})"
    )


def test_httproute_where_the_gateway_api_is_served(
    k: Kubectl, namespace: str, own_operator: Callable[..., OperatorProcess], wait: Wait
) -> None:
    op = own_operator("--gateway", f"{GATEWAY_NS}/{GATEWAY}")
    k.apply(app_doc(namespace, "site", expose={"host": "site.example.com", "path": "/api"}))
    app = wait(lambda: k.get("pythonapp", "site", namespace), 30, "the app")
    uid = app["metadata"]["uid"]
    route = wait(
        lambda: (r := k.get("httproute", "site", namespace)) and controlled_by(r, uid) and r,
        60,
        "the HTTPRoute, controlled by the app",
    )
    spec = route["spec"]
    assert spec["hostnames"] == ["site.example.com"]
    assert spec["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": GATEWAY_NS,
        "name": GATEWAY,
    }
    rule = spec["rules"][0]
    assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/api"}
    assert rule["backendRefs"][0]["name"] == "site" and rule["backendRefs"][0]["port"] == 80
    assert k.get("ingress", "site", namespace) is None
    # no gateway controller has answered: the app is Ready, and says the route waits
    wait(lambda: ready(k, namespace, "site"), 90, "the app Ready before any controller answers")
    said = route_status(k, namespace, "site")
    assert said["kind"] == "HTTPRoute" and said["accepted"] == "Unknown", said

    write_parents(k, namespace, "site", "True", "Accepted")
    said = wait(
        lambda: (s := route_status(k, namespace, "site")).get("accepted") == "True" and s,
        60,
        "status.route accepted",
    )
    assert CONTROLLER in said["message"], said
    assert ready(k, namespace, "site")
    assert applies(op, "HTTPRoute/site", "missing") == 1, op.tail()  # the log is read
    assert applies(op, "HTTPRoute/site", "drift") == 0, op.tail()

    # the Gateway refuses it: Ready=False and Stalled, with the controller's reason
    write_parents(k, namespace, "site", "False", "NotAllowedByListeners")
    wait(
        lambda: (
            condition(k.get("pythonapp", "site", namespace), "Ready").get("reason")
            == "RouteNotAccepted"
        ),
        60,
        "Ready=False RouteNotAccepted",
    )
    app = k.get("pythonapp", "site", namespace)
    assert condition(app, "Stalled")["status"] == "True"
    said = route_status(k, namespace, "site")
    assert (said["accepted"], said["reason"]) == ("False", "NotAllowedByListeners"), said

    # spec.expose removed: the route goes, and so does status.route
    k.run("patch", "pythonapp", "site", "-n", namespace, "--type=json",
          "-p", '[{"op": "remove", "path": "/spec/expose"}]')  # fmt: skip
    wait(lambda: k.get("httproute", "site", namespace) is None, 60, "the HTTPRoute deleted")
    wait(lambda: ready(k, namespace, "site") and not route_status(k, namespace, "site"), 60,
         "Ready, without status.route")  # fmt: skip


def test_an_httproute_the_app_does_not_control_is_left_alone(
    k: Kubectl, namespace: str, own_operator: Callable[..., OperatorProcess], wait: Wait
) -> None:
    foreign = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "taken", "namespace": namespace},
        "spec": {"hostnames": ["someone.example.com"]},
    }
    k.apply(foreign)
    own_operator("--gateway", f"{GATEWAY_NS}/{GATEWAY}")
    k.apply(app_doc(namespace, "taken", expose={"host": "taken.example.com"}))
    wait(
        lambda: (
            condition(k.get("pythonapp", "taken", namespace), "Ready").get("reason") == "NotOwned"
        ),
        60,
        "NotOwned on the app",
    )
    held = k.get("httproute", "taken", namespace)
    assert held is not None and held["spec"]["hostnames"] == ["someone.example.com"]
    assert not (held["metadata"].get("ownerReferences") or [])
    assert k.get("deployment", "taken", namespace) is None  # isolation before workload


def test_ingress_when_forced(
    k: Kubectl, namespace: str, own_operator: Callable[..., OperatorProcess], wait: Wait
) -> None:
    op = own_operator("--gateway", f"{GATEWAY_NS}/{GATEWAY}", "--route-api", "ingress",
                      "--ingress-class", "nginx")  # fmt: skip
    expose = {"host": "shop.example.com", "tls": {"secretName": "shop-tls"}}
    k.apply(app_doc(namespace, "shop", expose=expose))
    app = wait(lambda: k.get("pythonapp", "shop", namespace), 30, "the app")
    uid = app["metadata"]["uid"]
    ingress = wait(
        lambda: (r := k.get("ingress", "shop", namespace)) and controlled_by(r, uid) and r,
        60,
        "the Ingress, controlled by the app",
    )
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    path = spec["rules"][0]["http"]["paths"][0]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "shop", "port": {"number": 80}}
    assert k.get("httproute", "shop", namespace) is None
    wait(lambda: ready(k, namespace, "shop"), 90, "the app Ready before any controller answers")
    said = route_status(k, namespace, "shop")
    assert (said["kind"], said["accepted"]) == ("Ingress", "Unknown"), said

    # the ingress controller gives it an address
    address = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    write_status(k, "ingress", "shop", namespace, address)
    said = wait(
        lambda: (s := route_status(k, namespace, "shop")).get("accepted") == "True" and s,
        60,
        "status.route with the address",
    )
    assert said["address"] == "203.0.113.7", said
    assert ready(k, namespace, "shop")
    assert applies(op, "Ingress/shop", "missing") == 1, op.tail()
    assert applies(op, "Ingress/shop", "drift") == 0, op.tail()
