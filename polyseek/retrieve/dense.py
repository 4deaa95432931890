"""Dense vector signals: text query → text vectors (MiniLM), text/image query → visual vectors (CLIP).

Below the ANN threshold (`IndexConfig.ann_min_rows`) the vectors are held in memory and searched exactly
with one matrix product (MEASURED.md: numpy exact search is ~30x faster than an un-indexed store scan).
Above it a `VectorIndex` (faiss IVF-SQ, vector_index.py) answers; both have the same `search` method.
"""

from __future__ import annotations

import numpy as np

from ..types import Query
from .base import Retriever, SignalRun
from .keyword import top_k


class VectorMatrix:
    """Exact in-memory search over one vector column; rows align with unit_ids/asset_ids."""

    def __init__(self, unit_ids: np.ndarray, asset_ids: np.ndarray, vectors: np.ndarray, version: int):
        self.unit_ids = unit_ids
        self.asset_ids = asset_ids
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.version = version
        # Units without this signal (no text, or no pixels) were stored as zero vectors.
        self.present = np.abs(self.vectors).sum(axis=1) > 0

    def search(self, q: np.ndarray, depth: int, mask: np.ndarray | None):
        s = self.vectors @ q.astype(np.float32)
        m = self.present if mask is None else (np.isin(self.unit_ids, mask) & self.present)
        idx = top_k(s, depth, m)
        return self.unit_ids[idx].tolist(), self.asset_ids[idx].tolist(), s[idx]


class DenseRetriever(Retriever):
    """One vector field searched with a query vector from `embed(query)`."""

    def __init__(self, name: str, field: str, embed, modalities: frozenset[str], matrix):
        self.name = name
        self.field = field
        self.embed = embed
        self.query_modalities = modalities
        self.matrix = matrix  # VectorMatrix (exact) or VectorIndex (approximate)

    def retrieve(self, query: Query, depth: int, mask=None, where=None) -> SignalRun:
        q = self.embed(query)
        if q is None:
            return SignalRun(self.name, [], [], np.zeros(0, np.float32))
        uids, aids, s = self.matrix.search(q, depth, mask)
        return SignalRun(self.name, uids, aids, np.asarray(s, np.float32))
