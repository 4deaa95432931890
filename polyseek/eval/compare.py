"""Paired significance tests between two systems' per-query scores, and side-by-side tables.

Randomization test: Fisher's paired sign-flip permutation test on the mean difference (Smucker, Allan &
Carterette 2007, "A comparison of statistical significance tests for IR evaluation"); paired t-test from scipy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ALPHA = 0.05
MARK = "*"


def paired_arrays(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Both systems' values over the queries they share, in a fixed (sorted) order."""
    qs = sorted(set(a) & set(b))
    return np.array([a[q] for q in qs], dtype=float), np.array([b[q] for q in qs], dtype=float)


def randomization_test(a: Sequence[float], b: Sequence[float], *, n: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomization test of mean(a - b) = 0; p = (#|perm mean| >= |observed| + 1) / (n + 1)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    count = 0
    chunk = max(1, min(n, 2_000_000 // d.size))  # bound memory: chunk x queries signs at a time
    done = 0
    tol = 1e-12 * max(1.0, observed)  # count permutations equal to the observed one despite float noise
    while done < n:
        m = min(chunk, n - done)
        signs = rng.integers(0, 2, size=(m, d.size), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ d) / d.size
        count += int(np.count_nonzero(means >= observed - tol))
        done += m
    return (count + 1) / (n + 1)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value (scipy); 1.0 when the systems never differ."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    if d.size < 2 or not np.any(d):
        return 1.0
    if np.allclose(d, d[0]):  # constant non-zero difference: no variance, the difference is certain
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def compare_systems(
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str],
    *,
    baseline: str | None = None,
    n: int = 10_000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """For every system but the baseline (default: the first) and every metric: delta of means, p-values.

    ``per_query`` is ``{system: {qid: {metric: value}}}``. Returns
    ``{system: {metric: {"delta", "p_randomization", "p_ttest", "significant"}}}``.
    """
    names = list(per_query)
    base = baseline or names[0]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        if name == base:
            continue
        out[name] = {}
        for m in metrics:
            a, b = paired_arrays(
                {q: v[m] for q, v in per_query[name].items()}, {q: v[m] for q, v in per_query[base].items()}
            )
            p_r = randomization_test(a, b, n=n, seed=seed)
            p_t = paired_t_test(a, b)
            out[name][m] = {
                "delta": float(a.mean() - b.mean()) if a.size else 0.0,
                "p_randomization": p_r,
                "p_ttest": p_t,
                "significant": bool(p_r < ALPHA),
            }
    return out


def format_table(results: Sequence[Mapping], metrics: Sequence[str], significance: Mapping | None = None) -> str:
    """A plain-text table: one row per config, one column per metric, timings; ``*`` marks p < 0.05."""
    significance = significance or {}
    timed = any(r.get("timing") for r in results)
    head = ["config", *metrics, *(["index s", "p50 ms", "p95 ms"] if timed else [])]
    rows = []
    for r in results:
        name = r.get("name", "run")
        sig = significance.get(name, {})
        cells = [name]
        for m in metrics:
            v = r["metrics"].get(m)
            cell = "-" if v is None else f"{v:.4f}"
            if sig.get(m, {}).get("significant"):
                cell += MARK
            cells.append(cell)
        t = r.get("timing") or {}
        if timed:
            cells += [_num(t.get("index_s"), 1), _num(t.get("query_ms_p50"), 1), _num(t.get("query_ms_p95"), 1)]
        rows.append(cells)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if significance:
        base = results[0].get("name", "the first config")
        lines.append("")
        lines.append(
            f"{MARK} differs from {base} with p < {ALPHA} (two-sided paired randomization test, 10,000 sign flips, "
            "fixed seed); paired t-test p-values are in the JSON output."
        )
    return "\n".join(lines)


def _num(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
