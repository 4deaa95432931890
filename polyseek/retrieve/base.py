"""Retriever interface: one signal (keyword, dense text, visual, instance) over the index's units.

`retrieve` is the one required method. It returns a `SignalRun`: unit ids, their asset ids and the
signal's raw scores, best first. Fusion (fuse.py) and grouping work on these runs alone.

Signals register a builder by name (`@signals.register("bm25")`): given a `SignalContext` (the opened index
folder and what the searcher loaded for this store version) it returns a Retriever, or None when the index
cannot offer the signal (no visual encoder, instance search off). The searcher builds every registered signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..registry import Registry
from ..types import Query

signals: Registry = Registry("signal")  # name -> builder(SignalContext) -> Retriever | None


@dataclass
class SignalContext:
    """What a signal builder may use: the index folder (config, store, encoders, derived indexes), the store
    version, the keyword index and the vector matrices (field -> exact VectorMatrix or ANN VectorIndex)."""

    folder: Any
    version: int
    keyword: Any
    matrices: dict[str, Any]


@dataclass
class SignalRun:
    signal: str
    unit_ids: list[str]
    asset_ids: list[str]
    scores: np.ndarray  # raw scores, descending
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit id -> details (e.g. matched box)

    def __len__(self) -> int:
        return len(self.unit_ids)


class Retriever:
    name: ClassVar[str] = ""
    query_modalities: ClassVar[frozenset[str]] = frozenset({"text"})  # what a query must carry to use it

    def retrieve(self, query: Query, depth: int, mask: "np.ndarray | None" = None) -> SignalRun:  # required
        """The `depth` best units for `query`, best first; `mask`: the unit ids a filter allows (None: all)."""
        raise NotImplementedError

    def with_config(self, config) -> "Retriever":
        """This signal as a SearchConfig asks for it (its scoring parameters, e.g. BM25's k1 and b); a signal
        without parameters is itself."""
        return self

    def accepts(self, query: Query) -> bool:
        has = set()
        if query.text and query.text.strip():
            has.add("text")
        if query.image is not None:
            has.add("image")
        return bool(has & self.query_modalities)


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None, min_score: float | None = None):
    """Indices of the k best scores (descending), restricted to `mask` and to scores > min_score."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    keep = np.isfinite(scores[idx])
    if min_score is not None:
        keep &= scores[idx] > min_score
    return idx[keep]
