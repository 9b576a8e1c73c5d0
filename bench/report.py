"""The benchmark's outputs: ``result.json``, ``summary.md``, ``latency.json`` and a chart.

- ``result.json``: ``{"meta": ..., "results": [one object per run], "sizes": {N: the median,
  range and values of the headline figures over that size's runs}}``, every figure of the run;
- ``latency.json``: the raw per-app latencies (ms) by run (``"500"``, ``"500#2"``) and phase,
  which ``result.json`` only summarises (p50/p95/p99/max);
- ``summary.md``: the headline figures' median and range per N, then one table with a column
  per run, readable in ten seconds;
- ``bench.png`` (needs the ``bench`` extra, matplotlib): latency distribution per N, and how
  time, memory and calls per app grow with N.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def latency(values_ms: list[float]) -> Result:
    """count, p50, p95, p99, max, mean (ms), and the samples (moved to latency.json)."""
    ordered = sorted(values_ms)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50), 1),
        "p95": round(percentile(ordered, 95), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
        "mean": round(sum(ordered) / len(ordered), 1),
        "samples": [round(v, 1) for v in ordered],
    }


def split_samples(result: Any, path: str = "") -> tuple[Any, dict[str, list[float]]]:
    """(``result`` without ``samples`` lists, {dotted path: samples})."""
    if not isinstance(result, dict):
        return result, {}
    out, samples = {}, {}
    for key, value in result.items():
        where = f"{path}.{key}" if path else key
        if key == "samples" and isinstance(value, list):
            samples[path] = value
            continue
        out[key], inner = split_samples(value, where)
        samples.update(inner)
    return out, samples


def run_key(r: Result) -> str:
    """A run's key in latency.json: ``"500"`` for the first run of a size, ``"500#2"`` after."""
    index = int(r.get("run") or 1)
    return str(r["apps"]) if index == 1 else f"{r['apps']}#{index}"


def apps_of(key: str) -> int:
    """The size N of a :func:`run_key`."""
    return int(key.split("#", 1)[0])


#: the figures whose median and range over a size's runs ``result.json`` and summary.md give
HEADLINE: tuple[tuple[str, str], ...] = (
    ("ratio_to_baseline", "**ratio_to_baseline** (operator / bare client, s to all Deployments)"),
    ("burst.deployments_s", "burst: operator s to all Deployments"),
    ("baseline.deployments_s", "burst: bare client s to all Deployments"),
    ("burst.cpu_ms_per_app", "burst: operator CPU ms per app"),
    ("burst.calls.writes_per_app", "burst: operator writes per app"),
    ("burst.calls.reads_per_app", "burst: operator reads per app"),
    ("operator.peak_rss_mib", "operator peak RSS MiB"),
    ("steady.create.latency_ms.p99", "steady: new app -> Deployment p99 ms, operator"),
    ("baseline.steady.latency_ms.p99", "steady: new app -> Deployment p99 ms, bare client"),
    ("idle.writes", "idle writes"),
    ("restart.writes", "restart writes"),
    ("secret_noise.rss_peak_growth_mib", "secret noise: operator RSS growth MiB (peak)"),
    ("secret_noise.writes", "secret noise: operator writes"),
)


def spread(results: list[Result]) -> dict[str, dict[str, Result]]:
    """{N: {figure: {"runs": [one value per run], "median", "min", "max"}}} for the
    :data:`HEADLINE` figures (a run without the figure is left out of it)."""
    out: dict[str, dict[str, Result]] = {}
    for n in sorted({int(r["apps"]) for r in results}):
        runs = sorted((r for r in results if int(r["apps"]) == n), key=lambda r: r.get("run", 1))
        figures: dict[str, Result] = {}
        for path, _ in HEADLINE:
            values = [v for v in (_get(r, path) for r in runs) if isinstance(v, int | float)]
            if values:
                figures[path] = {
                    "runs": values,
                    "median": round(statistics.median(values), 3),
                    "min": min(values),
                    "max": max(values),
                }
        out[str(n)] = figures
    return out


