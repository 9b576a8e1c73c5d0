"""One active operator at a time: leader election on a ``coordination.k8s.io/v1`` Lease.

The algorithm is client-go's ``tools/leaderelection`` (what controller-runtime runs), written on
asyncio, with the same record in the Lease and the same defaults, so the Lease reads the same in
``kubectl get lease`` and to anyone who knows Go controllers:

- **Acquire**: every ``retry_period`` a candidate reads the Lease (creating it if missing). It
  takes the Lease only when it is free (no ``holderIdentity``) or has expired, and it takes it
  with an update carrying the ``resourceVersion`` it read: of two candidates racing, the API
  server lets exactly one write (the other gets 409 Conflict and stays a candidate).
- **Expiry is judged on the local clock, never on the Lease's timestamps.** A candidate notes
  *when it saw* the record change (``observed_at``, monotonic); the holder has expired once the
  record has stayed the same for ``leaseDurationSeconds`` after that. ``renewTime`` is written
  for people and never read: clocks may be skewed between nodes by any amount; only their
  rates must roughly agree (``lease_duration / renew_deadline`` is the ratio tolerated).
- **Renew**: the leader updates the Lease every ``retry_period``, first optimistically on the
  object it last wrote (one request), falling back to read-then-update on a conflict.
- **Lost**: a leader that has not renewed for ``renew_deadline`` (measured from the moment it
  *sent* its last successful renewal), or that sees another holder, has lost. Here that shuts
  the write fence at once (:attr:`RestApi.fence`: no write leaves the process after that
  moment, whatever thread a reconcile runs in) and the operator exits non-zero, as
  controller-runtime's manager does. Since a candidate waits ``lease_duration`` (> renew
  deadline) from when *it* saw that same renewal, the old leader's fence has shut before any
  other replica may lead, with ``lease_duration - renew_deadline`` (5 s) to spare.
- **Release** (client-go's ``ReleaseOnCancel``): on SIGTERM the leader shuts its fence, waits
  for writes in flight, and writes the Lease free (empty holder, ``leaseDurationSeconds: 1``),
  so a standby takes over at its next try instead of after the expiry.

Deviations, on purpose: a candidate's wait between tries has 0-20 % jitter (client-go: 0-120 %,
``JitterFactor`` 1.2), so a standby notices a released Lease within ``1.2 * retry_period``
(the SIGTERM takeover goal is < 3 s); the leader's fence closes at the renew deadline counted
from its last good renewal, not from the start of the failing round (stricter by up to one
retry period). Standbys do everything else a leader does (list, watch, cache); only the
workers, the sole writers, wait for :attr:`Controller.leading`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .client import ApiError
from .kinds import Obj

log = logging.getLogger("pythonapp_operator")

LEASE_NAME = "pythonapp-operator"
#: where a pod finds its namespace (the projected service-account volume)
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: a candidate waits ``retry_period * (1 + JITTER * random())`` between tries
JITTER = 0.2
#: client-go's JitterFactor: the renew deadline must leave room for a jittered retry
CLIENT_GO_JITTER_FACTOR = 1.2

T = TypeVar("T")


@dataclass(frozen=True)
class ElectionConfig:
    """The election's knobs (flags ``--leader-elect``, ``--leader-election-id``,
    ``--leader-election-namespace``; durations from ``PYTHONAPP_LEASE_*``, see runner).
    Defaults are client-go's and controller-runtime's."""

    enabled: bool = True
    name: str = LEASE_NAME
    namespace: str = "default"
    identity: str = ""
    #: how long a candidate waits, from when it saw the record last change, before taking over
    lease_duration: float = 15.0
    #: how long the leader keeps trying to renew before it gives up (and stops writing)
    renew_deadline: float = 10.0
    #: the wait between tries
    retry_period: float = 2.0

    def check(self) -> None:
        """client-go's rules (NewLeaderElector), with its words; ValueError if broken."""
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError("lease duration, renew deadline and retry period must be > 0")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("the lease duration must be greater than the renew deadline")
        if self.renew_deadline <= CLIENT_GO_JITTER_FACTOR * self.retry_period:
            raise ValueError("the renew deadline must be greater than 1.2 x the retry period")
        if not self.identity:
            raise ValueError("the leader election identity is empty")

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"


def default_identity(env: Mapping[str, str] = os.environ) -> str:
    """Unique per process: ``POD_NAME`` in a pod (else hostname and pid), plus a random suffix,
    so a restarted container is a new candidate and never mistakes its predecessor's Lease
    for its own."""
    base = env.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"
    return f"{base}_{secrets.token_hex(3)}"


