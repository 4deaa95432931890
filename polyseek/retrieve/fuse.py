"""Rank fusion: pure functions over per-signal runs ``{signal: {doc_id: score}}`` → one ``{doc_id: score}``.

Methods and score normalisations follow ranx's definitions (Bassani 2022), so numbers can be checked against
ranx; they are plain dict code because they run once per query on a few hundred candidates.
Where a rank is needed, a run is ordered by score descending with ties broken by doc id descending
(trec_eval's order), so fusion is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Union

from ..errors import ConfigError, UnknownNameError
from ..registry import Registry

Scores = dict[str, float]
Runs = Mapping[str, Mapping[str, float]]
Weights = Union[Mapping[str, float], Sequence[float], Iterable[tuple[str, float]], None]

_EPS = 1e-9  # ranx's floor on normalisation denominators


def ranked(scores: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """``(doc_id, score)`` pairs best first: score descending, ties by doc id descending (trec_eval's order)."""
    items = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return items if k is None else items[:k]


# ---------------------------------------------------------------------------- normalisations


def norm_minmax(scores: Mapping[str, float]) -> Scores:
    """(s - min) / (max - min)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    den = max(hi - lo, _EPS)
    return {d: (s - lo) / den for d, s in scores.items()}


def norm_zscore(scores: Mapping[str, float]) -> Scores:
    """(s - mean) / std, population std (ranx "zmuv")."""
    if not scores:
        return {}
    vals = list(scores.values())
    mean = math.fsum(vals) / len(vals)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / len(vals))
    den = max(std, _EPS)
    return {d: (s - mean) / den for d, s in scores.items()}


def norm_max(scores: Mapping[str, float]) -> Scores:
    """s / max."""
    if not scores:
        return {}
    den = max(max(scores.values()), _EPS)
    return {d: s / den for d, s in scores.items()}


def norm_sum(scores: Mapping[str, float]) -> Scores:
    """(s - min) / sum(s - min): shifted scores that sum to one."""
    if not scores:
        return {}
    lo = min(scores.values())
    den = max(math.fsum(scores.values()) - lo * len(scores), _EPS)
    return {d: (s - lo) / den for d, s in scores.items()}


def norm_dbsf(scores: Mapping[str, float], n: int | None = None) -> Scores:
    """Distribution-based score normalisation (Qdrant 1.11's DBSF, after Mazzeschi 2023): map
    [mean - 3 std, mean + 3 std] of this run's scores onto [0, 1] (not clipped, as Qdrant does not clip; population
    std). A run with no spread maps to 0.5, as in Qdrant.

    `n`: the statistics describe the signal's top `n`, and a shorter run is padded with zeros: a signal that ran
    out of matches before `n` scores every other unit 0 (BM25 without a query term, no verified inliers). Without
    this a unique-word BM25 match, alone in its run, has no spread and sinks under dense-only neighbours."""
    if not scores:
        return {}
    vals = list(scores.values())
    total = max(len(vals), n or 0)
    pad = total - len(vals)
    mean = math.fsum(vals) / total
    std = math.sqrt((math.fsum((v - mean) ** 2 for v in vals) + pad * mean * mean) / total)
    if std <= _EPS:
        return dict.fromkeys(scores, 0.5)
    lo, den = mean - 3 * std, 6 * std
    return {d: (s - lo) / den for d, s in scores.items()}


def norm_rank(scores: Mapping[str, float]) -> Scores:
    """1 - (rank - 1) / n: a Borda-like score from the rank alone."""
    n = len(scores)
    return {d: 1.0 - i / n for i, (d, _) in enumerate(ranked(scores))}


NORMALIZATIONS: dict[str, Callable[[Mapping[str, float]], Scores]] = {
    "minmax": norm_minmax,
    "zscore": norm_zscore,
    "max": norm_max,
    "sum": norm_sum,
    "rank": norm_rank,
    "dbsf": norm_dbsf,
}
_NORM_ALIASES = {"min-max": "minmax", "min_max": "minmax", "zmuv": "zscore"}


def norm_borda(runs: Runs) -> dict[str, Scores]:
    """Borda normalisation over the union of candidates (ranx "borda"): a doc missing from a run gets the
    mean of the ranks that run did not use."""
    candidates = {d for r in runs.values() for d in r}
    n_c = len(candidates)
    out: dict[str, Scores] = {}
    for name, scores in runs.items():
        if not scores:
            out[name] = {}
            continue
        n = len(scores)
        s = {d: 1.0 - i / n_c for i, (d, _) in enumerate(ranked(scores))}
        missing = 0.5 - (n - 1) / (2 * n_c)
        for d in candidates:
            s.setdefault(d, missing)
        out[name] = s
    return out


def normalize(runs: Runs, norm: str | None) -> dict[str, Scores]:
    """Normalise every run with ``norm`` (one of NORMALIZATIONS, "borda", or None to keep raw scores)."""
    if norm is None or norm == "none":
        return {name: dict(r) for name, r in runs.items()}
    key = _NORM_ALIASES.get(norm, norm)
    if key == "borda":
        return norm_borda(runs)
    try:
        fn = NORMALIZATIONS[key]
    except KeyError:
        raise UnknownNameError(
            f"unknown normalisation {norm!r}; choose from: {', '.join([*NORMALIZATIONS, 'borda', 'none'])}"
        ) from None
    return {name: fn(r) for name, r in runs.items()}


# ---------------------------------------------------------------------------- fusion methods


def _weights(runs: Runs, weights: Weights) -> dict[str, float]:
    """Per-run weights from a mapping, ``(name, w)`` pairs, or a sequence aligned with ``runs``; default 1."""
    names = list(runs)
    if weights is None:
        return dict.fromkeys(names, 1.0)
    if isinstance(weights, Mapping):
        w = dict(weights)
    else:
        seq = list(weights)
        if seq and all(isinstance(x, (tuple, list)) and len(x) == 2 for x in seq):
            w = {str(n): float(v) for n, v in seq}
        else:
            if len(seq) != len(names):
                raise ConfigError(f"got {len(seq)} weights for {len(names)} runs ({', '.join(names)})")
            w = dict(zip(names, seq))
    # a weight for a signal this query lacks (no image → no visual run) is simply unused
    return {n: float(w.get(n, 1.0)) for n in names}


fusions: Registry[Callable[..., Scores]] = Registry("fusion method")


def register_fusion(name: str, *, weighted: bool):
    """Register a fusion function under `name`. `weighted`: it honours per-run weights; one that does not is
    given none (`fuse` rejects weights for it with an error instead of silently ignoring them)."""

    def deco(fn):
        fn.weighted = weighted
        return fusions.register(name)(fn)

    return deco


@register_fusion("rrf", weighted=True)
def rrf(runs: Runs, k: int = 60, weights: Weights = None) -> Scores:
    """Reciprocal rank fusion, Cormack et al. 2009: sum over runs of w / (k + rank)."""
    if k < 0:
        raise ConfigError(f"rrf k must be >= 0, got {k}")
    w = _weights(runs, weights)
    out: Scores = {}
    for name, scores in runs.items():
        wn = w[name]
        for rank, (d, _) in enumerate(ranked(scores), 1):
            out[d] = out.get(d, 0.0) + wn / (k + rank)
    return out


@register_fusion("combsum", weighted=False)
def combsum(runs: Runs) -> Scores:
    """CombSUM, Fox & Shaw 1993: sum of a doc's scores (a missing doc contributes 0)."""
    out: Scores = {}
    for scores in runs.values():
        for d, s in scores.items():
            out[d] = out.get(d, 0.0) + s
    return out


@register_fusion("combmnz", weighted=False)
def combmnz(runs: Runs) -> Scores:
    """CombMNZ, Fox & Shaw 1993: CombSUM times the number of runs that retrieved the doc."""
    total: Scores = {}
    hits: dict[str, int] = {}
    for scores in runs.values():
        for d, s in scores.items():
            total[d] = total.get(d, 0.0) + s
            hits[d] = hits.get(d, 0) + 1
    return {d: s * hits[d] for d, s in total.items()}


@register_fusion("combmax", weighted=False)
def combmax(runs: Runs) -> Scores:
    """CombMAX, Fox & Shaw 1993: a doc's best score over the runs that retrieved it."""
    out: Scores = {}
    for scores in runs.values():
        for d, s in scores.items():
            if d not in out or s > out[d]:
                out[d] = s
    return out


@register_fusion("wsum", weighted=True)
def wsum(runs: Runs, weights: Weights = None) -> Scores:
    """Weighted sum of scores (a missing doc contributes 0); equal weights give CombSUM."""
    w = _weights(runs, weights)
    out: Scores = {}
    for name, scores in runs.items():
        wn = w[name]
        for d, s in scores.items():
            out[d] = out.get(d, 0.0) + wn * s
    return out


@register_fusion("dbsf", weighted=True)
def dbsf(runs: Runs, weights: Weights = None, sizes: Mapping[str, int] | None = None) -> Scores:
    """Distribution-based score fusion as Qdrant defines it: each run normalised by mean ± 3 std
    (`norm_dbsf`), then summed (weighted when weights are given; a missing doc contributes 0). `sizes`: run name
    -> the depth its signal was asked for, for runs that came back shorter (their statistics count the zeros)."""
    sizes = sizes or {}
    return wsum({name: norm_dbsf(r, sizes.get(name)) for name, r in runs.items()}, weights=weights)


def adaptive_weights(runs: Runs, top: int = 1, floor: float = 0.25) -> dict[str, float]:
    """Query-adaptive weights from each run's score distribution on this query (in the spirit of
    query-performance predictors such as the normalised query commitment, Shtok et al. 2012): a run whose top
    scores stand out from the rest of its list (large gap between the mean of its `top` scores and the list
    mean, in list standard deviations) gets more weight; a flat run, which cannot tell its candidates apart,
    gets less. Weights average 1 over the runs and never fall below `floor` of that."""
    spread: dict[str, float] = {}
    for name, scores in runs.items():
        vals = sorted(scores.values(), reverse=True)
        if len(vals) < 2:
            spread[name] = 0.0
            continue
        mean = math.fsum(vals) / len(vals)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / len(vals))
        head = vals[: min(top, len(vals))]
        spread[name] = max(0.0, (math.fsum(head) / len(head) - mean) / max(std, _EPS))
    total = math.fsum(spread.values())
    if total <= 0:
        return dict.fromkeys(runs, 1.0)
    n = len(runs)
    return {name: max(floor, n * v / total) for name, v in spread.items()}


