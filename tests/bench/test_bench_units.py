"""The benchmark harness's pure parts, without a cluster: statistics, report, profile summary,
what a watch records, load items, counting by call."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bench.calls import Counts
from bench.process import BenchError, Sampler, read_sample
from bench.profile import package, summarize

from bench import load, report, run, watch
from pythonapp_operator.api.validation import validate_document


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50
    assert report.percentile(values, 99) == 99
    assert report.percentile([7.0], 99) == 7
    stats = report.latency([30.0, 10.0, 20.0])
    assert stats["count"] == 3 and stats["p50"] == 20 and stats["max"] == 30
    assert stats["samples"] == [10.0, 20.0, 30.0]
    assert report.latency([]) == {"count": 0}


def test_samples_move_out_of_the_result() -> None:
    result = {"apps": 5, "burst": {"latency_ms": report.latency([1.0, 2.0])}}
    clean, samples = report.split_samples(result)
    assert "samples" not in json.dumps(clean)
    assert clean["burst"]["latency_ms"]["p50"] == 1
    assert samples == {"burst.latency_ms": [1.0, 2.0]}


def result_for(n: int) -> dict[str, Any]:
    counts = Counts({"kopf/1.45.2": Counter({"watch pythonapps": 1})})
    return {
        "apps": n,
        "ratio_to_baseline": 2.5,
        "baseline": {"deployments_s": 4.0, "calls": counts.to_json(n)},
        "burst": {
            "deployments_s": 10.0,
            "ready_s": 20.0,
            "latency_ms": report.latency([float(i) for i in range(n)]),
            "calls": Counts(
                {"pythonapp-operator/0.1.0": Counter({"get deployments": 3 * n, "patch x": n})}
            ).to_json(n),
        },
        "steady": {"create": {"latency_ms": report.latency([12_345.0])}},
        "operator": {"peak_rss_mib": 100.0 + n, "cpu_s": 9.0},
    }


def test_report_files(tmp_path: Path) -> None:
    meta = {"operator": "op", "options": {"idle_window_s": 60, "noise": 10}, "notes": ["n."]}
    report.write(tmp_path, meta, [result_for(10), result_for(20)], merge=False)
    data = json.loads((tmp_path / "result.json").read_text())
    assert [r["apps"] for r in data["results"]] == [10, 20]
    assert json.loads((tmp_path / "latency.json").read_text())["10"]["burst.latency_ms"][:2] == [
        0.0,
        1.0,
    ]
    table = (tmp_path / "summary.md").read_text()
    assert "| apps | 10 | 20 |" in table
    assert "**2.50**" in table and "12.3s" in table  # ratio, a long latency in seconds
    assert "get deployments 3" in table
    # a later run at another size keeps the earlier one with --merge
    report.write(tmp_path, meta, [result_for(30)], merge=True)
    data = json.loads((tmp_path / "result.json").read_text())
    assert [r["apps"] for r in data["results"]] == [10, 20, 30]


def test_chart(tmp_path: Path) -> None:
    # matplotlib comes with the dev lock (`make venv`); a venv without it fails here, loudly
    import matplotlib  # noqa: F401

    results = [result_for(10), result_for(20)]
    samples = {str(r["apps"]): report.split_samples(r)[1] for r in results}
    assert report.chart(tmp_path / "b.png", [report.split_samples(r)[0] for r in results], samples)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_profile_summary(tmp_path: Path) -> None:
    site = "/v/lib/python3.11/site-packages"
    raw = tmp_path / "p.txt"
    raw.write_text(
        f"run (/usr/lib/python3.11/asyncio/events.py:80);loads ({site}/kopf/_x.py:3) 3\n"
        f"run (/usr/lib/python3.11/asyncio/events.py:80);get (/r/operator/pythonapp_operator/"
        f"kube.py:70);dumps (/usr/lib/python3.11/json/encoder.py:1) 1\n"
    )
    out = summarize(raw)
    assert out["samples"] == 4
    assert out["on_stack_percent"]["stdlib.asyncio"] == 100
    assert out["self_percent_by_package"] == {"kopf": 75.0, "stdlib.json": 25.0}
    assert package(f"{site}/kubernetes/client/api_client.py") == "kubernetes"
    assert package("/r/operator/pythonapp_operator/kube.py") == "pythonapp_operator.kube"


def test_seen_records_first_times_images_and_readiness() -> None:
    seen = watch.Seen(watch.Kind("pythonapps", lambda **_: None, watch.app_image, watch.app_ready))

    def app(image: str, generation: int, observed: int | None, ready: str) -> dict[str, Any]:
        return {
            "metadata": {"name": "a", "generation": generation},
            "spec": {"image": image},
            "status": {
                "observedGeneration": observed,
                "conditions": [{"type": "Ready", "status": ready}],
            },
        }

    seen.record("ADDED", app("i1", 1, None, "False"), 1.0)
    seen.record("MODIFIED", app("i1", 1, 1, "True"), 2.0)
    seen.record("MODIFIED", app("i2", 2, 1, "True"), 3.0)  # edited: not ready for generation 2
    assert seen.count_ready({"a": None}) == 0
    seen.record("MODIFIED", app("i2", 2, 2, "True"), 4.0)
    assert seen.added == {"a": 1.0}
    assert seen.image_at == {("a", "i1"): 1.0, ("a", "i2"): 3.0}
    assert seen.count_ready({"a": "i2"}) == 1 and seen.count_ready({"a": "i1"}) == 0
    assert seen.last_ready(["a"]) == 4.0
    seen.record("DELETED", app("i2", 2, 2, "True"), 5.0)
    assert seen.count_ready({"a": None}) == 0


def test_deployment_ready_means_rolled_out() -> None:
    dep = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "x"}]}}},
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "updatedReplicas": 2,
            "availableReplicas": 2,
        },
    }
    assert watch.deployment_image(dep) == "x"
    assert not watch.deployment_ready(dep)  # an old pod still there
    dep["status"]["replicas"] = 2
    assert watch.deployment_ready(dep)


def test_benchmark_apps_are_valid_and_images_unique() -> None:
    images = {load.image(f"n500-{i}") for i in range(100)}
    assert len(images) == 100
    app, problems = validate_document(load.pythonapp("ns", "app-00001", load.image("x")))
    assert app is not None, problems
    kinds = Counter(o["kind"] for o in load.noise(["a", "b"], 9))
    assert kinds == {"Deployment": 3, "Service": 3, "ServiceAccount": 3}
    assert all(
        o["spec"]["replicas"] == 0 for o in load.noise(["a"], 9) if o["kind"] == "Deployment"
    )


def test_batch_runs_every_item_and_reports_the_first_error() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        with lock:
            seen.append(i)

    done = load.Batch([(str(i), i) for i in range(20)], call, concurrency=4, rate=1000).wait()
    assert sorted(seen) == list(range(20)) and set(done) == {str(i) for i in range(20)}

    def fail(i: int) -> None:
        raise ValueError(f"no {i}")

    with pytest.raises(BenchError, match="no"):
        load.Batch([("a", 1)], fail, concurrency=2).wait()


def test_counts_split_reads_and_writes_per_app() -> None:
    counts = Counts(
        {
            "kopf/1.45.2": Counter({"watch pythonapps": 1, "list pythonapps": 1}),
            "pythonapp-operator/0.1.0": Counter({"get deployments": 10, "patch deployments": 4}),
        }
    )
    out = counts.to_json(2)
    assert (out["reads"], out["writes"]) == (12, 4)
    assert out["reads_per_app"] == 6 and out["per_app"]["get deployments"] == 5


def test_sampler_reads_this_process() -> None:
    import os

    sample = read_sample(os.getpid())
    assert sample is not None and sample.rss_kib > 0 and sample.hwm_kib >= sample.rss_kib
    sampler = Sampler(os.getpid(), every=0.01)
    usage = sampler.usage(0.0)
    sampler.stop()
    assert usage.rss_peak_mib > 0 and usage.cpu_s >= 0
    assert sampler.peak_mib > 0


def test_command_line_options() -> None:
    opts = run.options(run.parse(["--apps", "7", "--resync", "12", "--skip", "noise"]))
    assert opts.resync_seconds == 12 and opts.idle_window == 60 and opts.skip == {"noise"}
    assert opts.timeout(100) == 500 and opts.concurrency == 16 and opts.operator_args == ()
    assert run.parse([]).apps == [500]
