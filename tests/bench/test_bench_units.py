"""The benchmark harness's pure parts, without a cluster: statistics, report, profile summary,
what a watch records, load items, counting by call."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bench.calls import Counts
from bench.process import BenchError, Sampler, cpu_between, cpu_seconds, read_sample
from bench.profile import package, summarize

from bench import baseline, load, report, run, watch
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.client import CREATE_ONLY
from pythonapp_operator.controller.compare import HASH_ANNOTATION, desired_hash
from pythonapp_operator.render import render


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
        "baseline": {
            "deployments_s": 4.0,
            "calls": counts.to_json(n),
            "cluster_cpu_s": {"kube-apiserver": 6.0, "total": 9.5},
        },
        "burst": {
            "deployments_s": 10.0,
            "ready_s": 20.0,
            "cluster_cpu_s": {"kube-apiserver": 7.5, "operator": 2.0, "total": 13.0},
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
    assert "7.5 / 6.0 ; - / - ; - / - ; - / - ; - / - ; 2.0 / - ; 13.0 / 9.5" in table
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


def test_a_job_watch_tells_once_when_each_job_ended_and_why_it_failed() -> None:
    told: list[tuple[str, str | None]] = []
    kind = watch.Kind("jobs", lambda **_: None, watch.job_image, watch.job_ended)
    seen = watch.Seen(kind, on_ready=lambda name, obj: told.append((name, watch.job_failure(obj))))

    def job(name: str, condition: str | None, message: str = "") -> dict[str, Any]:
        conditions = [{"type": condition, "status": "True", "message": message}]
        return {
            "metadata": {"name": name},
            "status": {"conditions": conditions if condition else []},
        }

    seen.record("ADDED", job("ok", None), 1.0)
    assert told == []  # running
    seen.record("MODIFIED", job("ok", "Complete"), 2.0)
    seen.record("MODIFIED", job("ok", "Complete"), 3.0)  # told once
    seen.record("MODIFIED", job("bad", "Failed", "BackoffLimitExceeded"), 4.0)
    assert told == [("ok", None), ("bad", "BackoffLimitExceeded")]


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


def test_cpu_between_reads_each_process_and_sums() -> None:
    import os

    start = cpu_seconds({"me": os.getpid(), "gone": 2**22 + 1})
    assert set(start) == {"me"}  # a process that is not there is left out, not an error
    sum(i * i for i in range(300_000))  # some CPU of our own
    used = cpu_between({"me": start["me"], "other": 1.0}, {"me": start["me"] + 2.5, "other": 3.0})
    assert used == {"me": 2.5, "other": 2.0, "total": 4.5}
    assert cpu_between(start, cpu_seconds({"me": os.getpid()}))["me"] >= 0


def test_command_line_options() -> None:
    opts = run.options(run.parse(["--apps", "7", "--resync", "12", "--skip", "noise"]))
    assert opts.resync_seconds == 12 and opts.idle_window == 60 and opts.skip == {"noise"}
    assert opts.timeout(100) == 500 and opts.concurrency == 16 and opts.operator_args == ()
    assert run.parse([]).apps == [500]


def test_command_line_repeat_and_secret_noise() -> None:
    args = run.parse(["--apps", "100", "500", "--repeat", "2", "--noise-secrets", "10"])
    opts = run.options(args)
    assert args.repeat == 2 and args.apps == [100, 500]
    assert opts.noise_secrets == 10 and opts.noise_secret_kib == 100
    assert "secret-noise" in run.SKIPPABLE
    assert run.parse([]).repeat == 1


def test_every_app_references_its_own_secret() -> None:
    body = load.pythonapp("ns", "app-00001", load.image("x"))
    assert body["spec"]["secrets"] == [{"name": "app-00001-secret"}]
    secret = load.secret("ns", "app-00001")
    assert secret["metadata"]["name"] == load.secret_name("app-00001")
    assert secret["metadata"]["labels"] == {load.ROLE_LABEL: "app"}
    assert base64.b64decode(secret["data"]["password"])  # valid base64
    app, problems = validate_document(body)
    assert app is not None, problems
    mounted = render(app)
    (deployment,) = [m for m in mounted if m["kind"] == "Deployment"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "app-00001-secret" for v in volumes)


def test_noise_secrets_are_unreferenced_and_of_the_asked_size() -> None:
    secrets = load.noise_secrets("ns", 3, kib=4)
    assert [s["metadata"]["name"] for s in secrets] == [
        "noise-secret-00000",
        "noise-secret-00001",
        "noise-secret-00002",
    ]
    blobs = [base64.b64decode(s["data"]["release"]) for s in secrets]
    assert all(len(b) == 4 * 1024 for b in blobs) and len(set(blobs)) == 3
    assert all(s["metadata"]["labels"] == {load.ROLE_LABEL: "noise"} for s in secrets)
    assert load.noise_secrets("ns", 3, kib=4) == secrets  # the same bytes every run


def _created_app(name: str = "app-00001") -> dict[str, Any]:
    body = load.pythonapp("ns", name, load.image("x"))
    body["metadata"] |= {"uid": "u-1", "generation": 1, "resourceVersion": "7"}
    return body


def test_bare_client_writes_the_operators_children_in_its_stages() -> None:
    created = _created_app()
    stages = baseline.stages(created)
    # the isolation first, all at once; the Deployment alone after it
    assert [sorted(m["kind"] for m in s) for s in stages] == [
        ["NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"],
        ["Deployment"],
    ]
    app, _ = validate_document(created)
    assert app is not None
    assert sorted(map(json.dumps, (m for s in stages for m in s))) == sorted(
        map(json.dumps, render(app))
    )  # exactly the operator's render, nothing more
    for manifest in (m for s in stages for m in s):
        assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        body = baseline.create_only(manifest)
        # the operator's create-only precondition and its hash annotation
        assert body["metadata"]["resourceVersion"] == CREATE_ONLY
        assert body["metadata"]["annotations"][HASH_ANNOTATION] == desired_hash(manifest)
        assert "resourceVersion" not in manifest["metadata"]  # the render is not changed
    bad = _created_app()
    bad["spec"]["replicas"] = -1
    with pytest.raises(BenchError, match="ns/app-00001"):
        baseline.stages(bad)


def test_bare_client_creates_an_autoscaled_deployment_at_the_floor_as_the_operator_does() -> None:
    from pythonapp_operator.controller.reconcile import initial_replicas

    created = _created_app()
    created["spec"].pop("replicas", None)
    created["spec"]["autoscaling"] = {"minReplicas": 3, "maxReplicas": 5}
    every = [m for s in baseline.stages(created) for m in s]
    (deployment,) = (m for m in every if m["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]  # the render leaves the count to the HPA
    count = initial_replicas(deployment, every)
    assert count == 3
    body = baseline.create_only(deployment, count)
    assert body["spec"]["replicas"] == 3
    # the hash is the render's: the operator's next reconcile finds it in sync
    assert body["metadata"]["annotations"][HASH_ANNOTATION] == desired_hash(deployment)
    assert all(initial_replicas(m, every) is None for m in every if m is not deployment)


def test_status_patch_tests_the_uid_first() -> None:
    patch = baseline.status_patch("u-1", {"observedGeneration": 1})
    assert patch[0] == {"op": "test", "path": "/metadata/uid", "value": "u-1"}
    assert patch[1] == {"op": "add", "path": "/status", "value": {"observedGeneration": 1}}


def test_slots_bound_requests_and_serve_later_steps_first() -> None:
    async def scenario() -> tuple[int, list[str]]:
        slots = baseline.Slots(2)
        running, peak, order = 0, 0, []
        gate = asyncio.Event()

        async def request(name: str, priority: int) -> None:
            nonlocal running, peak
            async with slots.slot(priority):
                running += 1
                peak = max(peak, running)
                order.append(name)
                await gate.wait()
                running -= 1

        first = [asyncio.create_task(request(f"hold{i}", 0)) for i in range(2)]
        await asyncio.sleep(0)
        # queued while both slots are taken: creates (0), then a status patch (-100) and a
        # Deployment (-2) of apps in progress
        queued = [
            asyncio.create_task(request(name, priority))
            for name, priority in (("create-a", 0), ("create-b", 0), ("status", -100), ("dep", -2))
        ]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*first, *queued)
        return peak, order

    peak, order = asyncio.run(scenario())
    assert peak == 2
    assert order == ["hold0", "hold1", "status", "dep", "create-a", "create-b"]


def test_slots_skip_a_cancelled_waiter() -> None:
    async def scenario() -> list[str]:
        slots = baseline.Slots(1)
        order: list[str] = []
        await slots.acquire(0)

        async def request(name: str) -> None:
            async with slots.slot(0):
                order.append(name)

        gone = asyncio.create_task(request("gone"))
        kept = asyncio.create_task(request("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        slots.release()
        await kept
        assert slots.free == 1
        return order

    assert asyncio.run(scenario()) == ["kept"]
    with pytest.raises(ValueError, match="at least one"):
        baseline.Slots(0)


def test_repeated_runs_give_each_run_and_the_median_and_range(tmp_path: Path) -> None:
    runs = []
    for index, ratio in ((1, 1.2), (2, 1.6), (3, 1.3)):
        r = result_for(10)
        r |= {"run": index, "ratio_to_baseline": ratio}
        r["burst"]["cpu_ms_per_app"] = 10.0 * index
        runs.append(r)
    meta = {"operator": "op", "options": {"noise_secrets": 1000, "noise_secret_kib": 100}}
    report.write(tmp_path, meta, [*runs, result_for(20)], merge=False)
    data = json.loads((tmp_path / "result.json").read_text())
    ratio = data["sizes"]["10"]["ratio_to_baseline"]
    assert ratio == {"runs": [1.2, 1.6, 1.3], "median": 1.3, "min": 1.2, "max": 1.6}
    assert data["sizes"]["10"]["burst.cpu_ms_per_app"]["median"] == 20.0
    assert data["sizes"]["20"]["ratio_to_baseline"]["runs"] == [2.5]
    samples = json.loads((tmp_path / "latency.json").read_text())
    assert sorted(samples) == ["10", "10#2", "10#3", "20"]
    table = (tmp_path / "summary.md").read_text()
    assert "| apps | 10 | 10 #2 | 10 #3 | 20 |" in table  # each run
    assert "1.30 (1.20-1.60; 1.20, 1.60, 1.30)" in table  # the median and range
    assert "1000 unreferenced Secrets of 100 KiB" in table
    # a later run of another size keeps every run of this one
    report.write(tmp_path, meta, [result_for(30)], merge=True)
    data = json.loads((tmp_path / "result.json").read_text())
    assert [(r["apps"], r.get("run", 1)) for r in data["results"]] == [
        (10, 1),
        (10, 2),
        (10, 3),
        (20, 1),
        (30, 1),
    ]
    assert sorted(json.loads((tmp_path / "latency.json").read_text())) == [
        "10",
        "10#2",
        "10#3",
        "20",
        "30",
    ]
    assert report.apps_of("10#3") == 10 and report.run_key({"apps": 5, "run": 2}) == "5#2"


def test_autoscaled_benchmark_apps_give_both_clients_an_hpa_each() -> None:
    opts = run.options(run.parse(["--autoscaling"]))
    assert opts.autoscaling and not run.options(run.parse([])).autoscaling
    body = load.pythonapp("ns", "app-00001", load.image("x"), autoscaled=True)
    assert "replicas" not in body["spec"]
    created = {**body, "metadata": {**body["metadata"], "uid": "u-1"}}
    kinds = [m["kind"] for stage in baseline.stages(created) for m in stage]
    assert "HorizontalPodAutoscaler" in kinds and kinds[-1] == "Deployment"
    plain = load.pythonapp("ns", "app-00001", load.image("x"))
    assert "HorizontalPodAutoscaler" not in [
        m["kind"]
        for stage in baseline.stages({**plain, "metadata": created["metadata"]})
        for m in stage
    ]
