"""Rerank stage: reorders the fused candidates before they are hydrated into hits.

One interface, backends registered by name (`SearchConfig.rerank`). `none` keeps the fused order. A reranker
sees the top `SearchConfig.rerank_depth` candidates; it may rescore them (the new score becomes the hit's score,
and the fused score stays in the candidate's `signals` under "fused") and reorder them, never add new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

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


@rerankers.register("none")
class NoRerank(Reranker):
    """Keeps the fused order."""

    name = "none"

    def rerank(self, query: Query, candidates: list[Candidate], rows: Rows) -> list[Candidate]:
        return candidates


def get_reranker(name: str) -> Reranker:
    """The reranker registered as `name`; unknown names list the known ones."""
    return rerankers.get(name)()
