"""The query pipeline: signals → fusion → rerank → hydrate.

1. Signals: each applicable registered retriever (retrieve/base.py `signals`) returns a `SignalRun` of unit ids
   with raw scores; a filter becomes a mask of allowed unit ids, read from the store once per query.
2. Fusion (registered in fuse.py) at asset level: each signal contributes its best unit's score for the asset,
   so a PDF whose page matches the keywords and whose figure matches the meaning gets credit from both; the
   unit shown is the one with the best unit-level fused score.
3. Rerank (registered in rerank/): reorders the top `rerank_depth` fused candidates; `none` by default.
4. Hydrate (hydrate.py): display rows, snippets and highlights → `Hit`s.

Around them, the adaptive steps of issue 11, each off unless its config asks: a router (route.py) picks the
signals and the granularity per query (on: `route="auto"`); test-time refinement (refine.py) and candidate-prior
normalisation (calibrate.py) rework the signal runs before fusion; fusion may weight each signal by how much its
top stands out on this query (fuse.adaptive_weights); a dynamic cutoff (cutoff.py) trims the hits.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from ..config import SearchConfig
from ..errors import QueryError
from ..types import Hit, Query
from .base import Retriever, SignalRun
from .fuse import adaptive_weights, fuse, fused_order
from .hydrate import DISPLAY_COLUMNS, hydrate
from .rerank.base import Candidate, get_reranker


def fuse_runs(runs: dict[str, dict[str, float]], config: SearchConfig, single: bool = False,
              sizes: dict[str, int] | None = None) -> dict[str, float]:
    """Fuse per-signal runs. With `single` (the query used one signal) the signal's raw scores are kept, so
    `--signal bm25` shows BM25 scores; otherwise the fusion method applies even if only one signal found
    anything, so scores stay comparable across queries. `sizes`: signal -> depth asked, for signals that found
    fewer units (DBSF counts their missing scores as the zeros they are)."""
    if not runs:
        return {}
    if single and len(runs) == 1:
        (only,) = runs.values()
        return dict(only)
    weights = dict(config.weights) or None
    if config.adaptive:
        weights = {n: (weights or {}).get(n, 1.0) * w for n, w in adaptive_weights(runs).items()}
    kw = {"k": config.rrf_k} if config.fusion == "rrf" else {}
    if config.fusion == "dbsf" and sizes:
        kw["sizes"] = {n: d for n, d in sizes.items() if n in runs}
    return fuse(runs, method=config.fusion, weights=weights, **kw)


def group_runs(runs: Sequence[SignalRun], key: Callable[[str, str], str] | None = None):
    """Per signal: group -> best raw score, unit -> score; unit -> group; unit -> details from the signals. A
    group is the unit's asset, or `key(unit_id, asset_id)` (its page, at page granularity)."""
    asset_best: dict[str, dict[str, float]] = {}
    unit_scores: dict[str, dict[str, float]] = {}
    unit_asset: dict[str, str] = {}
    extras: dict[str, dict] = {}
    for r in runs:
        ab: dict[str, float] = {}
        us: dict[str, float] = {}
        for uid, aid, s in zip(r.unit_ids, r.asset_ids, r.scores.tolist()):
            us[uid] = s
            g = aid if key is None else key(uid, aid)
            unit_asset[uid] = g
            if g not in ab:
                ab[g] = s
        asset_best[r.signal] = ab
        unit_scores[r.signal] = us
        for uid, ex in r.extra.items():
            extras.setdefault(uid, {}).update(ex)
    return asset_best, unit_scores, unit_asset, extras


