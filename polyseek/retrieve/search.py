"""Answer a query: run each applicable signal, fuse per asset, pick each asset's best unit, build Hits.

Fusion happens at asset level (each signal contributes its best unit's score for the asset), so a PDF
whose page matches the keywords and whose figure matches the meaning gets credit from both; the unit
shown first is the one with the best unit-level fused score.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

import numpy as np

from ..config import SearchConfig
from ..errors import QueryError
from ..types import AssetRef, Hit, Query, UnitRef
from .base import Retriever, SignalRun
from .fuse import fuse

_WORD = re.compile(r"\w+", re.UNICODE)
DISPLAY_COLUMNS = ["id", "asset_id", "kind", "text", "page", "bbox", "t0", "t1", "asset_type", "path"]


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
    """Per signal: asset -> best raw score, asset -> best unit, unit -> score."""
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


class Searcher:
    """Runs signals and fusion over one opened index. Stateless between queries."""

    def __init__(self, retrievers: dict[str, Retriever], store, mask_for, stem_query, lookup=None):
        self.retrievers = retrievers
        self.store = store
        self.lookup = lookup or store.get_units  # unit ids -> display rows (an in-memory cache when small)
        self.mask_for = mask_for  # where-clause -> boolean row mask for in-memory signals (or None)
        self.stem_query = stem_query  # text -> set of stemmed query terms, for highlighting
        self.stem_word = lambda w: next(iter(stem_query(w)), None)  # one word -> its term or None

    def pick_signals(self, query: Query, config: SearchConfig) -> list[Retriever]:
        names = config.signals or tuple(self.retrievers)
        unknown = [n for n in names if n not in self.retrievers]
        if unknown:
            raise QueryError(f"signal(s) {', '.join(unknown)} not available in this index; "
                             f"choose from: {', '.join(self.retrievers)}")
        chosen = [self.retrievers[n] for n in names if self.retrievers[n].accepts(query)]
        return chosen

    def search(self, query: Query, config: SearchConfig, where: str | None = None) -> list[Hit]:
        chosen = self.pick_signals(query, config)
        if not chosen:
            if query.image is not None and not (query.text or "").strip():
                raise QueryError("searching by image needs a visual signal, and none is available in this index; "
                                 "re-index with a visual encoder (polyseek index --visual clip:MODEL ...)")
            return []
        mask = self.mask_for(where) if where else None
        depth = max(config.depth, query.k)
        runs = [r.retrieve(query, depth, mask=mask, where=where) for r in chosen]
        return self.assemble(query, runs, config, single=len(chosen) == 1)

    def assemble(self, query: Query, runs: list[SignalRun], config: SearchConfig, single: bool = False) -> list[Hit]:
        runs = [r for r in runs if len(r)]
        if not runs:
            return []
        asset_best, unit_scores, unit_asset, extras = group_runs(runs)
        unit_fused = fuse_runs(unit_scores, config, single)
        if config.group:
            asset_fused = fuse_runs(asset_best, config, single)
            best_unit: dict[str, tuple[float, str]] = {}
            for uid, s in unit_fused.items():
                aid = unit_asset[uid]
                if aid not in best_unit or s > best_unit[aid][0] or (s == best_unit[aid][0] and uid < best_unit[aid][1]):
                    best_unit[aid] = (s, uid)
            order = sorted(asset_fused.items(), key=lambda kv: (-kv[1], kv[0]))[: query.k]
            picks = [(aid, score, best_unit[aid][1]) for aid, score in order]
        else:
            order = sorted(unit_fused.items(), key=lambda kv: (-kv[1], kv[0]))[: query.k]
            picks = [(unit_asset[uid], score, uid) for uid, score in order]
        rows = self.lookup([u for _, _, u in picks], DISPLAY_COLUMNS)
        terms = self.stem_query(query.text) if query.text else set()
        pattern = term_pattern(terms)
        hits = []
        for rank, (aid, score, uid) in enumerate(picks, start=1):
            row = rows.get(uid)
            if row is None:  # deleted between retrieval and lookup (a concurrent index run)
                continue
            if config.group:
                signals = {name: float(ab[aid]) for name, ab in asset_best.items() if aid in ab}
            else:
                signals = {name: float(us[uid]) for name, us in unit_scores.items() if uid in us}
            snippet, spans = make_snippet(row["text"] or "", terms, self.stem_word, pattern=pattern)
            t = (row["t0"], row["t1"]) if row["t0"] is not None else None
            hits.append(Hit(
                rank=len(hits) + 1, score=float(score),
                asset=AssetRef(id=aid, path=row["path"], type=row["asset_type"]),
                unit=UnitRef(id=uid, kind=row["kind"], page=row["page"],
                             bbox=tuple(row["bbox"]) if row["bbox"] is not None else None, time=t),
                snippet=snippet, highlights=spans, signals=signals, extra=extras.get(uid, {}),
            ))
        return hits


def term_pattern(terms: set[str]) -> "re.Pattern | None":
    """One regex finding words that start with a query term (Snowball stems are prefixes of their words in
    nearly all cases); candidates are then confirmed by stemming only them."""
    if not terms:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\w*",
                      re.IGNORECASE | re.UNICODE)


def make_snippet(text: str, terms: set[str], stem, width: int = 240, pattern=None) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` with the most query-term matches, and the [start, end) spans to highlight.
    `stem` maps one word to its term (or None)."""
    text = " ".join(text.split())
    if not text:
        return "", []
    matches: list[tuple[int, int]] = []
    pat = pattern if pattern is not None else term_pattern(terms)
    if pat is not None:
        for m in pat.finditer(text):
            if stem(m.group(0)) in terms:
                matches.append((m.start(), m.end()))
    if len(text) <= width:
        return text, matches
    start = 0
    if matches:
        starts = np.array([s for s, _ in matches])
        # Window with the most matches: for each match, how many start within the window that it opens.
        counts = np.searchsorted(starts, starts + width - 40, side="left") - np.arange(len(starts))
        best = int(np.argmax(counts))
        start = max(0, int(starts[best]) - 40)
        sp = text.rfind(" ", 0, start)
        start = sp + 1 if sp >= 0 and start - sp < 30 else start
    end = min(len(text), start + width)
    if end < len(text):
        sp = text.rfind(" ", start, end)
        end = sp if sp > start + width // 2 else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    spans = [(s - start + len(prefix), e - start + len(prefix)) for s, e in matches if s >= start and e <= end]
    return prefix + text[start:end] + suffix, spans


def parse_meta(s: str | None) -> dict:
    return json.loads(s) if s else {}
