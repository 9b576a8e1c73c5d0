"""The leader elector's state machine, on a fake Lease API and a fake clock.

What is checked is client-go's protocol: create when missing; renew in one optimistic update;
a held Lease is left alone until it has not changed for its duration *on the candidate's own
clock* (its renewTime is never trusted); a released Lease is taken at the next try; of two
candidates racing, the resourceVersion lets exactly one win; a leader that cannot renew for
the renew deadline, or sees another holder, stops writing and says it lost.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pythonapp_operator.controller.client import ApiError
from pythonapp_operator.controller.leader import (
    ElectionConfig,
    Elector,
    default_identity,
    default_namespace,
)

Obj = dict[str, Any]
NS, NAME = "ops", "pythonapp-operator"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class FakeLeases:
    """One Lease, with the API server's optimistic concurrency on resourceVersion."""

    lease: Obj | None = None
    down: bool = False  # every call fails as if the API server were unreachable
    calls: list[str] = field(default_factory=list)
    before_update: Callable[[], None] | None = None  # runs between a read and the write
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(10))

    def _up(self, verb: str) -> None:
        self.calls.append(verb)
        if self.down:
            raise ApiError(0, "Unavailable", "connection refused")

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        self._up("get")
        return copy.deepcopy(self.lease)

    def create_lease(self, lease: Obj) -> Obj:
        self._up("create")
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", "leases.coordination.k8s.io already exists")
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)

    def update_lease(self, lease: Obj) -> Obj:
        self._up("update")
        if self.before_update is not None:
            hook, self.before_update = self.before_update, None
            hook()
        assert self.lease is not None
        if lease["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified; please apply ...")
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)

    def drain_writes(self, timeout: float) -> bool:
        self.calls.append("drain")
        return True

    def holder(self) -> str:
        assert self.lease is not None
        return str(self.lease["spec"].get("holderIdentity") or "")

    def someone_renews(self, who: str = "other") -> None:
        """Another replica writes the Lease (holder ``who``)."""
        assert self.lease is not None
        self.lease["spec"] |= {"holderIdentity": who, "renewTime": f"t{next(self._rv)}"}
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))


async def direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def elector(api: FakeLeases, clock: Clock, identity: str = "me", **kw: Any) -> Elector:
    config = ElectionConfig(name=NAME, namespace=NS, identity=identity)
    return Elector(api, config, clock=clock, sleep=clock.sleep, rng=lambda: 0.0, call=direct, **kw)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def run_sync(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine to its end from inside a fake API call (it never really awaits)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("the coroutine awaited something real")


def held_by(who: str, duration: int = 15, renew_time: str = "2020-01-01T00:00:00.000000Z") -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": "5"},
        "spec": {
            "holderIdentity": who,
            "leaseDurationSeconds": duration,
            "renewTime": renew_time,
            "leaseTransitions": 3,
        },
    }


# --- acquire and renew -------------------------------------------------------------------------


def test_a_missing_lease_is_created_and_held() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    assert run(e.try_acquire_or_renew()) is True
    assert api.calls == ["get", "create"]
    assert api.holder() == "me" and e.is_leader() and e.may_write()
    spec = api.lease["spec"] if api.lease else {}
    assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] and spec["renewTime"].endswith("Z")


def test_the_leader_renews_in_one_optimistic_update_keeping_its_acquire_time() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    acquired = api.lease["spec"]["acquireTime"] if api.lease else None
    api.calls.clear()
    clock.now += 2
    assert run(e.try_acquire_or_renew()) is True
    assert api.calls == ["update"]  # no read: the object last written carries the version
    assert api.lease is not None and api.lease["spec"]["acquireTime"] == acquired


def test_a_conflicting_renewal_falls_back_to_read_then_update() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    assert api.lease is not None
    api.lease["metadata"]["resourceVersion"] = "999"  # e.g. someone labelled the Lease
    api.calls.clear()
    assert run(e.try_acquire_or_renew()) is True
    assert api.calls == ["update", "get", "update"] and api.holder() == "me"


# --- another holder, expiry judged on our own clock --------------------------------------------


def test_a_held_lease_is_left_alone_until_unchanged_for_its_duration_on_our_clock() -> None:
    # Its renewTime is years old (a skewed clock, or just a stale field): never read. What
    # counts is that we first saw this record now.
    api, clock = FakeLeases(held_by("other")), Clock()
    seen: list[str] = []
    e = elector(api, clock, on_new_leader=seen.append)
    assert run(e.try_acquire_or_renew()) is False
    e._report_transition()
    assert seen == ["other"] and e.leader == "other" and not e.may_write()
    clock.now += 14.9
    assert run(e.try_acquire_or_renew()) is False
    assert api.calls.count("update") == 0
    clock.now += 0.2  # 15.1 s after we saw it change: expired
    assert run(e.try_acquire_or_renew()) is True
    assert api.holder() == "me" and api.lease is not None
    assert api.lease["spec"]["leaseTransitions"] == 4  # a new holder: one more transition


def test_a_holder_that_keeps_renewing_keeps_the_lease() -> None:
    api, clock = FakeLeases(held_by("other")), Clock()
    e = elector(api, clock)
    for _ in range(20):  # 40 s, renewed every 2 s
        assert run(e.try_acquire_or_renew()) is False
        clock.now += 2
        api.someone_renews()
    assert api.holder() == "other" and api.calls.count("update") == 0


def test_a_released_lease_is_taken_at_the_next_try() -> None:
    released = held_by("", duration=1)
    api, clock = FakeLeases(released), Clock()
    e = elector(api, clock)
    assert run(e.try_acquire_or_renew()) is True  # no waiting for any expiry
    assert api.holder() == "me"


