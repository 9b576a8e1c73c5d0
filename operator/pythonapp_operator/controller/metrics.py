"""Prometheus metrics with controller-runtime's names, so existing dashboards and alerts work.

Exported (``controller``/``name`` label ``pythonapp``):

- ``workqueue_depth``, ``workqueue_adds_total``, ``workqueue_retries_total``,
  ``workqueue_queue_duration_seconds``, ``workqueue_work_duration_seconds``,
  ``workqueue_longest_running_processor_seconds``, ``workqueue_unfinished_work_seconds``;
- ``controller_runtime_reconcile_total{result="success|error|requeue"}``,
  ``controller_runtime_reconcile_errors_total``, ``controller_runtime_reconcile_time_seconds``;
- ``pythonapp_apps{condition,status,reason}``: apps by condition, from the cache;
- ``pythonapp_cache_objects{kind}``, ``pythonapp_cache_synced``, ``pythonapp_caught_up``
  (1 once every watched kind is listed and the queue has drained: what tests and the
  benchmark wait on), ``pythonapp_crd_installed``;
- ``pythonapp_leader``: 1 while this replica may write (it holds the Lease, or leader election
  is off), 0 on a standby: ``sum(pythonapp_leader)`` over the replicas should be 1;
- ``pythonapp_api_requests_total{method,code}``: every request the controller made;
- ``pythonapp_rollouts_active``, ``pythonapp_rollouts_pending``, ``pythonapp_rollouts_limit``,
  ``pythonapp_rollouts_admitted_total``: the operator-upgrade rollout gate (:mod:`.rollouts`):
  render-only rollouts running, apps waiting for a slot, the bound, rollouts admitted so far
  (absent when ``--max-rollouts 0`` turns the bound off).

Queue and cache figures are read when scraped (a collector), so the hot path only counts.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .kinds import APP, WATCHED_KINDS

if TYPE_CHECKING:
    from .cache import Store
    from .rollouts import Counts
    from .workqueue import WorkQueue

NAME = "pythonapp"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The operator's metrics in a registry of their own (served on ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=self.registry,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            ["name"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # pre-create the label sets so every series exists from the start
        for result in ("success", "error", "requeue"):
            self.reconcile_total.labels(NAME, result)
        self.reconcile_errors.labels(NAME)

    def observe(self, result: str, seconds: float) -> None:
        """One reconcile finished with ``result`` (success, error, requeue)."""
        self.reconcile_total.labels(NAME, result).inc()
        if result != "success":
            self.reconcile_errors.labels(NAME).inc()
        self.reconcile_time.labels(NAME).observe(seconds)

    def watch(
        self,
        queue: WorkQueue[tuple[str, str]],
        store: Store,
        state: Callable[[], dict[str, bool]],
        requests: Callable[[], Tally[tuple[str, int]]],
        rollouts: Callable[[], Counts] | None = None,
    ) -> None:
        """Read the queue, cache, flags and the rollout gate at scrape time."""
        queue.on_get = self.queue_duration.labels(NAME).observe
        queue.on_done = self.work_duration.labels(NAME).observe
        self.registry.register(_StateCollector(queue, store, state, requests, rollouts))


class _StateCollector(Collector):
    def __init__(
        self,
        queue: WorkQueue[tuple[str, str]],
        store: Store,
        state: Callable[[], dict[str, bool]],
        requests: Callable[[], Tally[tuple[str, int]]],
        rollouts: Callable[[], Counts] | None = None,
    ) -> None:
        self.queue, self.store, self.state, self.requests = queue, store, state, requests
        self.rollouts = rollouts

    def collect(self) -> Iterator[Metric]:
        q = self.queue
        for name, doc, value in (
            ("workqueue_depth", "Current depth of workqueue", len(q)),
            (
                "workqueue_longest_running_processor_seconds",
                "How many seconds has the longest running processor for workqueue been running.",
                q.longest_running(),
            ),
            (
                "workqueue_unfinished_work_seconds",
                "How many seconds of work has been done that is in progress and hasn't been "
                "observed by work_duration.",
                q.unfinished_work(),
            ),
        ):
            g = GaugeMetricFamily(name, doc, labels=["name"])
            g.add_metric([NAME], value)
            yield g
        for name, doc, value in (
            ("workqueue_adds_total", "Total number of adds handled by workqueue", q.adds),
            ("workqueue_retries_total", "Total number of retries handled by workqueue", q.retries),
        ):
            c = CounterMetricFamily(name, doc, labels=["name"])
            c.add_metric([NAME], value)
            yield c

        apps = GaugeMetricFamily(
            "pythonapp_apps",
            "PythonApps by condition, status and reason",
            labels=["condition", "status", "reason"],
        )
        tally: Tally[tuple[str, str, str]] = Tally()
        for key in self.store.keys(APP):
            conds = self.store.status(APP, *key).get("conditions") or []
            if not conds:
                tally["Ready", "Unknown", "NotReconciled"] += 1
            for cond in conds:
                tally[cond.get("type", ""), cond.get("status", ""), cond.get("reason", "")] += 1
        for labels, count in sorted(tally.items()):
            apps.add_metric(list(labels), count)
        yield apps

        objects = GaugeMetricFamily(
            "pythonapp_cache_objects", "Objects held in the operator's cache", labels=["kind"]
        )
        for kind in WATCHED_KINDS:
            objects.add_metric([kind.kind], self.store.count(kind))
        yield objects

        for flag, value in self.state().items():
            g = GaugeMetricFamily(f"pythonapp_{flag}", f"1 when {flag.replace('_', ' ')}")
            g.add_metric([], 1.0 if value else 0.0)
            yield g

        reqs = CounterMetricFamily(
            "pythonapp_api_requests",
            "API requests made by the controller",
            labels=["method", "code"],
        )
        for (method, code), count in sorted(self.requests().items()):
            reqs.add_metric([method, str(code)], count)
        yield reqs

        if self.rollouts is not None:
            counts = self.rollouts()
            for name, doc, value in (
                ("active", "Render-only rollouts (an operator upgrade) running", counts.active),
                ("pending", "Apps whose render-only rollout waits for a slot", counts.pending),
                ("limit", "Render-only rollouts allowed at once (--max-rollouts)", counts.limit),
            ):
                g = GaugeMetricFamily(f"pythonapp_rollouts_{name}", doc)
                g.add_metric([], value)
                yield g
            admitted = CounterMetricFamily(
                "pythonapp_rollouts_admitted", "Render-only rollouts admitted by the gate"
            )
            admitted.add_metric([], counts.admitted)
            yield admitted