def get_method(name: str) -> Callable[..., Scores]:
    """The fusion function registered as ``name``; unknown names list the known ones."""
    return fusions.get(name)


def fuse(runs: Runs, method: str = "rrf", norm: str | None = None, weights: Weights = None, **kw) -> Scores:
    """Normalise each run with ``norm``, then fuse with ``method``; ``kw`` goes to the method (``k`` for rrf).

    ``method`` may carry its normalisation as ``"method:norm"`` (``"combsum:zscore"``), so a single
    ``SearchConfig.fusion`` string can name both.

    A single run is fused like several (rrf turns its scores into reciprocal ranks), so scores stay comparable
    across queries that lack a signal.
    """
    if ":" in method:  # "combsum:zscore" names a method and a normalisation in one string
        method, _, spec_norm = method.partition(":")
        if norm is not None and norm != spec_norm:
            raise ConfigError(f"fusion {method}:{spec_norm} conflicts with norm={norm!r}")
        norm = spec_norm
    fn = get_method(method)
    if weights is not None and not getattr(fn, "weighted", False):
        given = dict(weights) if isinstance(weights, Mapping) else weights
        if given:  # empty weights mean "none"
            raise ConfigError(f"fusion method {method!r} does not use weights; drop them or choose a weighted "
                              f"method: {', '.join(n for n in fusions.names() if getattr(fusions.get(n), 'weighted', False))}")
        weights = None
    runs = {name: r for name, r in runs.items() if r}
    if not runs:
        return {}
    if norm is not None:
        runs = normalize(runs, norm)
    if getattr(fn, "weighted", False):
        kw["weights"] = weights
    return fn(runs, **kw)


EXACT_SIGNALS = ("bm25", "instance")  # the query's own words matched; local features matched and verified


def fused_order(fused: Mapping[str, float], runs: Runs, exact: Sequence[str] = EXACT_SIGNALS) -> list[tuple[str, float]]:
    """``(doc_id, score)`` best first. Equal fused scores are broken by exact evidence, then by the number of runs
    that found the doc, then by doc id. Rank fusion ties often: a doc only BM25 finds by a rare word and an
    unrelated doc that is only the dense run's nearest neighbour both score 1/(k+1) under RRF. The exact match is
    the stronger evidence (dense similarity has no notion of "no match"), so it goes first."""
    exact_docs = {d for name in exact for d in runs.get(name, ())}

    def key(kv: tuple[str, float]):
        d, s = kv
        return (-round(s, 12), d not in exact_docs, -sum(d in r for r in runs.values()), d)

    return sorted(fused.items(), key=key)
