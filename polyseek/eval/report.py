"""A Markdown report with PNG plots (matplotlib, Agg): metric bars, per-query differences, recall@k curves."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .compare import ALPHA, MARK, format_table

DELTA_METRIC = "ndcg@10"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric_bars(results: Sequence[Mapping], metrics: Sequence[str], path: Path, title: str) -> Path:
    """Grouped bars: one group per metric, one bar per config, each bar labelled with its value."""
    import numpy as np

    plt = _plt()
    n = len(results)
    width = 0.8 / max(n, 1)
    x = np.arange(len(metrics))
    # Wide enough for the bars, never wider than a screen: many configs get thinner bars, not a wider figure.
    fig, ax = plt.subplots(figsize=(min(14, max(7, 1.3 * len(metrics) * max(1, n / 2))), 5.2), dpi=120)
    for i, r in enumerate(results):
        vals = [r["metrics"].get(m, 0.0) for m in metrics]
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=r.get("name", f"run {i + 1}"))
        if n <= 5:  # more labels than that overlap; the table in report.md has the numbers
            ax.bar_label(bars, labels=[f"{v:.3f}" for v in vals], fontsize=7, padding=2, rotation=90 if n > 3 else 0)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, min(1.15, max([r["metrics"].get(m, 0.0) for r in results for m in metrics] + [0.1]) * 1.2 + 0.05))
    ax.set_ylabel("score (mean over queries)")
    ax.set_xlabel("metric")
    ax.set_title(title)
    ax.legend(title="config", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_per_query_delta(per_query: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path, title: str,
                         metric: str = DELTA_METRIC) -> Path:
    """Per-query difference of ``metric`` against the first config, sorted, one line per other config."""
    import numpy as np

    plt = _plt()
    names = list(per_query)
    base = per_query[names[0]]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name in names[1:]:
        qs = sorted(set(base) & set(per_query[name]))
        d = np.sort(np.array([per_query[name][q][metric] - base[q][metric] for q in qs]))[::-1]
        wins, losses = int((d > 0).sum()), int((d < 0).sum())
        ax.plot(np.arange(1, len(d) + 1), d, marker="." if len(d) <= 200 else None, lw=1.5,
                label=f"{name} (better on {wins}, worse on {losses}, mean {d.mean():+.3f})")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("queries, sorted by difference")
    ax.set_ylabel(f"{metric} difference vs {names[0]}")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_recall_curves(results: Sequence[Mapping], path: Path, title: str) -> Path:
    """Mean recall@k for k = 1..100, one line per config, log-scaled k."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for r in results:
        curve = r.get("recall_curve") or []
        if curve:
            ax.plot(range(1, len(curve) + 1), curve, lw=1.8, label=f"{r.get('name', 'run')} (R@100 {curve[-1]:.3f})")
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 5, 10, 20, 50, 100], ["1", "2", "5", "10", "20", "50", "100"])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k (results looked at, log scale)")
    ax.set_ylabel("recall@k (mean over queries)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(result: Mapping[str, Any], out_dir: str | Path, per_query: Mapping | None = None) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir``; ``result`` is what `run_benchmark` returns.

    ``per_query`` (``{config: {qid: {metric: v}}}``) defaults to the run folder's per_query.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = list(result["results"])
    metrics = list(results[0]["metrics"])
    bench = result.get("bench", "benchmark")
    if per_query is None and result.get("run_dir"):
        p = Path(result["run_dir"]) / "per_query.json"
        per_query = json.loads(p.read_text()) if p.is_file() else None
    sig = result.get("significance") or {}

    lines = [f"# Polyseek evaluation: {bench}", ""]
    lines.append(f"{result.get('queries', results[0].get('queries'))} judged queries; "
                 f"run folder `{result.get('run_dir', '-')}`.")
    if result.get("index"):
        ix = result["index"]
        lines.append(f"Index `{ix.get('index_dir')}`: {ix.get('indexed', 0)} indexed, {ix.get('skipped', 0)} "
                     f"unchanged, {len(ix.get('failed', []))} failed, {ix.get('index_s')} s.")
    lines += ["", "## Results", "", "```", format_table(results, metrics, sig), "```", ""]
    if sig:
        lines += ["### Significance against " + results[0]["name"], "",
                  "| config | metric | delta | p (randomization) | p (t-test) |", "|---|---|---:|---:|---:|"]
        for name, per_metric in sig.items():
            for m, s in per_metric.items():
                mark = f" {MARK}" if s["significant"] else ""
                lines.append(f"| {name} | {m} | {s['delta']:+.4f}{mark} | {s['p_randomization']:.4f} | "
                             f"{s['p_ttest']:.4f} |")
        lines += ["", f"{MARK}: p < {ALPHA}, two-sided paired randomization test (10,000 sign flips, fixed seed).", ""]

    bars = plot_metric_bars(results, metrics, out / "metrics.png", f"{bench}: metrics per config")
    lines += ["## Metrics per config", "", f"![metrics per config]({bars.name})", ""]
    if per_query and len(per_query) > 1:
        delta = plot_per_query_delta(per_query, out / "per_query_delta.png",
                                     f"{bench}: per-query {DELTA_METRIC} vs {results[0]['name']}")
        lines += [f"## Per-query {DELTA_METRIC} difference", "",
                  f"Each line is one config minus {results[0]['name']}, queries sorted from most improved to most "
                  "hurt; area above zero is queries it wins.", "", f"![per-query difference]({delta.name})", ""]
    if any(r.get("recall_curve") for r in results):
        rc = plot_recall_curves(results, out / "recall_at_k.png", f"{bench}: recall@k")
        lines += ["## Recall@k", "", f"![recall at k]({rc.name})", ""]
    by_type = result.get("by_query_type") or {}
    if by_type:
        lines += ["## Per query type", "", "| config | type | queries | " + " | ".join(metrics) + " |",
                  "|---|---|---:|" + "---:|" * len(metrics)]
        for name, kinds in by_type.items():
            for kind, vals in kinds.items():
                lines.append(f"| {name} | {kind} | {vals['queries']} | "
                             + " | ".join(f"{vals.get(m, 0):.4f}" for m in metrics) + " |")
        lines.append("")
    lines += ["## Configs", "", "```json", json.dumps({r["name"]: r.get("config") for r in results}, indent=2), "```"]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
