"""Dense vector signals: text query → text vectors (MiniLM), text/image query → visual vectors (CLIP).

Below the ANN threshold (`IndexConfig.ann_min_rows`) the vectors are held in memory and searched exactly
with one matrix product (measured on this machine kind: numpy exact search is ~30x faster than an un-indexed LanceDB scan).
Above it a `VectorIndex` (faiss IVF-SQ, store/vector_index.py) answers; both have the same `search` method.
"""

from __future__ import annotations

import numpy as np

from ..types import Query
from .base import Retriever, SignalContext, SignalRun, signals, top_k


class VectorMatrix:
    """Exact in-memory search over one vector column; rows align with unit_ids/asset_ids."""

    def __init__(self, unit_ids: np.ndarray, asset_ids: np.ndarray, vectors: np.ndarray, version: int):
        self.unit_ids = unit_ids
        self.asset_ids = asset_ids
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.version = version
        # Units without this signal (no text, or no pixels) were stored as zero vectors.
        self.present = np.abs(self.vectors).sum(axis=1) > 0
        self._pos = None  # pandas Index over unit_ids, built on the first `vectors_of`

    def vectors_of(self, unit_ids) -> np.ndarray:
        """The stored vectors of these units (zeros for an unknown id), for query refinement and rescoring."""
        import pandas as pd

        if self._pos is None:
            self._pos = pd.Index(self.unit_ids)
        pos = self._pos.get_indexer(pd.Index(np.asarray(unit_ids, dtype=object)))
        out = self.vectors[np.maximum(pos, 0)]
        out[pos < 0] = 0.0
        return out

    def search(self, q: np.ndarray, depth: int, mask: np.ndarray | None):
        s = self.vectors @ q.astype(np.float32)
        m = self.present if mask is None else (np.isin(self.unit_ids, mask) & self.present)
        idx = top_k(s, depth, m)
        return self.unit_ids[idx].tolist(), self.asset_ids[idx].tolist(), s[idx]


class DenseRetriever(Retriever):
    """One vector field searched with a query vector from `embed(query)`."""

    def __init__(self, name: str, field: str, embed, modalities: frozenset[str], matrix, fetch=None):
        self.name = name
        self.field = field
        self.embed = embed
        self.query_modalities = modalities
        self.matrix = matrix  # VectorMatrix (exact) or VectorIndex (approximate)
        self.fetch = fetch  # unit ids -> {id: row} from the store, for vectors an ANN index does not hand back

    def vectors_of(self, unit_ids) -> np.ndarray:
        """Stored vectors of `unit_ids` (rows aligned, zeros where missing): from memory when searched exactly,
        else read from the store."""
        if hasattr(self.matrix, "vectors_of"):
            return self.matrix.vectors_of(unit_ids)
        dim = int(getattr(self.matrix, "dim", 0))
        rows = self.fetch(list(unit_ids), ["id", self.field]) if self.fetch is not None else {}
        out = np.zeros((len(unit_ids), dim), np.float32)
        for i, u in enumerate(unit_ids):
            r = rows.get(u)
            if r is not None and r[self.field] is not None:
                out[i] = r[self.field]
        return out

    def score(self, query: Query, unit_ids, qvec: np.ndarray | None = None) -> np.ndarray:
        """This signal's score for given units (e.g. candidates another signal found): inner products."""
        q = self.embed(query) if qvec is None else qvec
        if q is None or not len(unit_ids):
            return np.zeros(len(unit_ids), np.float32)
        return self.vectors_of(unit_ids) @ np.asarray(q, np.float32)

    def retrieve_vector(self, name: str, q: np.ndarray, depth: int, mask=None) -> SignalRun:
        """A run for a given query vector (a refined one), under this signal's name or another."""
        uids, aids, s = self.matrix.search(np.asarray(q, np.float32), depth, mask)
        return SignalRun(name, uids, aids, np.asarray(s, np.float32))

    def retrieve(self, query: Query, depth: int, mask=None) -> SignalRun:
        q = self.embed(query)
        if q is None:
            return SignalRun(self.name, [], [], np.zeros(0, np.float32))
        uids, aids, s = self.matrix.search(q, depth, mask)
        return SignalRun(self.name, uids, aids, np.asarray(s, np.float32))


def text_embedder(folder):
    """query -> text vector (None for a query without text), with the index's text encoder."""

    def embed(q: Query):
        if not (q.text and q.text.strip()):
            return None
        return folder.encoder("text").encode_queries([q.text])[0]

    return embed


def visual_embedder(folder):
    """query -> visual vector: of its image (decoded and cropped once) or, without one, of its text."""

    def embed(q: Query):
        from ..imageio import load_query_image

        enc = folder.encoder("visual")
        if q.image is not None:
            return enc.encode_images([load_query_image(q.image, q.bbox)])[0]
        if q.text and q.text.strip():
            return enc.encode_queries([q.text])[0]
        return None

    return embed


@signals.register("dense")
def build_dense(ctx: SignalContext) -> DenseRetriever:
    return DenseRetriever("dense", "vec_text", text_embedder(ctx.folder), frozenset({"text"}), ctx.matrices["vec_text"],
                          fetch=ctx.folder.store.get_units)


@signals.register("visual")
def build_visual(ctx: SignalContext) -> DenseRetriever | None:
    if "vec_visual" not in ctx.matrices:
        return None
    return DenseRetriever("visual", "vec_visual", visual_embedder(ctx.folder), frozenset({"text", "image"}),
                          ctx.matrices["vec_visual"], fetch=ctx.folder.store.get_units)
