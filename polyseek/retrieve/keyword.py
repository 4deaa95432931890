"""The `bm25` signal: BM25 over unit text, answered by the keyword index (store/keyword.py)."""

from __future__ import annotations

import numpy as np

from ..store.keyword import B, K1, KeywordIndex
from ..types import Query
from .base import Retriever, SignalContext, SignalRun, signals, top_k


class BM25Retriever(Retriever):
    name = "bm25"
    query_modalities = frozenset({"text"})

    def __init__(self, index: KeywordIndex, k1: float = K1, b: float = B):
        self.index = index
        self.k1, self.b = float(k1), float(b)

    def with_config(self, config) -> "BM25Retriever":
        """BM25 with the config's k1 and b (`SearchConfig.bm25_k1`, `bm25_b`): a view over the same index."""
        k1, b = float(config.bm25_k1), float(config.bm25_b)
        return self if (k1, b) == (self.k1, self.b) else BM25Retriever(self.index, k1, b)

    def retrieve(self, query: Query, depth: int, mask=None) -> SignalRun:
        s = self.index.scores(query.text or "", k1=self.k1, b=self.b)
        if s is None:
            return SignalRun(self.name, [], [], np.zeros(0, np.float32))
        m = None if mask is None else np.isin(self.index.unit_ids, mask)
        idx = top_k(s, depth, m, min_score=0.0)
        return SignalRun(self.name, self.index.unit_ids[idx].tolist(), self.index.asset_ids[idx].tolist(),
                         s[idx].astype(np.float32))

    def score(self, query: Query, unit_ids) -> np.ndarray:
        """BM25 scores of given units (e.g. candidates another signal found); 0 for units it does not know."""
        return self.index.gather(self.index.scores(query.text or "", k1=self.k1, b=self.b), unit_ids)

    def retrieve_weighted(self, name: str, terms: dict[str, float], depth: int, mask=None) -> SignalRun:
        """A run for a weighted bag of stemmed terms (an RM3-expanded query, or an asset's own terms): the
        weighted sum of each term's BM25 scores."""
        s = self.index.weighted_scores(terms, k1=self.k1, b=self.b)
        if s is None:
            return SignalRun(name, [], [], np.zeros(0, np.float32))
        m = None if mask is None else np.isin(self.index.unit_ids, mask)
        idx = top_k(s, depth, m, min_score=0.0)
        return SignalRun(name, self.index.unit_ids[idx].tolist(), self.index.asset_ids[idx].tolist(),
                         s[idx].astype(np.float32))


@signals.register("bm25")
def build_bm25(ctx: SignalContext) -> BM25Retriever:
    return BM25Retriever(ctx.keyword)
