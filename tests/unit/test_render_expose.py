"""spec.expose rendered: an HTTPRoute or an Ingress to the app's Service, and nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.factories import make_doc
from tests.unit.test_render import app_of, by_kind

from pythonapp_operator.cli import ROUTE_ENV, main
from pythonapp_operator.render import render
from pythonapp_operator.routing import (
    Gateway,
    RouteDefaults,
    RouteOptionError,
    Routing,
    defaults_from,
)
from pythonapp_operator.yamlio import dump_all, load_all

GATEWAY = RouteDefaults(gateway=Gateway("gateway-system", "public"))
EXPOSE = {"host": "shop.example.com", "path": "/api", "tls": {"secretName": "shop-tls"}}


def rendered(routing: Routing, **expose: Any) -> dict[str, dict[str, Any]]:
    return by_kind(render(app_of(make_doc(expose=EXPOSE | expose)), routing=routing))


def test_an_httproute_where_the_api_is_served_and_a_gateway_is_set() -> None:
    objs = rendered(Routing(GATEWAY, gateway_api_served=True))
    assert "Ingress" not in objs
    route = objs["HTTPRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["name"] == "shop"
    assert route["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pythonapp-operator"
    assert route["spec"] == {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "namespace": "gateway-system",
                "name": "public",
            }
        ],
        "hostnames": ["shop.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 1}
                ],
            }
        ],
    }


def test_class_names_another_gateway_in_the_platform_gateway_namespace() -> None:
    route = rendered(Routing(GATEWAY, gateway_api_served=True), **{"class": "internal"})
    assert route["HTTPRoute"]["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": "gateway-system",
        "name": "internal",
    }


@pytest.mark.parametrize(
    "routing",
    [
        Routing(GATEWAY, gateway_api_served=False),  # the cluster does not serve it
        Routing(RouteDefaults(), gateway_api_served=True),  # no Gateway to attach to
        Routing(RouteDefaults(gateway=GATEWAY.gateway, route_api="ingress"), True),  # forced
    ],
    ids=["api not served", "no gateway set", "ingress forced"],
)
def test_an_ingress_otherwise(routing: Routing) -> None:
    objs = rendered(routing)
    assert "HTTPRoute" not in objs
    ingress = objs["Ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"] == {
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/api",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "shop", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    }


def test_the_ingress_class_is_the_apps_else_the_platforms_else_the_clusters_default() -> None:
    platform = Routing(RouteDefaults(ingress_class="nginx"), gateway_api_served=False)
    assert rendered(platform)["Ingress"]["spec"]["ingressClassName"] == "nginx"
    own = rendered(platform, **{"class": "internal"})
    assert own["Ingress"]["spec"]["ingressClassName"] == "internal"
    none = rendered(Routing(RouteDefaults(), gateway_api_served=False))
    assert "ingressClassName" not in none["Ingress"]["spec"]


def test_no_route_without_expose() -> None:
    kinds = {o["kind"] for o in render(app_of(make_doc()), routing=Routing(GATEWAY, True))}
    assert not kinds & {"HTTPRoute", "Ingress"}


def test_the_network_policy_is_not_widened_for_the_route() -> None:
    """A web app's NetworkPolicy admits every client to the app port already (the Gateway's
    or ingress controller's namespace included): exposing it adds no rule, opens no port."""
    plain = by_kind(render(app_of(make_doc())))["NetworkPolicy"]
    for routing in (Routing(GATEWAY, True), Routing(RouteDefaults(), False)):
        exposed = rendered(routing)["NetworkPolicy"]
        assert exposed == plain
        assert exposed["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


@pytest.mark.parametrize(
    ("gateway", "ingress_class", "route_api", "said"),
    [
        ("public", None, None, "give NAMESPACE/NAME"),
        ("Gateway-System/public", None, None, "give NAMESPACE/NAME"),
        (None, "Nginx Class", None, "not an IngressClass name"),
        (None, None, "gateway", "give auto or ingress"),
    ],
)
def test_route_options_are_checked(
    gateway: str | None, ingress_class: str | None, route_api: str | None, said: str
) -> None:
    with pytest.raises(RouteOptionError, match=said):
        defaults_from(gateway, ingress_class, route_api)


def test_route_options_parsed() -> None:
    got = defaults_from("gateway-system/public", "nginx", "ingress")
    assert got == RouteDefaults(Gateway("gateway-system", "public"), "nginx", "ingress")
    assert defaults_from("", "", "") == RouteDefaults()


def test_render_command_takes_the_route_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in ROUTE_ENV.values():
        monkeypatch.delenv(env, raising=False)
    src = tmp_path / "app.yaml"
    src.write_text(dump_all([make_doc(expose={"host": "shop.example.com"})]))
    assert main(["render", str(src)]) == 0
    assert [d["kind"] for d in load_all(capsys.readouterr().out)][-1] == "Ingress"
    assert main(["render", "--gateway", "gateway-system/public", str(src)]) == 0
    assert [d["kind"] for d in load_all(capsys.readouterr().out)][-1] == "HTTPRoute"
    monkeypatch.setenv("PYTHONAPP_GATEWAY", "gateway-system/public")
    assert main(["render", "--route-api", "ingress", str(src)]) == 0
    assert [d["kind"] for d in load_all(capsys.readouterr().out)][-1] == "Ingress"
    assert main(["render", "--gateway", "public", str(src)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "NAMESPACE/NAME" in out.err
