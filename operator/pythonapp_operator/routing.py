"""Where an exposed web app's route attaches: the platform's defaults, and which API is used.

``spec.expose`` says *what* is reached (host, path, TLS); this module holds what the platform
says about *how* the cluster lets traffic in, in one place (:class:`RouteDefaults`) that the
operator's options fill today and the platform policy (issue 21) will fill later, and the one
decision (:func:`route_kind`) the operator and ``pythonapp render`` share:

- a Gateway API ``HTTPRoute`` when the cluster serves ``gateway.networking.k8s.io/v1``
  HTTPRoutes and a Gateway to attach to is configured (``--gateway NAMESPACE/NAME``): a route
  needs a parent, and the Gateway API has no default Gateway;
- else a ``networking.k8s.io/v1`` ``Ingress``, whose class is ``spec.expose.class``, else
  ``--ingress-class``, else the cluster's default IngressClass (the one annotated
  ``ingressclass.kubernetes.io/is-default-class``).

``spec.expose.class`` names the entry point in both APIs: the IngressClass, or the Gateway (in
the configured Gateway's namespace). Platforms name their entry points alike in both ("public",
"internal"), so an app says which one it wants without knowing which API the cluster runs.

Pure: no I/O. The operator learns whether the API is served from its HTTPRoute watch
(:mod:`.controller.kinds`), ``pythonapp render`` from its ``--route-api`` option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

HTTPROUTE: Final = "HTTPRoute"
INGRESS: Final = "Ingress"
RouteKind = Literal["HTTPRoute", "Ingress"]
#: ``--route-api``: auto (HTTPRoute where served and a Gateway is configured), or always Ingress
RouteApi = Literal["auto", "ingress"]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class RouteOptionError(ValueError):
    """An option value that names no Gateway or IngressClass; the message says what is wanted."""


@dataclass(frozen=True)
class Gateway:
    """A Gateway an HTTPRoute attaches to (its parentRef)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class RouteDefaults:
    """The platform's defaults for ``spec.expose``: the single place the platform policy fills.

    ``gateway``: the Gateway HTTPRoutes attach to (``spec.expose.class`` names another Gateway
    in its namespace). ``ingress_class``: the IngressClass of Ingresses when the app names none
    (None: the cluster's default class). ``route_api``: ``ingress`` renders Ingresses even where
    the Gateway API is served (a cluster whose Gateway API serves other purposes).
    """

    gateway: Gateway | None = None
    ingress_class: str | None = None
    route_api: RouteApi = "auto"

    def describe(self) -> str:
        """One line for the operator's start-up log."""
        return (
            f"gateway={self.gateway or '-'} ingress-class={self.ingress_class or '(default)'} "
            f"route-api={self.route_api}"
        )


def route_kind(defaults: RouteDefaults, *, gateway_api_served: bool) -> RouteKind:
    """HTTPRoute where the API is served and a Gateway is configured (and Ingress is not
    forced); else Ingress."""
    if gateway_api_served and defaults.gateway is not None and defaults.route_api == "auto":
        return HTTPROUTE
    return INGRESS


@dataclass(frozen=True)
class Routing:
    """What decides an app's route: the platform's defaults and whether the cluster serves
    the Gateway API (the operator's HTTPRoute watch; ``pythonapp render`` assumes it does)."""

    defaults: RouteDefaults = RouteDefaults()
    gateway_api_served: bool = True

    @property
    def kind(self) -> RouteKind:
        return route_kind(self.defaults, gateway_api_served=self.gateway_api_served)


def parse_gateway(value: str) -> Gateway:
    """``--gateway NAMESPACE/NAME``."""
    namespace, _, name = value.partition("/")
    if not (_LABEL.fullmatch(namespace) and _SUBDOMAIN.fullmatch(name) and len(name) <= 253):
        raise RouteOptionError(
            f"{value!r} is not a Gateway: give NAMESPACE/NAME (e.g. gateway-system/public)"
        )
    return Gateway(namespace, name)


def parse_ingress_class(value: str) -> str:
    """``--ingress-class NAME``: an IngressClass name (a DNS-1123 subdomain)."""
    if not (_SUBDOMAIN.fullmatch(value) and len(value) <= 253):
        raise RouteOptionError(f"{value!r} is not an IngressClass name (DNS-1123, e.g. nginx)")
    return value


def parse_route_api(value: str) -> RouteApi:
    """``--route-api auto|ingress``."""
    if value == "auto":
        return "auto"
    if value == "ingress":
        return "ingress"
    raise RouteOptionError(f"{value!r} is not a route API: give auto or ingress")


def defaults_from(
    gateway: str | None, ingress_class: str | None, route_api: str | None
) -> RouteDefaults:
    """The defaults from option (or environment) values; empty strings count as unset."""
    return RouteDefaults(
        gateway=parse_gateway(gateway) if gateway else None,
        ingress_class=parse_ingress_class(ingress_class) if ingress_class else None,
        route_api=parse_route_api(route_api) if route_api else "auto",
    )
