"""spec.expose through the reconcile: the route follows the Gateway API's presence, goes with
spec.expose, and a converged exposed app costs no write."""

from __future__ import annotations

import dataclasses

from tests.unit.test_reconcile import NOW, World

from pythonapp_operator.controller.reconcile import Outcome, Snapshot, reconcile
from pythonapp_operator.routing import Gateway, RouteDefaults, Routing

GATEWAY = RouteDefaults(gateway=Gateway("gateway-system", "public"))


class ExposedWorld(World):
    routing = Routing(GATEWAY, gateway_api_served=False)

    def snapshot(self) -> Snapshot:
        return dataclasses.replace(super().snapshot(), routing=self.routing)


def test_the_route_follows_the_gateway_api_and_goes_with_expose() -> None:
    world = ExposedWorld(expose={"host": "shop.example.com"})
    world.reconcile()
    assert ("Ingress", "team-a", "shop") in world.api.objects
    assert world.status()["route"]["kind"] == "Ingress"
    world.sync()
    assert world.reconcile().applied == []  # the status says the route waits, no more
    world.sync()
    idle = world.reconcile()
    assert idle.writes == 0, idle  # converged: nothing written

    world.routing = Routing(GATEWAY, gateway_api_served=True)  # the API appeared
    moved = world.reconcile()
    assert "HTTPRoute/shop (missing)" in moved.applied
    assert moved.deleted == ["Ingress/shop"]
    assert ("Ingress", "team-a", "shop") not in world.api.objects
    assert world.status()["route"]["kind"] == "HTTPRoute"
    assert world.status()["route"]["accepted"] == "Unknown"

    world.sync()
    del world.api.objects["PythonApp", "team-a", "shop"]["spec"]["expose"]
    world.api.objects["PythonApp", "team-a", "shop"]["metadata"]["generation"] = 2
    world.sync()
    gone = world.reconcile()
    assert gone.deleted == ["HTTPRoute/shop"]
    assert "route" not in world.status()


def test_a_route_refused_on_a_ready_app_is_reported() -> None:
    world = ExposedWorld(expose={"host": "shop.example.com"})
    world.routing = Routing(GATEWAY, gateway_api_served=True)
    world.reconcile()
    world.sync()
    route = world.api.objects["HTTPRoute", "team-a", "shop"]
    route["status"] = {
        "parents": [
            {
                "parentRef": route["spec"]["parentRefs"][0],
                "controllerName": "example.net/gw",
                "conditions": [
                    {"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"}
                ],
            }
        ]
    }
    world.sync()
    outcome: Outcome = reconcile(world.api, world.snapshot(), world.memory, now=lambda: NOW)
    assert outcome.writes == 1 and outcome.status_patched  # the status only
    route_status = world.status()["route"]
    assert (route_status["accepted"], route_status["reason"]) == ("False", "NotAllowedByListeners")