def fused_candidates(runs: Sequence[SignalRun], config: SearchConfig, n: int, single: bool = False,
                     granularity: str | None = None, depth: int | None = None):
    """The `n` best fused candidates (asset- or unit-level, per `config.group`, or per the router's
    `granularity`: page groups by PDF page, passage/block/region keep units apart) and the signals' unit details.
    `depth`: units each signal was asked for; a signal that returned fewer ran out of matches."""
    group = config.group if granularity is None else granularity in ("document", "image", "page")
    key = None
    if granularity == "page":
        from .route import page_key

        key = page_key
    asset_best, unit_scores, unit_asset, extras = group_runs(runs, key)
    real_asset = {u: a for r in runs for u, a in zip(r.unit_ids, r.asset_ids)}
    sizes = {r.signal: depth for r in runs if depth and len(r) < depth}
    unit_fused = fuse_runs(unit_scores, config, single, sizes)
    out: list[Candidate] = []
    if group:
        asset_fused = fuse_runs(asset_best, config, single, sizes)
        best_unit: dict[str, tuple[float, str]] = {}
        for uid, s in unit_fused.items():
            aid = unit_asset[uid]
            if aid not in best_unit or s > best_unit[aid][0] or (s == best_unit[aid][0] and uid < best_unit[aid][1]):
                best_unit[aid] = (s, uid)
        for aid, score in fused_order(asset_fused, asset_best)[:n]:
            signals = {name: float(ab[aid]) for name, ab in asset_best.items() if aid in ab}
            uid = best_unit[aid][1]
            out.append(Candidate(real_asset[uid], uid, float(score), signals))
    else:
        for uid, score in fused_order(unit_fused, unit_scores)[:n]:
            signals = {name: float(us[uid]) for name, us in unit_scores.items() if uid in us}
            out.append(Candidate(real_asset[uid], uid, float(score), signals))
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
        self.tokenize = stemmer.tokens  # text -> stemmed terms in order (query refinement, more like this)
        self.kinds: dict[str, int] = {}  # unit kind -> count, for the router
        self.priors = None  # calibrate.PriorCache, made on the first query that asks for a candidate prior

    def pick_signals(self, query: Query, config: SearchConfig) -> list[Retriever]:
        """The retrievers `config.signals` names (all by default) that can answer this query; unknown names are
        an error that lists the available ones."""
        names = config.signals or tuple(self.retrievers)
        unknown = [n for n in names if n not in self.retrievers]
        if unknown:
            raise QueryError(f"signal(s) {', '.join(unknown)} not available in this index; "
                             f"choose from: {', '.join(self.retrievers)}")
        return [self.retrievers[n].with_config(config) for n in names if self.retrievers[n].accepts(query)]

    def mask(self, query: Query):
        """Unit ids the query's filters allow (None: no filter)."""
        return self.store.unit_ids_matching(query.filters)

    def search(self, query: Query, config: SearchConfig) -> list[Hit]:
        route = None
        if config.route not in ("auto", "off"):
            raise QueryError(f"unknown route mode {config.route!r}; choose from: auto, off")
        if config.route == "auto":
            from .route import route_query

            usable = [n for n in (config.signals or self.retrievers) if n in self.retrievers
                      and self.retrievers[n].accepts(query)]
            route = route_query(query, usable, self.kinds)
            if not config.signals:
                weights = {**route.weights, **dict(config.weights)}
                config = dataclasses.replace(config, signals=route.signals, weights=tuple(sorted(weights.items())))
        if config.rerank != "none":  # a bad reranker spec, or one that cannot judge this query, fails before any work
            self.reranker(config).check(query)
        chosen = self.pick_signals(query, config)
        if not chosen:
            if query.image is not None and not (query.text or "").strip():
                raise QueryError("searching by image needs a visual signal, and none is available in this index; "
                                 "re-index with a visual encoder (polyseek index --visual clip:MODEL ...)")
            return []
        mask = self.mask(query)
        depth = max(config.depth, query.k)
        runs = [r.retrieve(query, depth, mask=mask) for r in chosen]
        runs = self.adapt(query, runs, config, mask)
        hits = self.assemble(query, runs, config, single=len(chosen) == 1,
                             granularity=route.granularity if route is not None else None)
        if config.cutoff not in (None, "none"):
            hits = self.cut(hits, runs, config)
        if route is not None:
            rd = {**route.to_dict(), "signals": [r.name for r in chosen]}
            for h in hits:
                h.extra["route"] = rd
        return hits

    def adapt(self, query: Query, runs: list[SignalRun], config: SearchConfig, mask=None) -> list[SignalRun]:
        """Test-time refinement (refine.py) and candidate-prior normalisation (calibrate.py) of first-pass runs."""
        if config.refine:
            from .refine import refine_runs

            runs, _ = refine_runs(self, query, runs, config, mask)
        if config.prior:
            from .calibrate import PRIORS, PriorCache, normalise_runs

            if config.prior not in PRIORS:
                raise QueryError(f"unknown prior {config.prior!r}; choose from: {', '.join(PRIORS)}")
            if self.priors is None:
                self.priors = PriorCache()
            runs = normalise_runs(self.priors, self.retrievers, runs, weight=config.prior_weight)
        return runs

    def reranker(self, config: SearchConfig):
        """The reranker `config.rerank` names, built once per spec (rerank/base.py `get_reranker`)."""
        inst = self.retrievers.get("instance")
        return get_reranker(config.rerank, budget_ms=config.rerank_budget_ms,
                            instance_index=getattr(inst, "index", None))

    def cut(self, hits: list[Hit], runs: list[SignalRun], config: SearchConfig) -> list[Hit]:
        """Dynamic cutoff (cutoff.py): keep the hits that stand out; each hit says its `confidence`."""
        from .cutoff import AUTO_MIN_Z, confidence, keep_count, parse_cutoff, signal_stats

        mode, ratio = parse_cutoff(config.cutoff)
        if mode == "none" or not hits:
            return hits
        stats = signal_stats({r.signal: r.scores.tolist() for r in runs if len(r)})
        # after a rerank the first-pass scores are what the signals' distributions describe
        conf = [confidence(h.signals, stats) for h in hits]
        evidence = max((z for _, _, z in stats.values()), default=0.0) if mode == "auto" else None
        n = keep_count(conf, ratio=ratio, max_k=config.cutoff_max, evidence=evidence, min_z=AUTO_MIN_Z)
        for h, c in zip(hits, conf):
            h.extra["confidence"] = round(c, 4)
        return hits[:n]

    def assemble(self, query: Query, runs: list[SignalRun], config: SearchConfig, single: bool = False,
                 granularity: str | None = None) -> list[Hit]:
        """Fusion → rerank → hydrate over signal runs already made (crop search pools its own)."""
        runs = [r for r in runs if len(r)]
        if not runs:
            return []
        reranker = self.reranker(config)
        n = query.k if config.rerank == "none" else max(query.k, config.rerank_depth)
        candidates, extras = fused_candidates(runs, config, n, single, granularity, depth=max(config.depth, query.k))
        if config.rerank != "none":
            head = reranker.rerank(query, candidates[: config.rerank_depth],
                                   lambda ids: self.lookup(ids, DISPLAY_COLUMNS))
            rest = candidates[config.rerank_depth:]
            floor = min((c.score for c in head), default=0.0)
            candidates = head + [dataclasses.replace(c, score=floor - 1e-3 * (i + 1),
                                                     signals={**c.signals, "fused": c.score})
                                 for i, c in enumerate(rest)]
        candidates = candidates[: query.k]
        rows = self.lookup([c.unit_id for c in candidates], DISPLAY_COLUMNS)
        terms = self.stemmer.terms(query.text) if query.text else set()
        return hydrate(candidates, rows, terms, self.stemmer.word, extras)
