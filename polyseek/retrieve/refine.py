"""Query refinement at test time: pseudo-relevance feedback (RM3, Rocchio) and guided query refinement (GQR).

The first three functions are pure (term bags and vectors in, a refined query out). `refine_runs` applies
the methods a `SearchConfig` names to one query's first-pass runs, using the retrievers' `score`,
`vectors_of` and `retrieve_*` capabilities, and returns runs under the same signal names, so fusion and
explanation (`Hit.signals`) are unchanged. Nothing is trained; each method does a bounded amount of work.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors import UnknownNameError
from .base import SignalRun

REFINERS = ("rm3", "rocchio", "gqr")


def rm3_terms(query_terms: Sequence[str], feedback: Iterable[tuple[Sequence[str], float]], *, fb_terms: int = 10,
              orig_weight: float = 0.5) -> dict[str, float]:
    """RM3 (relevance model 3; Lavrenko & Croft 2001, Abdul-Jaleel et al. 2004, as Anserini implements it):
    P(t|R) = sum_d P(d|q) tf(t,d)/|d| over the feedback docs, with P(d|q) their first-pass scores normalised to
    sum 1; keep the `fb_terms` best terms and interpolate with the original query's term distribution:
    w(t) = orig_weight * P(t|q) + (1 - orig_weight) * P(t|R). Returns term -> weight (sums to 1)."""
    q = Counter(query_terms)
    fb = [(Counter(toks), max(float(s), 0.0)) for toks, s in feedback if len(toks)]
    total = math.fsum(s for _, s in fb)
    rel: dict[str, float] = {}
    if total > 0:
        for tf, s in fb:
            n = sum(tf.values())
            pd = s / total
            for t, c in tf.items():
                rel[t] = rel.get(t, 0.0) + pd * c / n
    top = sorted(rel.items(), key=lambda kv: (-kv[1], kv[0]))[:fb_terms]
    z = math.fsum(w for _, w in top)
    out: dict[str, float] = {}
    nq = sum(q.values())
    for t, c in q.items():
        out[t] = orig_weight * c / nq if nq else 0.0
    if z > 0:
        for t, w in top:
            out[t] = out.get(t, 0.0) + (1.0 - orig_weight) * w / z
    elif nq:  # no feedback: the original query alone
        out = {t: c / nq for t, c in q.items()}
    return out


def rocchio(q: np.ndarray, feedback: np.ndarray, *, alpha: float = 1.0, beta: float = 0.5,
            weights: np.ndarray | None = None) -> np.ndarray:
    """Rocchio's relevance feedback (Rocchio 1971), pseudo-relevance form for dense retrieval (Li et al. 2021,
    "Pseudo relevance feedback with deep language models and dense retrievers"): q' = alpha q + beta * mean of the
    feedback vectors (weighted when `weights` is given), unit-normalised when q is."""
    q = np.asarray(q, np.float32)
    fb = np.asarray(feedback, np.float32)
    if fb.ndim != 2 or not len(fb):
        return q
    w = np.ones(len(fb), np.float32) if weights is None else np.asarray(weights, np.float32)
    centroid = (w[:, None] * fb).sum(axis=0) / max(float(w.sum()), 1e-9)
    out = alpha * q + beta * centroid
    qn = float(np.linalg.norm(q))
    on = float(np.linalg.norm(out))
    if qn > 0 and on > 0:
        out = out * (qn / on)
    return out.astype(np.float32)


def _softmax(x: np.ndarray, temp: float) -> np.ndarray:
    z = (x - x.max()) / max(temp, 1e-9)
    e = np.exp(z)
    return e / e.sum()


def gqr(q: np.ndarray, cand: np.ndarray, guide: np.ndarray, *, steps: int = 10, lr: float = 0.5,
        temp: float = 0.05, guide_temp: float | None = None, consensus: bool = True) -> np.ndarray:
    """Guided query refinement (GQR; Uzan et al. 2025, "Guided Query Refinement: multimodal hybrid retrieval
    with test-time optimization"): move the primary retriever's query vector `q` so its softmax distribution
    over the candidate pool (`cand`, one row per candidate) matches a target built from a complementary
    retriever's scores on the same pool (`guide`): the average of the two distributions (`consensus`), or the
    guide's alone. Gradient descent on KL(target || p(q)), whose gradient is (1/temp) * cand^T (p(q) - target);
    `steps` bounded iterations, no training. The guide's scores are z-scored first, so any score scale works."""
    q0 = np.asarray(q, np.float32)
    cand = np.asarray(cand, np.float32)
    g = np.asarray(guide, np.float64)
    if len(cand) < 2 or steps <= 0:
        return q0
    std = g.std()
    if not std > 0:
        return q0  # a guide that cannot tell the candidates apart gives no direction
    gz = (g - g.mean()) / std
    s0 = cand.astype(np.float64) @ q0.astype(np.float64)
    s0z_scale = s0.std() if s0.std() > 0 else 1.0
    # The guide's temperature in its z units matching the primary's spread, so neither distribution dominates.
    gt = guide_temp if guide_temp is not None else temp / s0z_scale
    target = _softmax(gz, gt)
    if consensus:
        target = 0.5 * (target + _softmax(s0, temp))
    x = q0.astype(np.float64)
    c64 = cand.astype(np.float64)
    for _ in range(steps):
        p = _softmax(c64 @ x, temp)
        grad = c64.T @ (p - target) / temp
        x = x - lr * temp * grad  # step scaled by temp: a step of lr in score units whatever the temperature
    n0 = float(np.linalg.norm(q0))
    nx = float(np.linalg.norm(x))
    if n0 > 0 and nx > 0:
        x = x * (n0 / nx)
    return x.astype(np.float32)


# ---------------------------------------------------------------------------- applying to one query


def check_refiners(names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    bad = [n for n in names if n not in REFINERS]
    if bad:
        raise UnknownNameError(f"unknown refinement {', '.join(bad)!r}; choose from: {', '.join(REFINERS)}")
    return names


def refine_runs(searcher, query, runs: list[SignalRun], config, mask=None) -> tuple[list[SignalRun], dict]:
    """Apply `config.refine` (in order rm3, rocchio, gqr) to one query's first-pass runs. Returns the new runs
    (same signal names) and a description of what was done, for the hit's `route`/explanations."""
    names = check_refiners(config.refine)
    if not names:
        return runs, {}
    by = {r.signal: r for r in runs}
    depth = max(config.depth, query.k)
    done: dict[str, dict] = {}
    rets = {n: r.with_config(config) for n, r in searcher.retrievers.items()}
    fused = fused_feedback(runs, config) if config.fb_source == "fused" else None

    def feedback_of(signal: str) -> tuple[list[str], list[float]]:
        """The feedback units and their weights: the fused first pass (better than either signal alone, and the
        same set for every signal), or the signal's own top units."""
        if fused is not None:
            ids = list(fused)[: config.fb_docs]
            return ids, [fused[u] for u in ids]
        r = by[signal]
        n = min(config.fb_docs, len(r))
        return list(r.unit_ids[:n]), r.scores[:n].tolist()

    if config.fb_source not in ("fused", "own"):
        raise UnknownNameError(f"unknown feedback source {config.fb_source!r}; choose from: fused, own")
    if "rm3" in names and "bm25" in by and len(by["bm25"]) and query.text:
        ids, ws = feedback_of("bm25")
        rows = searcher.lookup(ids, ["id", "text"])
        tok = searcher.tokenize
        feedback = [(tok(rows[u]["text"] or ""), float(s)) for u, s in zip(ids, ws) if u in rows]
        terms = rm3_terms(tok(query.text), feedback, fb_terms=config.fb_terms, orig_weight=config.fb_orig_weight)
        by["bm25"] = rets["bm25"].retrieve_weighted("bm25", terms, depth, mask)
        done["rm3"] = {"terms": dict(sorted(terms.items(), key=lambda kv: -kv[1])[: config.fb_terms])}
    qvecs: dict[str, np.ndarray] = {}
    for name in ("dense", "visual"):
        if name in by and len(by[name]) and hasattr(rets.get(name), "embed"):
            qv = rets[name].embed(query)
            if qv is not None:
                qvecs[name] = np.asarray(qv, np.float32)
    if "rocchio" in names:
        for name, qv in list(qvecs.items()):
            if name == "visual" and query.image is None:
                continue  # text-to-image feedback from images drifts off the text's meaning
            ids, _ = feedback_of(name)
            fb = rets[name].vectors_of(ids)
            qvecs[name] = rocchio(qv, fb, beta=config.rocchio_beta)
            by[name] = rets[name].retrieve_vector(name, qvecs[name], depth, mask)
            done.setdefault("rocchio", {})[name] = len(ids)
    if "gqr" in names:
        for name, qv in list(qvecs.items()):
            guides = [g for g in by if g != name and len(by[g]) and hasattr(rets.get(g), "score")]
            if not guides:
                continue
            pool = list(dict.fromkeys([*by[name].unit_ids[: config.gqr_pool],
                                       *(u for g in guides for u in by[g].unit_ids[: config.gqr_pool])]))
            guide = np.zeros(len(pool))
            for g in guides:
                s = (rets[g].score(query, pool) if g != "visual" or g not in qvecs
                     else rets[g].score(query, pool, qvecs[g]))
                s = np.asarray(s, np.float64)
                guide += (s - s.mean()) / (s.std() or 1.0)
            cand = rets[name].vectors_of(pool)
            qvecs[name] = gqr(qv, cand, guide, steps=config.gqr_steps, temp=config.gqr_temp)
            by[name] = rets[name].retrieve_vector(name, qvecs[name], depth, mask)
            done.setdefault("gqr", {})[name] = {"pool": len(pool), "guides": guides}
    return [by[r.signal] for r in runs], done


def fused_feedback(runs: list[SignalRun], config) -> dict[str, float]:
    """Unit id -> fused first-pass score (RRF over the runs, unit level), best first: the feedback set of
    pseudo-relevance feedback taken from the hybrid ranking rather than one signal's."""
    from .fuse import rrf

    scores = rrf({r.signal: dict(zip(r.unit_ids, r.scores.tolist())) for r in runs if len(r)}, k=config.rrf_k)
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))


def weights_summary(weights: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 3) for k, v in weights.items()}
