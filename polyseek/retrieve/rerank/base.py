"""Rerank stage: reorders the fused candidates before they are hydrated into hits.

One interface, backends registered by name (`SearchConfig.rerank`, "name" or "name:ARG", e.g.
"cross-encoder:FOLDER"). `none` keeps the fused order. A reranker sees the top `SearchConfig.rerank_depth`
candidates; it may rescore them (the new score becomes the hit's score, and the fused score stays in the
candidate's `signals` under "fused") and reorder them, never add new ones.

Most backends only score (query, candidate) pairs: they subclass `ScoringReranker`, whose one required method
is `score`, and get the driver (`rerank_candidates`): batches, a time budget, ties kept in fused order, and the
candidates beyond what was scored left below the scored ones in their fused order.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

from ...errors import ConfigError
from ...registry import Registry
from ...types import Query

rerankers: Registry[type["Reranker"]] = Registry("reranker")

Rows = Callable[[Sequence[str]], dict[str, dict]]  # unit ids -> display rows (id, text, kind, page, ...)


@dataclass
class Candidate:
    """One fused result before hydration: the asset, the unit shown for it, its score and per-signal scores."""

    asset_id: str
    unit_id: str
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Reranker:
    name: ClassVar[str] = ""

    def rerank(self, query: Query, candidates: list[Candidate], rows: Rows) -> list[Candidate]:  # required
        """The candidates in their new order (a subset or all of them, best first). `rows` reads unit text."""
        raise NotImplementedError

    def check(self, query: Query) -> None:
        """Raise QueryError when this reranker cannot judge `query` (before any work is done for it)."""

    @classmethod
    def from_spec(cls, arg: str, **ctx) -> "Reranker":
        """Build from the part of the spec after "name:" and what the searcher offers (`ctx`)."""
        if arg:
            raise ConfigError(f"reranker {cls.name!r} takes no argument (got {arg!r})")
        return cls()


@rerankers.register("none")
class NoRerank(Reranker):
    """Keeps the fused order."""

    name = "none"

    def rerank(self, query: Query, candidates: list[Candidate], rows: Rows) -> list[Candidate]:
        return candidates


@dataclass
class Doc:
    """What a scoring reranker sees of one candidate: ids, its unit's text and kind, and where its file is."""

    unit_id: str
    asset_id: str
    text: str
    kind: str = ""
    path: str = ""


class ScoringReranker(Reranker):
    """A reranker that scores (query, candidate) pairs; `score` is its one required method."""

    batch_size: int = 16  # candidates per `score` call; the budget is checked between calls
    budget_ms: float | None = None  # stop scoring past this; what is scored is reordered, the rest keeps its order

    def score(self, query: Query, docs: Sequence[Doc]) -> list[float]:  # required
        raise NotImplementedError

    def rerank(self, query: Query, candidates: list[Candidate], rows: Rows) -> list[Candidate]:
        self.check(query)
        got = rows([c.unit_id for c in candidates]) if candidates else {}
        docs = [Doc(c.unit_id, c.asset_id, (got.get(c.unit_id) or {}).get("text") or "",
                    (got.get(c.unit_id) or {}).get("kind") or "", (got.get(c.unit_id) or {}).get("path") or "")
                for c in candidates]
        out, _ = rerank_candidates(self, query, candidates, docs, budget_ms=self.budget_ms)
        return out


def rerank_candidates(reranker: ScoringReranker, query: Query, candidates: Sequence[Candidate],
                      docs: Sequence[Doc], *, budget_ms: float | None = None) -> tuple[list[Candidate], dict]:
    """Score `candidates` (aligned with `docs`) in batches until done or out of budget (the first batch is always
    scored), reorder the scored ones by the new score (ties keep fused order) and keep the rest after them.
    Each candidate keeps its fused score in `signals["fused"]`; scored ones get `signals["rerank:<name>"]`."""
    t0 = time.perf_counter()
    scores: list[float] = []
    bs = max(1, reranker.batch_size)
    for i in range(0, len(candidates), bs):
        if budget_ms is not None and scores and (time.perf_counter() - t0) * 1000 > budget_ms:
            break
        batch = list(docs[i:i + bs])
        got = reranker.score(query, batch)
        if len(got) != len(batch):
            raise ConfigError(f"reranker {reranker.name} returned {len(got)} scores for {len(batch)} candidates")
        scores.extend(float(s) for s in got)
    n = len(scores)
    info = {"reranker": reranker.name, "scored": n, "ms": round((time.perf_counter() - t0) * 1000, 2)}
    out = []
    for i in sorted(range(n), key=lambda i: (-scores[i], i)):
        c = candidates[i]
        out.append(dataclasses.replace(c, score=scores[i], signals={**c.signals, "fused": c.score,
                                                                    f"rerank:{reranker.name}": scores[i]},
                                       extra={**c.extra, "rerank": info}))
    base = min(scores) if scores else None
    for j, c in enumerate(candidates[n:], start=1):  # not scored: below the scored ones, fused order kept
        out.append(dataclasses.replace(c, score=c.score if base is None else base - 1e-3 * j,
                                       signals={**c.signals, "fused": c.score}))
    return out, info


def parse_spec(spec: str) -> tuple[str, str]:
    """'cross-encoder:FOLDER' -> ('cross-encoder', 'FOLDER'); 'none' -> ('none', '')."""
    name, _, arg = (spec or "none").partition(":")
    return name.strip(), arg.strip()


_CACHE: dict[tuple, Reranker] = {}
_LOCK = threading.Lock()


def get_reranker(spec: str, *, budget_ms: float | None = None, **ctx) -> Reranker:
    """The reranker a spec names ("name" or "name:ARG"), built once per spec and budget; unknown names list the
    known ones. `ctx` carries what some backends need from the searcher (the instance index)."""
    name, arg = parse_spec(spec)
    cls = rerankers.get(name)
    key = (name, arg, budget_ms, id(ctx.get("instance_index")))
    with _LOCK:
        rr = _CACHE.get(key)
        if rr is None:
            rr = cls.from_spec(arg, **ctx)
            if isinstance(rr, ScoringReranker):
                rr.budget_ms = budget_ms
            if len(_CACHE) > 32:
                _CACHE.clear()
            _CACHE[key] = rr
    return rr
