"""More like this: the assets nearest to one indexed asset, by every signal it has (MUSE, 2025: with good
embeddings, plain cosine over stored vectors is a strong first stage for item-to-item retrieval).

Each signal gets a query made from the asset itself: the mean of its units' stored vectors for each dense
field (text, visual), its most frequent terms for BM25, and its pixels for the local-feature signal. The runs
are fused as any search's are; the asset itself is left out.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ..errors import NotFoundError, QueryError
from ..types import Query
from .base import SignalRun

MAX_TERMS = 30


def mean_vector(vectors) -> np.ndarray | None:
    """The unit-normalised mean of the non-zero rows (units that carry this field), or None."""
    v = np.asarray([x for x in vectors if x is not None], np.float32)
    if not len(v):
        return None
    v = v[np.abs(v).sum(axis=1) > 0]
    if not len(v):
        return None
    m = v.mean(axis=0)
    n = float(np.linalg.norm(m))
    return m / n if n > 0 else None


def top_terms(tokens: list[str], n: int = MAX_TERMS) -> dict[str, float]:
    """The `n` most frequent terms, weighted by frequency (sum 1)."""
    c = Counter(tokens).most_common(n)
    tot = sum(v for _, v in c)
    return {t: v / tot for t, v in c} if tot else {}


def similar_runs(searcher, store, asset: dict, depth: int, mask=None) -> tuple[list[SignalRun], list[str]]:
    """One run per signal the asset has, without the asset's own units. Also returns the signals used."""
    rets = searcher.retrievers
    fields = {name: r.field for name, r in rets.items() if hasattr(r, "field")}
    units = store.units_of_asset(asset["id"], ["id", "kind", "text", *fields.values()])
    if not units:
        raise NotFoundError(f"asset {asset['id']!r} has no units")
    runs: list[SignalRun] = []
    extra = depth + len(units)
    for name, field in fields.items():
        q = mean_vector([u[field] for u in units])
        if q is not None:
            runs.append(rets[name].retrieve_vector(name, q, extra, mask))
    text = " ".join(u["text"] or "" for u in units)[:20_000]
    if "bm25" in rets and text.strip():
        terms = top_terms(searcher.tokenize(text))
        if terms:
            runs.append(rets["bm25"].retrieve_weighted("bm25", terms, extra, mask))
    path = asset.get("path") or ""
    if "instance" in rets and asset.get("type") == "image" and os.path.isfile(path):
        try:
            runs.append(rets["instance"].retrieve(Query(image=path), extra, mask=mask))
        except QueryError:
            pass  # no distinctive detail in the image: the other signals still answer
    own = {u["id"] for u in units}
    out = []
    for r in runs:
        keep = [i for i, (u, a) in enumerate(zip(r.unit_ids, r.asset_ids)) if u not in own and a != asset["id"]]
        out.append(SignalRun(r.signal, [r.unit_ids[i] for i in keep], [r.asset_ids[i] for i in keep],
                             r.scores[keep] if len(keep) else np.zeros(0, np.float32),
                             {u: e for u, e in r.extra.items() if u not in own}))
    if not any(len(r) for r in out):
        return out, [r.signal for r in out]
    return out, [r.signal for r in out if len(r)]


def similar_hits(searcher, asset: dict, *, k: int = 10, filters=None, config=None) -> list:
    """Hits like `asset` (see `similar_runs`), fused and hydrated by the query pipeline; each says which asset it is
    similar to and through which signals."""
    from ..config import SearchConfig
    from ..store.sql import check_filters
    from ..types import Filters

    config = config or SearchConfig()
    q = Query(k=k, filters=filters or Filters())
    check_filters(q.filters)
    runs, used = similar_runs(searcher, searcher.store, asset, max(config.depth, k), searcher.mask(q))
    hits = searcher.assemble(q, runs, config)
    for h in hits:
        h.extra["similar_to"] = {"asset": asset["id"], "signals": used}
    return hits
