"""The fan-out reconcile uses for calls that do not depend on each other."""

from __future__ import annotations

import threading

from pythonapp_operator.controller.fanout import ThreadFanout, sequential


def test_results_come_back_in_the_calls_order_with_exceptions_as_values() -> None:
    pool = ThreadFanout(3)
    try:
        for fan in (sequential, pool):
            boom = ValueError("refused")

            def fail(exc: Exception = boom) -> None:
                raise exc

            assert fan([lambda: 1, fail, lambda: 3]) == [1, boom, 3]
            assert fan([]) == []
    finally:
        pool.shutdown()


def test_thread_fanout_makes_the_calls_at_once() -> None:
    """Three calls that each wait for the other two: only concurrent calls all get through
    (made in turn, the first one's wait breaks the barrier)."""
    barrier = threading.Barrier(3, timeout=10)
    pool = ThreadFanout(2)
    try:
        results = pool([barrier.wait, barrier.wait, barrier.wait])
    finally:
        pool.shutdown()
    assert sorted(results) == [0, 1, 2]
    lone = threading.Barrier(2, timeout=0.2)
    assert isinstance(sequential([lone.wait, lone.wait])[0], threading.BrokenBarrierError)