def write(out: Path, meta: Result, results: list[Result], merge: bool) -> None:
    """Write result.json, latency.json, summary.md and (if matplotlib is there) bench.png."""
    out.mkdir(parents=True, exist_ok=True)
    clean, samples = [], {}
    for r in results:
        c, s = split_samples(r)
        clean.append(c)
        samples[run_key(r)] = s
    if merge:
        clean, samples = _merged(out, clean, samples)
    data = {"meta": meta, "results": clean, "sizes": spread(clean)}
    (out / "result.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "latency.json").write_text(json.dumps(samples) + "\n")
    rewrite(out)


def rewrite(out: Path) -> None:
    """summary.md and bench.png again from result.json and latency.json (after a change to
    the report, or results merged by hand)."""
    data = json.loads((out / "result.json").read_text())
    samples = json.loads((out / "latency.json").read_text())
    meta, results = data["meta"], data["results"]
    (out / "summary.md").write_text(summary(meta, results))
    rate = meta.get("options", {}).get("steady_rate_per_s")
    chart(out / "bench.png", results, samples, f"steady {rate:g}/s" if rate else "steady")


def _merged(
    out: Path, results: list[Result], samples: dict[str, Any]
) -> tuple[list[Result], dict[str, Any]]:
    """Keep the sizes an earlier run measured that this one did not."""
    try:
        old = json.loads((out / "result.json").read_text())["results"]
        old_samples = json.loads((out / "latency.json").read_text())
    except (OSError, ValueError, KeyError):
        return results, samples
    mine = {int(r["apps"]) for r in results}
    kept = [r for r in old if int(r.get("apps", 0)) not in mine]
    merged = sorted(kept + results, key=lambda r: (int(r["apps"]), r.get("run", 1)))
    old_kept = {k: v for k, v in old_samples.items() if apps_of(k) not in mine}
    return merged, {**old_kept, **samples}


CPU_COMPONENTS = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kwok",
    "harness",
    "operator",
    "total",
)
"""Whose CPU the burst and the baseline report (``cluster_cpu_s``), in the report's order."""


def _get(r: Result, path: str) -> Any:
    value: Any = r
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}s" if value >= 10_000 else f"{value:.0f}"


Row = tuple[str, Callable[[Result], str]]


