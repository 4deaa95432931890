"""The query pipeline: signals → fusion → rerank → hydrate.

1. Signals: each applicable registered retriever (retrieve/base.py `signals`) returns a `SignalRun` of unit ids
   with raw scores; a filter becomes a mask of allowed unit ids, read from the store once per query.
2. Fusion (registered in fuse.py) at asset level: each signal contributes its best unit's score for the asset,
   so a PDF whose page matches the keywords and whose figure matches the meaning gets credit from both; the
   unit shown is the one with the best unit-level fused score.
3. Rerank (registered in rerank/): reorders the top `rerank_depth` fused candidates; `none` by default.
4. Hydrate (hydrate.py): display rows, snippets and highlights → `Hit`s.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..config import SearchConfig
from ..errors import QueryError
from ..types import Hit, Query
from .base import Retriever, SignalRun
from .fuse import fuse, fused_order
from .hydrate import DISPLAY_COLUMNS, hydrate
from .rerank.base import Candidate, get_reranker


def fuse_runs(runs: dict[str, dict[str, float]], config: SearchConfig, single: bool = False) -> dict[str, float]:
    """Fuse per-signal runs. With `single` (the query used one signal) the signal's raw scores are kept, so
    `--signal bm25` shows BM25 scores; otherwise the fusion method applies even if only one signal found
    anything, so scores stay comparable across queries."""
    if not runs:
        return {}
    if single and len(runs) == 1:
        (only,) = runs.values()
        return dict(only)
    weights = dict(config.weights) or None
    kw = {"k": config.rrf_k} if config.fusion == "rrf" else {}
    return fuse(runs, method=config.fusion, weights=weights, **kw)


def group_runs(runs: Sequence[SignalRun]):
    """Per signal: asset -> best raw score, unit -> score; unit -> asset; unit -> details from the signals."""
    asset_best: dict[str, dict[str, float]] = {}
    unit_scores: dict[str, dict[str, float]] = {}
    unit_asset: dict[str, str] = {}
    extras: dict[str, dict] = {}
    for r in runs:
        ab: dict[str, float] = {}
        us: dict[str, float] = {}
        for uid, aid, s in zip(r.unit_ids, r.asset_ids, r.scores.tolist()):
            us[uid] = s
            unit_asset[uid] = aid
            if aid not in ab:
                ab[aid] = s
        asset_best[r.signal] = ab
        unit_scores[r.signal] = us
        for uid, ex in r.extra.items():
            extras.setdefault(uid, {}).update(ex)
    return asset_best, unit_scores, unit_asset, extras


def fused_candidates(runs: Sequence[SignalRun], config: SearchConfig, n: int, single: bool = False):
    """The `n` best fused candidates (asset- or unit-level, per `config.group`) and the signals' unit details."""
    asset_best, unit_scores, unit_asset, extras = group_runs(runs)
    unit_fused = fuse_runs(unit_scores, config, single)
    out: list[Candidate] = []
    if config.group:
        asset_fused = fuse_runs(asset_best, config, single)
        best_unit: dict[str, tuple[float, str]] = {}
        for uid, s in unit_fused.items():
            aid = unit_asset[uid]
            if aid not in best_unit or s > best_unit[aid][0] or (s == best_unit[aid][0] and uid < best_unit[aid][1]):
                best_unit[aid] = (s, uid)
        for aid, score in fused_order(asset_fused, asset_best)[:n]:
            signals = {name: float(ab[aid]) for name, ab in asset_best.items() if aid in ab}
            out.append(Candidate(aid, best_unit[aid][1], float(score), signals))
    else:
        for uid, score in fused_order(unit_fused, unit_scores)[:n]:
            signals = {name: float(us[uid]) for name, us in unit_scores.items() if uid in us}
            out.append(Candidate(unit_asset[uid], uid, float(score), signals))
    return out, extras


class Searcher:
    """The query pipeline over one opened index at one store version. Stateless between queries.

    `retrievers`: signal name -> Retriever; `store`: read methods (filters → allowed unit ids); `lookup`: unit
    ids -> display rows (an in-memory cache when small); `stemmer`: the keyword index's TermStemmer (its
    `terms(text)` and `word(w)` mark the snippet words that match the query)."""

    def __init__(self, retrievers: dict[str, Retriever], store, lookup: Callable, stemmer):
        self.retrievers = retrievers
        self.store = store
        self.lookup = lookup
        self.stemmer = stemmer

    def pick_signals(self, query: Query, config: SearchConfig) -> list[Retriever]:
        """The retrievers `config.signals` names (all by default) that can answer this query; unknown names are
        an error that lists the available ones."""
        names = config.signals or tuple(self.retrievers)
        unknown = [n for n in names if n not in self.retrievers]
        if unknown:
            raise QueryError(f"signal(s) {', '.join(unknown)} not available in this index; "
                             f"choose from: {', '.join(self.retrievers)}")
        return [self.retrievers[n] for n in names if self.retrievers[n].accepts(query)]

    def mask(self, query: Query):
        """Unit ids the query's filters allow (None: no filter)."""
        return self.store.unit_ids_matching(query.filters)

    def search(self, query: Query, config: SearchConfig) -> list[Hit]:
        chosen = self.pick_signals(query, config)
        if not chosen:
            if query.image is not None and not (query.text or "").strip():
                raise QueryError("searching by image needs a visual signal, and none is available in this index; "
                                 "re-index with a visual encoder (polyseek index --visual clip:MODEL ...)")
            return []
        mask = self.mask(query)
        depth = max(config.depth, query.k)
        runs = [r.retrieve(query, depth, mask=mask) for r in chosen]
        return self.assemble(query, runs, config, single=len(chosen) == 1)

    def assemble(self, query: Query, runs: list[SignalRun], config: SearchConfig, single: bool = False) -> list[Hit]:
        """Fusion → rerank → hydrate over signal runs already made (crop search pools its own)."""
        runs = [r for r in runs if len(r)]
        if not runs:
            return []
        reranker = get_reranker(config.rerank)
        n = query.k if config.rerank == "none" else max(query.k, config.rerank_depth)
        candidates, extras = fused_candidates(runs, config, n, single)
        if config.rerank != "none":
            candidates = reranker.rerank(query, candidates, lambda ids: self.lookup(ids, DISPLAY_COLUMNS))
        candidates = candidates[: query.k]
        rows = self.lookup([c.unit_id for c in candidates], DISPLAY_COLUMNS)
        terms = self.stemmer.terms(query.text) if query.text else set()
        return hydrate(candidates, rows, terms, self.stemmer.word, extras)
