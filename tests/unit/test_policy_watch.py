"""The operator watches the platform policy (one cluster-scoped object): a change reconciles
every app, its route defaults fill what the options leave unset, and a cluster without its
CRD works as before (said once).

A real :class:`Controller` with its informers against the in-memory list/watch server, no
workers: what is checked is the controller's state and which apps are queued.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.policy_cases import policy_doc
from tests.unit.fake_watch import FakeWatchServer
from tests.unit.test_expose_watch import plain
from tests.unit.test_informer import run, until

from pythonapp_operator.controller.manager import Controller
from pythonapp_operator.routing import Gateway, RouteDefaults

PLURAL = "pythonapppolicies"


async def _drain(c: Controller) -> set[tuple[str, str]]:
    keys = set()
    while len(c.queue):
        key = await c.queue.get()
        c.queue.done(key)
        keys.add(key)
    return keys


def test_a_policy_change_reconciles_every_app_and_fills_the_route_defaults() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.put("pythonapps", plain("one"))
        server.put("pythonapps", plain("two"))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        await until(lambda: len(c.queue) == 2, "the start-up's enqueue")
        await _drain(c)
        assert c.policy() is None

        spec = {"expose": {"gateway": {"namespace": "gw", "name": "public"}}}
        server.put(PLURAL, policy_doc(spec))
        await until(lambda: len(c.queue) == 2, "every app queued for the new policy")
        assert await _drain(c) == {("team-a", "one"), ("team-a", "two")}
        policy = c.policy()
        assert policy is not None and policy.expose is not None
        assert c.routing().defaults.gateway == Gateway("gw", "public")

        server.delete(PLURAL, "", "cluster")
        await until(lambda: len(c.queue) == 2, "every app queued once the policy went")
        assert c.policy() is None and c.routing().defaults == RouteDefaults()

    run(test)


def test_the_options_win_over_the_policy() -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        spec = {"expose": {"gateway": {"namespace": "gw", "name": "public"}, "ingressClass": "x"}}
        server.put(PLURAL, policy_doc(spec))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.routing().defaults == RouteDefaults(Gateway("ops", "edge"), "x", "auto")

    run(test, route_defaults=RouteDefaults(gateway=Gateway("ops", "edge")))


def test_without_the_crd_the_operator_works_as_before_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(c: Controller, server: FakeWatchServer) -> None:
        server.unserved.add(PLURAL)
        server.put("pythonapps", plain("one"))
        c.start()
        await asyncio.wait_for(c.synced.wait(), 5)
        assert c.healthy() == (True, "ok") and c.policy() is None
        before = server.requests["GET", 404]
        await until(lambda: server.requests["GET", 404] > before + 1, "listed again")
        assert c.dead is None

    with caplog.at_level(logging.INFO, logger="pythonapp_operator"):
        run(test, crd_poll_seconds=0.05)
    said = [r for r in caplog.records if "CRD is not installed: no platform policy" in r.message]
    assert len(said) == 1
