"""The benchmark's outputs: ``result.json``, ``summary.md``, ``latency.json`` and a chart.

- ``result.json``: ``{"meta": ..., "results": [one object per N]}``, every figure of the run;
- ``latency.json``: the raw per-app latencies (ms) by N and phase, which ``result.json`` only
  summarises (p50/p95/p99/max);
- ``summary.md``: one table, a column per N, readable in ten seconds;
- ``bench.png`` (needs the ``bench`` extra, matplotlib): latency distribution per N, and how
  time, memory and calls per app grow with N.
"""

from __future__ import annotations

import json
import math
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


def write(out: Path, meta: Result, results: list[Result], merge: bool) -> None:
    """Write result.json, latency.json, summary.md and (if matplotlib is there) bench.png."""
    out.mkdir(parents=True, exist_ok=True)
    clean, samples = [], {}
    for r in results:
        c, s = split_samples(r)
        clean.append(c)
        samples[str(r["apps"])] = s
    if merge:
        clean, samples = _merged(out, clean, samples)
    (out / "result.json").write_text(json.dumps({"meta": meta, "results": clean}, indent=2) + "\n")
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
    mine = {r["apps"] for r in results}
    kept = [r for r in old if r.get("apps") not in mine]
    merged = sorted(kept + results, key=lambda r: int(r["apps"]))
    return merged, {**{k: v for k, v in old_samples.items() if int(k) not in mine}, **samples}


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

    def lat(path: str) -> Callable[[Result], str]:
        keys = ("p50", "p95", "p99", "max")
        return lambda r: " / ".join(_ms(_get(r, f"{path}.{k}")) for k in keys)

    def pair(a: str, b: str, digits: int = 1) -> Callable[[Result], str]:
        return lambda r: f"{_num(_get(r, a), digits)} / {_num(_get(r, b), digits)}"

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
    ]  # fmt: skip


def summary(meta: Result, results: list[Result]) -> str:
    """The Markdown table (a column per N) and the top calls per app."""
    head = "| apps | " + " | ".join(str(r["apps"]) for r in results) + " |"
    lines = [
        "# Benchmark: the operator against the bare-client limit",
        "",
        f"{meta.get('operator', '')}; {meta.get('cluster', '')}; {meta.get('machine', '')}; "
        f"{meta.get('finished', '')}",
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
        lines.append(f"- {r['apps']} apps: " + ", ".join(f"{k} {v:g}" for k, v in top))
    for r in results:
        prof = _get(r, "burst.profile.on_stack_percent")
        if prof:
            shares = ", ".join(f"{k} {v:g}%" for k, v in list(prof.items())[:10])
            lines.append(f"- profile, burst at {r['apps']} apps (on stack): {shares}")
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
    for n, by_path in sorted(samples.items(), key=lambda kv: int(kv[0])):
        for key, style in (("burst.latency_ms", "-"), ("steady.create.latency_ms", ":")):
            values = sorted(by_path.get(key) or [])
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                label = f"{n} apps, {'burst' if key.startswith('burst') else steady}"
                ax.step([max(v, 1.0) for v in values], ys, style, where="post", label=label)
    ax.set(xscale="log", xlabel="create -> Deployment (ms)", ylabel="fraction of apps")
    ax.set_title("latency distribution")
    _legend(ax)
    ns = [int(r["apps"]) for r in results]

    def line(ax: Any, path: str, label: str) -> None:
        ys = [_get(r, path) for r in results]
        if any(y is not None for y in ys):
            ax.plot(ns, [float("nan") if y is None else y for y in ys], "o-", label=label)

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