def test_of_two_candidates_racing_for_an_expired_lease_exactly_one_wins() -> None:
    api, clock = FakeLeases(held_by("gone")), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    for e in (a, b):
        run(e.try_acquire_or_renew())  # both see "gone" holding it
    clock.now += 16
    # b has read the expired Lease; a's takeover lands before b's update: b's
    # resourceVersion is stale, the API server refuses it (409) and b stays a candidate
    api.before_update = lambda: run_sync(a.try_acquire_or_renew())
    assert run(b.try_acquire_or_renew()) is False
    assert api.holder() == "a" and a.may_write() and not b.may_write()
    # b saw a's record change just now: a fresh term on b's clock
    assert run(b.try_acquire_or_renew()) is False and b.leader == "a"


# --- losing and releasing ----------------------------------------------------------------------


def test_a_leader_that_cannot_renew_stops_writing_at_the_deadline_and_says_it_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, clock = FakeLeases(), Clock()
    started: list[float] = []

    def on_started() -> None:
        started.append(clock.now)
        api.down = True  # from now on every renewal fails

    e = elector(api, clock, on_started_leading=on_started)
    run(e.run())
    (acquired_at,) = started
    assert e.lost and not e.may_write()
    # the fence shut 10 s after the last good renewal was sent, before anyone may take over
    # (15 s after they saw that renewal)
    assert clock.now - acquired_at >= 10 and clock.now - acquired_at < 15
    assert any(r.getMessage() == "leader election lost" for r in caplog.records)


def test_the_write_fence_shuts_at_the_renew_deadline_even_before_the_loop_notices() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    clock.now += 9.9
    assert e.may_write()
    clock.now += 0.2
    assert not e.may_write()  # whatever a renewal in flight does next


def test_a_leader_that_sees_another_holder_loses_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    started: list[float] = []

    def on_started() -> None:
        started.append(clock.now)
        api.someone_renews("usurper")  # e.g. the Lease was edited by hand

    e = elector(api, clock, on_started_leading=on_started)
    run(e.run())
    (taken_at,) = started
    assert e.lost and e.leader == "usurper" and not e.may_write()
    assert clock.now - taken_at <= 2.0  # at the next renewal, not at the deadline


def test_release_frees_the_lease_after_writes_in_flight_and_shuts_the_fence() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    api.calls.clear()
    assert run(e.release()) is True
    assert api.calls == ["drain", "get", "update"]
    assert api.lease is not None
    spec = api.lease["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0 and not e.may_write()
    # the standby takes it at its next try
    assert run(elector(api, clock, "standby").try_acquire_or_renew()) is True


def test_release_never_frees_a_lease_someone_else_holds() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    api.someone_renews("other")
    assert run(e.release()) is True
    assert api.holder() == "other"


def test_release_retries_a_conflict_with_its_own_renewal() -> None:
    api, clock = FakeLeases(), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    api.before_update = lambda: api.someone_renews("me")  # a renewal landed meanwhile
    assert run(e.release()) is True
    assert api.holder() == "" and api.calls.count("get") >= 2


def test_a_standby_releases_nothing() -> None:
    api, clock = FakeLeases(held_by("other")), Clock()
    e = elector(api, clock)
    run(e.try_acquire_or_renew())
    api.calls.clear()
    assert run(e.release()) is True and api.calls == []


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "words"),
    [
        (10, 10, 2, "greater than the renew deadline"),
        (15, 2, 2, "1.2 x the retry period"),
        (15, 10, 0, "> 0"),
    ],
)
def test_durations_follow_client_go_rules(
    lease: float, renew: float, retry: float, words: str
) -> None:
    config = ElectionConfig(
        identity="me", lease_duration=lease, renew_deadline=renew, retry_period=retry
    )
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        config.check()


def test_identity_is_unique_per_process_and_names_the_pod() -> None:
    a, b = (
        default_identity({"POD_NAME": "op-7d9f-x2"}),
        default_identity({"POD_NAME": "op-7d9f-x2"}),
    )
    assert a != b and a.startswith("op-7d9f-x2_")
    assert "_" in default_identity({})


def test_namespace_flag_then_pod_then_default(tmp_path: Path) -> None:
    sa = tmp_path / "namespace"
    assert default_namespace("flagged", {"POD_NAMESPACE": "pod"}, sa) == "flagged"
    assert default_namespace(None, {"POD_NAMESPACE": "pod"}, sa) == "pod"
    assert default_namespace(None, {}, sa) == "default"
    sa.write_text("from-file\n")
    assert default_namespace(None, {}, sa) == "from-file"


# --- what a standby reports ----------------------------------------------------------------------


def test_a_synced_standby_is_ready_says_so_and_reports_pythonapp_leader_0() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from pythonapp_operator.controller import health
    from pythonapp_operator.controller.manager import Controller, Settings

    async def main() -> None:
        api, clock = FakeLeases(held_by("op-1_abc")), Clock()
        e = elector(api, clock, "op-2_def")
        await e.try_acquire_or_renew()
        no_requests = type("Api", (), {"requests": {}})()
        controller = Controller(no_requests, Settings(workers=1), [])
        controller.leading.clear()
        controller.synced.set()
        client = TestClient(TestServer(health.app(controller, e)))
        await client.start_server()
        try:
            response = await client.get("/readyz")
            assert response.status == 200
            assert await response.text() == "ok (standby; leader: op-1_abc)\n"
            assert "pythonapp_leader 0.0" in await (await client.get("/metrics")).text()
            controller.leading.set()
            assert await (await client.get("/readyz")).text() == "ok (leader)\n"
            assert "pythonapp_leader 1.0" in await (await client.get("/metrics")).text()
        finally:
            await client.close()

    run(main())
