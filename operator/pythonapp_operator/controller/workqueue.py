"""A work queue of app keys, with client-go's guarantees, on asyncio.

- A key added while it waits is queued once (the "dirty" set).
- A key being processed is never handed to a second worker (the "processing" set); added
  meanwhile, it is queued again when the first worker is done, so no change is lost.
- Failures are retried with per-key exponential backoff and jitter, capped (``add_rate_limited``);
  ``forget`` resets a key's backoff after a success.
- ``add_after`` delays a key (the resync spreads every key over a window this way); a key
  waiting for several delays fires at the earliest.
- Two priorities, as controller-runtime's priority queue has: ``add(key, urgent=True)`` for
  work a person waits for (a new or edited app, a deleted child), ahead of the rest (status
  churn from pods starting, resyncs, retries). A queued key made urgent moves up.

All methods run on the event loop's thread. The metrics controller-runtime exports by default
are read from here (:mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down: workers stop."""


class WorkQueue(Generic[K]):
    """Deduplicating, rate-limited, delaying work queue."""

    def __init__(
        self,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_delay, self.max_delay = base_delay, max_delay
        self._clock, self._rng = clock, rng
        self._urgent: deque[K] = deque()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._dirty_urgent: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> when its processing started
        self._added_at: dict[K, float] = {}
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._wakeup = asyncio.Event()
        self._shutting_down = False
        # counters read by the metrics
        self.adds = 0
        self.retries = 0
        self.on_get: Callable[[float], None] | None = None  # seconds the key waited
        self.on_done: Callable[[float], None] | None = None  # seconds the work took

    # -- adding ------------------------------------------------------------------------------
    def add(self, key: K, *, urgent: bool = False) -> None:
        """Queue ``key`` now (once: a no-op if it is queued, unless it becomes urgent)."""
        if self._shutting_down:
            return
        if key in self._dirty:
            if urgent and key not in self._dirty_urgent:
                self._dirty_urgent.add(key)
                if key not in self._processing:
                    self._queue.remove(key)
                    self._urgent.append(key)
                    self._wakeup.set()
            return
        self.adds += 1
        self._dirty.add(key)
        if urgent:
            self._dirty_urgent.add(key)
        self._added_at[key] = self._clock()
        if key in self._processing:
            return  # queued again by done()
        (self._urgent if urgent else self._queue).append(key)
        self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (at the earliest of several pending delays)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        handle = asyncio.get_running_loop().call_later(delay, self._fire, key)
        self._waiting[key] = (ready_at, handle)

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def backoff(self, key: K) -> float:
        """The delay before the next retry of ``key``: exponential, capped, with jitter."""
        failures = self._failures.get(key, 0)
        delay = min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))
        return delay * (0.5 + 0.5 * self._rng())  # "equal jitter": spread, never below half

    def add_rate_limited(self, key: K) -> float:
        """Retry ``key`` after its backoff (which grows with each failure); the delay chosen."""
        self._failures[key] = self._failures.get(key, 0) + 1
        self.retries += 1
        delay = self.backoff(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (after a success)."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    # -- taking ------------------------------------------------------------------------------
    async def get(self) -> K:
        """The next key to process; it is not handed out again until ``done(key)``."""
        while not self._queue and not self._urgent:
            if self._shutting_down:
                raise ShutDown
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._urgent.popleft() if self._urgent else self._queue.popleft()
        self._dirty.discard(key)
        self._dirty_urgent.discard(key)
        now = self._clock()
        self._processing[key] = now
        added = self._added_at.pop(key, now)
        if self.on_get is not None:
            self.on_get(now - added)
        return key

    def done(self, key: K) -> None:
        """Processing of ``key`` finished; a key added meanwhile is queued again."""
        started = self._processing.pop(key, None)
        if started is not None and self.on_done is not None:
            self.on_done(self._clock() - started)
        if key in self._dirty:
            (self._urgent if key in self._dirty_urgent else self._queue).append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        """Stop handing out keys; workers blocked in ``get`` raise :class:`ShutDown`."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._queue.clear()
        self._urgent.clear()
        self._dirty.clear()
        self._dirty_urgent.clear()
        self._wakeup.set()

    # -- state for metrics and the caught-up signal -----------------------------------------
    @property
    def is_shut_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be processed (controller-runtime's ``workqueue_depth``)."""
        return len(self._queue) + len(self._urgent)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        """Keys waiting for a delay (retries, spread resync)."""
        return len(self._waiting)

    def idle(self) -> bool:
        """Nothing queued and nothing being processed (delayed retries may still wait)."""
        return not self._queue and not self._urgent and not self._processing

    def longest_running(self) -> float:
        now = self._clock()
        return max((now - t for t in self._processing.values()), default=0.0)

    def unfinished_work(self) -> float:
        now = self._clock()
        return sum(now - t for t in self._processing.values())
