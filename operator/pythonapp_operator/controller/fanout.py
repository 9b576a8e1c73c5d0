"""Independent API calls of one reconcile, made at once.

A new app needs five applies and a status patch; made one after the other they cost six round
trips and hold a worker for all of them. The Deployment's isolation (ServiceAccount,
NetworkPolicy, Service, PodDisruptionBudget) is four applies that do not depend on each other,
so reconcile hands them to a :data:`Fanout` together, then applies the Deployment.

A fan-out returns one entry per call, in the calls' order: its value, or the exception it
raised, so the caller can record every success before it handles the first failure.
:func:`sequential` (the default, and the unit tests') makes the calls in turn on the caller's
thread; :class:`ThreadFanout` makes them on a shared pool of threads (the official client is
synchronous), the caller's thread taking the first one itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: calls -> per call, its value or the exception it raised (same order)
Fanout = Callable[[Sequence[Callable[[], Any]]], list[Any]]


def _capture(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return exc


def sequential(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Each call in turn, on the caller's thread."""
    return [_capture(call) for call in calls]


class ThreadFanout:
    """Calls made concurrently on a shared pool (requests in flight stay bounded by the
    client's own limit, :attr:`~.client.RestApi.max_in_flight`)."""

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fanout")

    def __call__(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        if len(calls) < 2:
            return sequential(calls)
        futures = [self._pool.submit(_capture, call) for call in calls[1:]]
        first = _capture(calls[0])
        return [first, *(_wait(f) for f in futures)]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _wait(future: Future[Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:
        return exc
