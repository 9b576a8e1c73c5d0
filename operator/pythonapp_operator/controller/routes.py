"""What the cluster says of an app's route (``spec.expose``), for its status. Pure.

An HTTPRoute is answered by the controller of the Gateway it attaches to, in
``status.parents[]``: ``Accepted`` (the Gateway takes the route: its listeners allow the
namespace and match the host) and ``ResolvedRefs`` (the backend Service exists). An Ingress is
answered by its ingress controller with an address in ``status.loadBalancer.ingress``; it has
no way to say no.

How the answer shows (``status.route``, and the conditions):

- no controller has answered yet (none runs, or it is slow): ``accepted: Unknown``, and the
  conditions say what the Deployment says. Many clusters run no gateway or ingress controller
  in every environment, and an app that serves inside the cluster is Ready: kstatus users
  (Flux, Argo CD) would otherwise wait forever on a route no one will ever answer;
- the Gateway's controller refused it (``Accepted`` or ``ResolvedRefs`` False): ``accepted:
  False`` with the controller's reason and message, and the app is Ready=False and
  Stalled=True with reason :data:`ROUTE_NOT_ACCEPTED` once its pods are ready (a person must
  act: the host, the Gateway's allowed namespaces, the class). The running pods are untouched;
- accepted, or given an address: ``accepted: True`` (with the address for an Ingress).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .kinds import Obj, is_controlled_by

ROUTE_NOT_ACCEPTED = "RouteNotAccepted"
#: the HTTPRoute conditions that must not be False for the route to serve
_HTTPROUTE_CONDITIONS = ("Accepted", "ResolvedRefs")


@dataclass(frozen=True)
class RouteView:
    """``status.route``, and whether the route was explicitly refused."""

    record: dict[str, Any]

    @property
    def refused(self) -> bool:
        return self.record.get("accepted") == "False"

    @property
    def message(self) -> str:
        return f"The {self.record['kind']} {self.record['name']} was refused: " + str(
            self.record.get("message") or self.record.get("reason")
        )


def assess(app: Obj, children: dict[str, Obj], kind: str | None) -> RouteView | None:
    """The route's view, for the route of ``kind`` the app's spec asks for (None: it asks
    for none); ``children`` by kind, as cached."""
    if kind is None:
        return None
    meta = app.get("metadata") or {}
    name = str(meta.get("name", ""))
    child = children.get(kind)
    if child is None or not is_controlled_by(child, str(meta.get("uid", ""))):
        said = f"The {kind} is being created."
        return RouteView(_record(kind, name, "Unknown", "Creating", said))
    if kind == "HTTPRoute":
        return RouteView(_http_route(child, name))
    return RouteView(_ingress(child, name))


def expected_kind(app: Obj, routing_kind: str) -> str | None:
    """The route kind a stored app's spec asks for: ``routing_kind`` when it has
    ``spec.expose`` (a web app's), else None."""
    spec = app.get("spec") or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("expose"), dict):
        return None
    return routing_kind if spec.get("profile", "web") == "web" else None


def _record(  # noqa: PLR0917 (the fields of status.route, in their order)
    kind: str, name: str, accepted: str, reason: str, message: str, address: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "accepted": accepted,
        "reason": reason,
        "message": message,
    }
    if address:
        out["address"] = address
    return out


def _http_route(route: Obj, name: str) -> dict[str, Any]:
    refs = [
        (r.get("namespace"), r.get("name"))
        for r in (route.get("spec") or {}).get("parentRefs") or []
        if isinstance(r, dict)
    ]
    gateways = ", ".join(f"{ns}/{n}" for ns, n in refs) or "none"
    parents = [
        p
        for p in (route.get("status") or {}).get("parents") or []
        if isinstance(p, dict)
        and ((p.get("parentRef") or {}).get("namespace"), (p.get("parentRef") or {}).get("name"))
        in refs
    ]
    if not parents:
        return _record(
            "HTTPRoute",
            name,
            "Unknown",
            "Waiting",
            f"No gateway controller has answered for Gateway {gateways} yet.",
        )
    accepted: list[str] = []
    for parent in parents:
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        for kind in _HTTPROUTE_CONDITIONS:
            cond = conditions.get(kind) or {}
            if cond.get("status") == "False":
                reason = str(cond.get("reason") or f"Not{kind}")
                said = cond.get("message") or reason
                return _record("HTTPRoute", name, "False", reason, f"{kind}=False: {said}")
        if (conditions.get("Accepted") or {}).get("status") == "True":
            accepted.append(str(parent.get("controllerName") or "a gateway controller"))
    if not accepted:
        return _record(
            "HTTPRoute",
            name,
            "Unknown",
            "Waiting",
            f"The gateway controller has not accepted the route on Gateway {gateways} yet.",
        )
    return _record(
        "HTTPRoute",
        name,
        "True",
        "Accepted",
        f"Accepted on Gateway {gateways} by {', '.join(sorted(set(accepted)))}.",
    )


def _ingress(ingress: Obj, name: str) -> dict[str, Any]:
    found = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [
        str(i.get("ip") or i.get("hostname")) for i in found if i.get("ip") or i.get("hostname")
    ]
    if not addresses:
        klass = (ingress.get("spec") or {}).get("ingressClassName") or "the default class"
        return _record(
            "Ingress",
            name,
            "Unknown",
            "Waiting",
            f"No ingress controller ({klass}) has given the Ingress an address yet.",
        )
    address = ", ".join(addresses)
    return _record(
        "Ingress", name, "True", "AddressAssigned", f"Served at {address}.", address=address
    )