def default_namespace(
    flag: str | None,
    env: Mapping[str, str] = os.environ,
    sa_file: Path = SA_NAMESPACE_FILE,
) -> str:
    """The Lease's namespace: the flag if given, else the pod's own (``POD_NAMESPACE`` from
    the downward API, or the service-account namespace file), else ``default``."""
    if flag:
        return flag
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        found = sa_file.read_text().strip()
    except OSError:
        found = ""
    return found or "default"


class LeaseApi(Protocol):
    """The Lease calls the elector makes (blocking; run in the elector's own thread).
    Implemented by :class:`~.client.RestApi`; a fake implements it for unit tests."""

    def get_lease(self, namespace: str, name: str) -> Obj | None: ...

    def create_lease(self, lease: Obj) -> Obj: ...

    def update_lease(self, lease: Obj) -> Obj: ...

    def drain_writes(self, timeout: float) -> bool: ...


def micro_time(now: datetime | None = None) -> str:
    """A ``metav1.MicroTime`` (RFC 3339 with microseconds), as the Lease's times are written."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Record:
    """client-go's LeaderElectionRecord: what the Lease's spec says."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: Obj) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> Obj:
        spec: Obj = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


class Elector:
    """One candidate. ``run()`` returns only when leadership, once held, is lost."""

    def __init__(
        self,
        api: LeaseApi,
        config: ElectionConfig,
        *,
        on_started_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        call: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        config.check()
        self.api, self.config = api, config
        self.on_started_leading, self.on_new_leader = on_started_leading, on_new_leader
        self._clock, self._sleep, self._rng = clock, sleep, rng
        self._executor: ThreadPoolExecutor | None = None
        self._call = call or self._in_thread
        #: the record last seen (or written), and when it was seen to change (monotonic)
        self.observed = Record()
        self._observed_at = clock()
        self._lease: Obj | None = None  # the object last read or written (its resourceVersion)
        self._reported = ""
        #: when the last successful acquire/renew was sent (monotonic); None: never
        self._renewed_at: float | None = None
        self._shut = False  # fence shut for good (released, or lost)
        self.lost = False

    # -- state -------------------------------------------------------------------------------
    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def leader(self) -> str:
        """The holder last observed ("" if none)."""
        return self.observed.holder

    def is_leader(self) -> bool:
        return self.observed.holder == self.identity

    def may_write(self) -> bool:
        """The write fence (thread-safe: reads two fields): this replica holds the Lease and
        renewed it less than ``renew_deadline`` ago, and has neither released nor lost it."""
        renewed = self._renewed_at
        return (
            not self._shut
            and renewed is not None
            and self.is_leader()
            and self._clock() < renewed + self.config.renew_deadline
        )

    def _lease_valid(self, now: float) -> bool:
        """The observed holder's term has not run out, on our clock since we saw it."""
        return now < self._observed_at + self.observed.lease_duration_seconds

    # -- the loops ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Acquire, then renew until leadership is lost (``lost`` set, fence shut)."""
        try:
            await self.acquire()
            log.info(
                "became leader",
                extra={"identity": self.identity, "lease": self.config.where},
            )
            if self.on_started_leading is not None:
                self.on_started_leading()
            await self.renew()
        finally:
            self._close_executor()

    async def acquire(self) -> None:
        """Try every ``retry_period`` (jittered) until this replica holds the Lease."""
        while True:
            succeeded = await self.try_acquire_or_renew()
            self._report_transition()
            if succeeded:
                return
            await self._sleep(self.config.retry_period * (1 + JITTER * self._rng()))

    async def renew(self) -> None:
        """Renew every ``retry_period``; return once leadership is lost."""
        while True:
            await self._sleep(self.config.retry_period)
            while not await self.try_acquire_or_renew():
                self._report_transition()
                if not self.is_leader() or not self.may_write():
                    self._lose()
                    return
                await self._sleep(self.config.retry_period)
            self._report_transition()

    def _lose(self) -> None:
        self._shut = True
        self.lost = True
        why = (
            f"{self.leader or 'nobody'} holds the Lease now"
            if not self.is_leader()
            else f"the Lease was not renewed for {self.config.renew_deadline:g} s"
        )
        log.error(
            "leader election lost",
            extra={"identity": self.identity, "lease": self.config.where, "reason": why},
        )

    def _report_transition(self) -> None:
        holder = self.observed.holder
        if holder == self._reported:
            return
        self._reported = holder
        if holder and holder != self.identity:
            log.info(
                f"standing by (leader: {holder})",
                extra={"identity": self.identity, "lease": self.config.where, "leader": holder},
            )
        if self.on_new_leader is not None:
            self.on_new_leader(holder)

    # -- one try -----------------------------------------------------------------------------
    async def try_acquire_or_renew(self) -> bool:
        """client-go's tryAcquireOrRenew: True if this replica holds the Lease afterwards."""
        cfg = self.config
        now = self._clock()
        stamp = micro_time()
        mine = Record(
            holder=self.identity,
            lease_duration_seconds=round(cfg.lease_duration),
            acquire_time=stamp,
            renew_time=stamp,
        )
        # 1. fast path: the leader renews on the object it last wrote, in one request
        if self.is_leader() and self._lease_valid(now) and self._lease is not None:
            held = replace(
                mine,
                acquire_time=self.observed.acquire_time,
                transitions=self.observed.transitions,
            )
            try:
                written = await self._call(self.api.update_lease, self._with(self._lease, held))
            except ApiError as err:
                log.debug("optimistic renewal failed; reading the Lease", extra={"error": str(err)})
            else:
                self._wrote(written, held, now)
                return True
        # 2. read the Lease, or create it
        try:
            lease = await self._call(self.api.get_lease, cfg.namespace, cfg.name)
        except ApiError as err:
            log.warning("reading the leader Lease failed", extra={"error": str(err)})
            return False
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": mine.spec(),
            }
            try:
                created = await self._call(self.api.create_lease, body)
            except ApiError as err:  # 409: another candidate created it first
                log.info("creating the leader Lease failed", extra={"error": str(err)})
                return False
            self._wrote(created, mine, now)
            return True
        # 3. a changed record restarts the holder's term, on our clock, from when we saw it
        # (after the answer: the later, the safer for whoever holds it)
        seen = self._clock()
        self._lease = lease
        record = Record.of(lease)
        if record != self.observed:
            self.observed, self._observed_at = record, seen
        if record.holder and self._lease_valid(seen) and not self.is_leader():
            return False  # held by another, not expired
        # 4. take it (free or expired), or renew it (ours): the read resourceVersion decides
        if self.is_leader():
            want = replace(mine, acquire_time=record.acquire_time, transitions=record.transitions)
        else:
            want = replace(mine, transitions=record.transitions + 1)
        try:
            written = await self._call(self.api.update_lease, self._with(lease, want))
        except ApiError as err:  # 409: someone wrote it since we read it
            log.info("updating the leader Lease failed", extra={"error": str(err)})
            return False
        self._wrote(written, want, now)
        return True

    def _wrote(self, lease: Obj, record: Record, sent_at: float) -> None:
        self._lease = lease
        self.observed, self._observed_at = record, self._clock()
        self._renewed_at = sent_at

    @staticmethod
    def _with(lease: Obj, record: Record) -> Obj:
        return {**lease, "spec": {**(lease.get("spec") or {}), **record.spec()}}

    # -- release -----------------------------------------------------------------------------
    def shut(self) -> None:
        """Shut the write fence for good (shutting down): no write leaves after this."""
        self._shut = True

    async def release(self) -> bool:
        """client-go's ReleaseOnCancel: write the Lease free if this replica holds it, after
        the writes in flight have landed. True if released (or not ours to release)."""
        self.shut()
        if not self.is_leader() or self.lost:
            return True
        cfg = self.config
        try:
            await self._call(self.api.drain_writes, cfg.renew_deadline)
            for _ in range(3):  # a conflict: a renewal raced us; read again
                lease = await self._call(self.api.get_lease, cfg.namespace, cfg.name)
                if lease is None or Record.of(lease).holder != self.identity:
                    return True
                stamp = micro_time()
                free = Record(
                    holder="",
                    lease_duration_seconds=1,
                    acquire_time=stamp,
                    renew_time=stamp,
                    transitions=Record.of(lease).transitions,
                )
                try:
                    await self._call(self.api.update_lease, self._with(lease, free))
                except ApiError as err:
                    if err.status == 409:
                        continue
                    raise
                self.observed = free
                log.info(
                    "released the leader Lease",
                    extra={"identity": self.identity, "lease": cfg.where},
                )
                return True
        except ApiError as err:
            log.warning(
                "releasing the leader Lease failed; a standby takes over when it expires",
                extra={"error": str(err), "lease": cfg.where},
            )
        finally:
            self._close_executor()
        return False

    # -- threads -----------------------------------------------------------------------------
    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """The client is blocking: its calls run in a thread of the elector's own, so a pool
        busy with reconciles never delays a renewal."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="leader-election")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _close_executor(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
