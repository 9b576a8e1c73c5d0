"""The work queue's guarantees (client-go's): dedup, one worker per key, backoff, delays."""

from __future__ import annotations

import asyncio

import pytest

from pythonapp_operator.controller.workqueue import ShutDown, WorkQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_key_added_twice_is_processed_once() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        assert await q.get() == "a"
        assert await q.get() == "b"
        assert len(q) == 0

    run(main())


def test_a_key_being_processed_is_not_handed_out_again_but_requeued_after() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        key = await q.get()
        q.add("a")  # changed while a worker has it
        assert len(q) == 0  # not handed to a second worker
        q.add("a")
        q.done(key)
        assert len(q) == 1  # queued again, once
        assert await q.get() == "a"
        q.done("a")
        assert q.idle()

    run(main())


def test_many_workers_never_hold_the_same_key() -> None:
    async def main() -> None:
        q: WorkQueue[int] = WorkQueue()
        holding: set[int] = set()
        seen: list[int] = []

        async def worker() -> None:
            while True:
                try:
                    key = await q.get()
                except ShutDown:
                    return
                assert key not in holding
                holding.add(key)
                seen.append(key)
                await asyncio.sleep(0)
                if len(seen) < 200:
                    q.add(key)  # re-added while held
                holding.discard(key)
                q.done(key)

        tasks = [asyncio.create_task(worker()) for _ in range(8)]
        for key in range(5):
            q.add(key)
        while len(seen) < 200 or not q.idle():
            await asyncio.sleep(0.001)
        q.shutdown()
        await asyncio.gather(*tasks)
        assert set(seen) == set(range(5))

    run(main())


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=300.0, rng=lambda: 1.0)
    q._failures["a"] = 1
    assert q.backoff("a") == 1.0
    q._failures["a"] = 4
    assert q.backoff("a") == 8.0
    q._failures["a"] = 30
    assert q.backoff("a") == 300.0
    low: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=300.0, rng=lambda: 0.0)
    low._failures["a"] = 4
    assert low.backoff("a") == 4.0  # jitter never below half
    q.forget("a")
    assert q.failures("a") == 0


def test_rate_limited_adds_wait_then_arrive_and_count_as_retries() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=1.0)
        delay = q.add_rate_limited("a")
        assert 0.005 <= delay <= 0.01
        assert len(q) == 0 and q.waiting == 1
        assert await asyncio.wait_for(q.get(), 5) == "a"
        assert q.retries == 1 and q.failures("a") == 1

    run(main())


def test_the_earliest_of_several_delays_wins() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add_after("a", 60)
        q.add_after("a", 0.01)
        q.add_after("a", 30)
        assert await asyncio.wait_for(q.get(), 5) == "a"
        assert q.waiting == 0

    run(main())


def test_shutdown_releases_waiting_workers() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.shutdown()
        with pytest.raises(ShutDown):
            await waiter

    run(main())


def test_urgent_keys_go_first_and_a_queued_key_made_urgent_moves_up() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        for key in ("resync-1", "resync-2", "edited"):
            q.add(key)
        q.add("new", urgent=True)
        q.add("edited", urgent=True)  # was queued behind the resyncs
        assert len(q) == 4
        assert [await q.get() for _ in range(4)] == ["new", "edited", "resync-1", "resync-2"]

    run(main())


def test_a_key_made_urgent_while_processed_is_requeued_urgent() -> None:
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add("b")
        key = await q.get()
        q.add(key, urgent=True)
        q.done(key)
        assert await q.get() == "a"

    run(main())