def _rows(meta: Result) -> list[Row]:
    idle = meta.get("options", {}).get("idle_window_s")
    noise = meta.get("options", {}).get("noise")
    secrets = meta.get("options", {}).get("noise_secrets")
    kib = meta.get("options", {}).get("noise_secret_kib")

    def lat(path: str) -> Callable[[Result], str]:
        keys = ("p50", "p95", "p99", "max")
        return lambda r: " / ".join(_ms(_get(r, f"{path}.{k}")) for k in keys)

    def pair(a: str, b: str, digits: int = 1) -> Callable[[Result], str]:
        return lambda r: f"{_num(_get(r, a), digits)} / {_num(_get(r, b), digits)}"

    def _cpu_pair(r: Result, name: str) -> str:
        return (
            f"{_num(_get(r, f'burst.cluster_cpu_s.{name}'))} / "
            f"{_num(_get(r, f'baseline.cluster_cpu_s.{name}'))}"
        )

    def triple(a: str, b: str, c: str) -> Callable[[Result], str]:
        return lambda r: " / ".join(_num(_get(r, p)) for p in (a, b, c))

    return [
        ("**ratio_to_baseline** (s to all Deployments, operator / bare client)",
         lambda r: f"**{_num(r.get('ratio_to_baseline'), 2)}**"),
        ("burst: s to all Deployments, operator / bare client",
         pair("burst.deployments_s", "baseline.deployments_s")),
        ("burst: s to all Ready (bare client: all pods available)",
         pair("burst.ready_s", "baseline.deployments_available_s")),
        ("burst: create -> Deployment ms, p50 / p95 / p99 / max", lat("burst.latency_ms")),
        ("steady: new app -> Deployment ms, p50 / p95 / p99 / max",
         lat("steady.create.latency_ms")),
        ("steady, bare client: new app -> Deployment ms, p50 / p95 / p99 / max",
         lat("baseline.steady.latency_ms")),
        ("steady: the API server's own time for the client's writes, p50 / p99 ms, "
         "operator / bare client",
         lambda r: f"{_num(_get(r, 'steady.create.server_write_ms.p50'))} / "
         f"{_num(_get(r, 'steady.create.server_write_ms.p99'))} ; "
         f"{_num(_get(r, 'baseline.steady.server_write_ms.p50'))} / "
         f"{_num(_get(r, 'baseline.steady.server_write_ms.p99'))}"),
        ("steady: s waited for settled pods first, operator / bare client",
         pair("steady.create.settle_s", "baseline.steady.settle_s")),
        ("steady: digest edit -> Deployment ms, p50 / p95 / p99 / max",
         lat("steady.edit.latency_ms")),
        ("update: edit -> Deployment ms, p50 / p95 / p99 / max", lat("update.latency_ms")),
        ("calls per app, create -> Ready: writes / reads (operator)",
         pair("burst.calls.writes_per_app", "burst.calls.reads_per_app", 2)),
        ("calls per app: writes / reads (bare client)",
         pair("baseline.calls.writes_per_app", "baseline.calls.reads_per_app", 2)),
        ("operator, whole run: writes / reads",
         pair("operator.calls.writes", "operator.calls.reads")),
        ("operator peak RSS MiB", lambda r: _num(_get(r, "operator.peak_rss_mib"))),
        ("operator CPU s: burst / whole run",
         pair("burst.usage.cpu_s", "operator.cpu_s")),
        ("operator CPU ms per app in the burst", lambda r: _num(_get(r, "burst.cpu_ms_per_app"))),
        ("CPU s to all Deployments, operator run / bare client run: " + ", ".join(CPU_COMPONENTS),
         lambda r: " ; ".join(_cpu_pair(r, n) for n in CPU_COMPONENTS)),
        ("in the cluster after the burst: pods / referenced Secrets",
         pair("burst.pods", "burst.referenced_secrets")),
        (f"idle {_num(idle, 0)}s incl. a resync: writes / reads / CPU s",
         triple("idle.writes", "idle.reads", "idle.usage.cpu_s")),
        ("restart: s to caught up / writes / reads",
         triple("restart.caught_up_s", "restart.writes", "restart.reads")),
        ("update (new digest on all): s to all Deployments / all Ready",
         pair("update.deployments_s", "update.ready_s")),
        ("update calls per app: writes / reads",
         pair("update.calls.writes_per_app", "update.calls.reads_per_app", 2)),
        (f"noise ({_num(noise)} unowned objects): CPU s (idle: same time) / RSS delta MiB",
         lambda r: f"{_num(_get(r, 'noise.cpu_s'))} "
         f"({_num(_get(r, 'noise.idle_cpu_s_same_length'))}) "
         f"/ {_num(_get(r, 'noise.rss_delta_mib'))}"),
        (f"secret noise ({_num(secrets)} unreferenced Secrets of {_num(kib)} KiB): operator RSS "
         "growth MiB, end / peak; writes; CPU s",
         lambda r: f"{_num(_get(r, 'secret_noise.rss_growth_mib'))} / "
         f"{_num(_get(r, 'secret_noise.rss_peak_growth_mib'))}; "
         f"{_num(_get(r, 'secret_noise.writes'))}; "
         f"{_num(_get(r, 'secret_noise.usage.cpu_s'))}"),
    ]  # fmt: skip


def _column(r: Result) -> str:
    index = int(r.get("run") or 1)
    return str(r["apps"]) if index == 1 else f"{r['apps']} #{index}"


def _spread_cell(figure: Result | None) -> str:
    if not figure:
        return "-"
    runs = ", ".join(_num(v, 2) for v in figure["runs"])
    if len(figure["runs"]) == 1:
        return runs
    low, high = _num(figure["min"], 2), _num(figure["max"], 2)
    return f"{_num(figure['median'], 2)} ({low}-{high}; {runs})"


