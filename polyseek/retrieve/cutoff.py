"""Dynamic cutoff: show as many hits as stand out, not always k (VLMT, 2025: keep reranked context by a
relative score threshold plus a top-k cap).

Fused scores (RRF especially) carry no absolute meaning, so the cutoff reads a confidence per hit made from
each signal's raw score placed in that signal's own distribution on this query (DBSF's mean ± 3 std window,
clipped to [0, 1], averaged over the signals the query used). `auto` keeps the hits whose confidence is at least
`ratio` times the top hit's, at most `max_k`; when no signal's top score stands out of its own list (its
z-score under `min_z`, e.g. a nonsense word only the dense signal answers, with flat similarities) only the
first `weak_k` hits are kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import ConfigError

AUTO_RATIO = 0.7  # checked on vaswani against 0.5-0.9 (docs/benchmarks.md, "Dynamic cutoff"); not tuned to it
AUTO_MIN_Z = 4.0
WEAK_K = 1


def parse_cutoff(spec) -> tuple[str, float | None]:
    """'none' | 'auto' | a float in (0, 1] → (mode, ratio)."""
    if spec is None or spec == "none":
        return "none", None
    if spec == "auto":
        return "auto", AUTO_RATIO
    try:
        r = float(spec)
    except (TypeError, ValueError):
        raise ConfigError(f"cutoff {spec!r}: use auto, none, or a relative threshold in (0, 1]") from None
    if not 0 < r <= 1:
        raise ConfigError(f"cutoff {spec!r}: a relative threshold must be in (0, 1]")
    return "ratio", r


def signal_stats(runs: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float, float]]:
    """Per signal on this query: (mean, std, z of its top score) over its retrieved list."""
    out = {}
    for name, scores in runs.items():
        vals = [float(s) for s in scores]
        if not vals:
            continue
        mean = math.fsum(vals) / len(vals)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / len(vals))
        out[name] = (mean, std, (max(vals) - mean) / std if std > 0 else 0.0)
    return out


def confidence(signals: Mapping[str, float], stats: Mapping[str, tuple[float, float, float]]) -> float:
    """A hit's confidence in [0, 1]: each used signal's score in its mean ± 3 std window, averaged (a signal that
    did not retrieve the hit contributes 0)."""
    if not stats:
        return 0.0
    tot = 0.0
    for name, (mean, std, _) in stats.items():
        s = signals.get(name)
        if s is None or std <= 0:
            continue
        tot += min(1.0, max(0.0, (s - (mean - 3 * std)) / (6 * std)))
    return tot / len(stats)


def keep_count(conf: Sequence[float], *, ratio: float, max_k: int | None = None, evidence: float | None = None,
               min_z: float = AUTO_MIN_Z, weak_k: int = WEAK_K) -> int:
    """How many leading hits to keep: those with conf >= ratio * conf[0] (the list is in rank order, so the count
    stops at the first that falls short), at most `max_k`; `weak_k` when `evidence` (the best signal's top z) is
    under `min_z`."""
    n = len(conf)
    if n == 0:
        return 0
    cap = n if max_k is None else min(n, max_k)
    if evidence is not None and evidence < min_z:
        return min(cap, weak_k)
    top = conf[0]
    k = 1
    while k < cap and conf[k] >= ratio * top:
        k += 1
    return k
