"""Candidate-prior normalisation (CPN) against hubness in dense signals.

Some units sit close to everything in an embedding space ("hubs", Radovanović et al. 2010) and win queries
they do not answer. BLiM's candidate prior normalisation (2025) estimates how often each candidate wins over
a sample of queries and divides that prior out of the query's distribution over candidates; in score space
that is subtracting temp * log(N * prior). The sample queries here are stored unit vectors themselves
(unit-unit neighbourhoods), drawn with a fixed seed, so the prior needs nothing but the index.
"""

from __future__ import annotations

import threading

import numpy as np

from .base import SignalRun

PRIORS = ("cpn",)


def candidate_prior(vectors: np.ndarray, queries: np.ndarray, *, query_rows: np.ndarray | None = None, k: int = 50,
                    temp: float = 0.05, smoothing: float = 1.0, chunk: int = 256) -> np.ndarray:
    """log(N * p(c)) for every row of `vectors`: p(c) is the mean over `queries` of the query's softmax (at
    `temp`) over its top-`k` candidates, smoothed by `smoothing` pseudo-wins spread evenly. A unit that wins
    no more than its share scores about 0; a hub scores > 0. When the queries are rows of `vectors`
    (`query_rows`), a query does not count itself."""
    v = np.asarray(vectors, np.float32)
    n = len(v)
    if n == 0:
        return np.zeros(0, np.float32)
    mass = np.zeros(n, np.float64)
    qs = np.asarray(queries, np.float32)
    k = max(1, min(k, n))
    for i in range(0, len(qs), chunk):
        s = qs[i:i + chunk] @ v.T
        if query_rows is not None:
            s[np.arange(len(s)), query_rows[i:i + chunk]] = -np.inf
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(s, idx, axis=1).astype(np.float64)
        z = np.exp((top - top.max(axis=1, keepdims=True)) / temp)
        z /= z.sum(axis=1, keepdims=True)
        np.add.at(mass, idx.ravel(), z.ravel())
    p = (mass + smoothing / n * max(len(qs), 1)) / (max(len(qs), 1) * (1.0 + smoothing))
    return np.log(np.maximum(p * n, 1e-12)).astype(np.float32)


def cpn_scores(scores: np.ndarray, log_prior: np.ndarray, *, weight: float = 1.0, temp: float = 0.05) -> np.ndarray:
    """Candidate-prior-normalised scores: s - weight * temp * log(N p(c)) (BLiM's CPN in score space)."""
    return (np.asarray(scores, np.float32) - np.float32(weight * temp) * np.asarray(log_prior, np.float32))


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False)) if n else np.zeros(0, np.int64)


class PriorCache:
    """Per dense signal, the candidate prior of every unit, computed on first use for one store version."""

    def __init__(self, samples: int = 2000, k: int = 50, temp: float = 0.05):
        self.samples, self.k, self.temp = samples, k, temp
        self._priors: dict[str, tuple[object, "object"]] = {}
        self._lock = threading.Lock()

    def prior_of(self, retriever, unit_ids) -> np.ndarray:
        """log(N p(c)) of `unit_ids` under `retriever`'s vectors (0 where a unit is unknown)."""
        import pandas as pd

        with self._lock:
            key = retriever.name
            got = self._priors.get(key)
            if got is None or got[0] is not retriever.matrix:
                m = retriever.matrix
                if hasattr(m, "vectors"):
                    vecs, ids = m.vectors[m.present], m.unit_ids[m.present]
                else:  # an ANN index: read the vectors of the live units from the store once
                    vecs = retriever.vectors_of(m.unit_ids[m.alive])
                    ids = m.unit_ids[m.alive]
                rows = sample_rows(len(vecs), self.samples)
                lp = candidate_prior(vecs, vecs[rows], query_rows=rows, k=self.k, temp=self.temp)
                got = (m, (pd.Index(ids), lp))
                self._priors[key] = got
        index, lp = got[1]
        pos = index.get_indexer(pd.Index(np.asarray(unit_ids, dtype=object)))
        out = np.where(pos >= 0, lp[np.maximum(pos, 0)], 0.0).astype(np.float32)
        return out


def normalise_runs(cache: PriorCache, retrievers, runs: list[SignalRun], *, weight: float = 1.0) -> list[SignalRun]:
    """Each dense run's scores with CPN applied and re-sorted; other runs unchanged."""
    out = []
    for r in runs:
        ret = retrievers.get(r.signal)
        if not len(r) or not hasattr(ret, "vectors_of"):
            out.append(r)
            continue
        s = cpn_scores(r.scores, cache.prior_of(ret, r.unit_ids), weight=weight, temp=cache.temp)
        order = np.argsort(-s, kind="stable")
        out.append(SignalRun(r.signal, [r.unit_ids[i] for i in order], [r.asset_ids[i] for i in order], s[order],
                             r.extra))
    return out