def summary(meta: Result, results: list[Result]) -> str:
    """The headline figures' median and range per N, the Markdown table (a column per run)
    and the top calls per app."""
    sizes = spread(results)
    head = "| apps | " + " | ".join(_column(r) for r in results) + " |"
    lines = [
        "# Benchmark: the operator against the bare-client limit",
        "",
        f"{meta.get('operator', '')}; {meta.get('cluster', '')}; {meta.get('machine', '')}; "
        f"{meta.get('finished', '')}",
        "",
        "Median (range; each run) over the runs of each size:",
        "",
        "| apps | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for path, label in HEADLINE:
        cells = [_spread_cell(sizes[n].get(path)) for n in sizes]
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Every run:",
        "",
        head,
        "|---|" + "---|" * len(results),
    ]
    for label, cell in _rows(meta):
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")
    lines += [
        "",
        "Operator calls per app from create to Ready (audit log, by verb and resource):",
        "",
    ]
    for r in results:
        per_app = _get(r, "burst.calls.per_app") or {}
        top = sorted(per_app.items(), key=lambda kv: -kv[1])[:8]
        lines.append(f"- {_column(r)} apps: " + ", ".join(f"{k} {v:g}" for k, v in top))
    for r in results:
        prof = _get(r, "burst.profile.on_stack_percent")
        if prof:
            shares = ", ".join(f"{k} {v:g}%" for k, v in list(prof.items())[:10])
            lines.append(f"- profile, burst at {_column(r)} apps (on stack): {shares}")
    lines += ["", *meta.get("notes", []), ""]
    return "\n".join(lines)


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def chart(
    path: Path, results: list[Result], samples: dict[str, Any], steady: str = "steady"
) -> bool:
    """The PNG; False (and no file) without matplotlib."""
    try:
        import matplotlib  # noqa: PLC0415  (the optional `bench` extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax = axes[0][0]
    for n, by_path in sorted(samples.items(), key=lambda kv: (apps_of(kv[0]), kv[0])):
        for key, style in (("burst.latency_ms", "-"), ("steady.create.latency_ms", ":")):
            values = sorted(by_path.get(key) or [])
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                label = f"{n} apps, {'burst' if key.startswith('burst') else steady}"
                ax.step([max(v, 1.0) for v in values], ys, style, where="post", label=label)
    ax.set(xscale="log", xlabel="create -> Deployment (ms)", ylabel="fraction of apps")
    ax.set_title("latency distribution")
    _legend(ax)
    ns = sorted({int(r["apps"]) for r in results})

    def line(ax: Any, path: str, label: str) -> None:
        """Each run a dot, the median of each size's runs a line."""
        points = [(int(r["apps"]), _get(r, path)) for r in results]
        points = [(n, y) for n, y in points if isinstance(y, int | float)]
        if not points:
            return
        present = sorted({n for n, _ in points})
        medians = [statistics.median([y for m, y in points if m == n]) for n in present]
        (drawn,) = ax.plot(present, medians, "-", label=label)
        ax.plot([n for n, _ in points], [y for _, y in points], "o", color=drawn.get_color())

    for ax, title, ylabel, series in (
        (axes[0][1], "time to converge", "seconds", [
            ("burst.deployments_s", "operator: all Deployments"),
            ("burst.ready_s", "operator: all Ready"),
            ("baseline.deployments_s", "bare client: all Deployments"),
            ("baseline.deployments_available_s", "bare client: all pods available"),
        ]),
        (axes[1][0], "operator memory", "MiB", [
            ("operator.peak_rss_mib", "peak RSS"),
            ("idle.usage.rss_end_mib", "RSS after idle"),
        ]),
        (axes[1][1], "API calls per app, create -> Ready", "calls per app", [
            ("burst.calls.reads_per_app", "operator reads"),
            ("burst.calls.writes_per_app", "operator writes"),
            ("baseline.calls.writes_per_app", "bare client writes"),
        ]),
    ):  # fmt: skip
        for p, label in series:
            line(ax, p, label)
        ax.set(xlabel="apps", ylabel=ylabel, title=title)
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        _legend(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
