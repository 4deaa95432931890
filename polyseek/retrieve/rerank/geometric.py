"""Geometric verification as a reranker: local features of the query image matched to each candidate's and
verified with RANSAC (Philbin et al. 2007's spatial re-ranking; retrieve/instance_verify.py). The score is the
inlier count, so a candidate that truly contains the query's object rises above look-alikes."""

from __future__ import annotations

from typing import Sequence

from ...errors import QueryError
from ...types import Query
from .base import Doc, ScoringReranker, rerankers


@rerankers.register("geometric")
class GeometricReranker(ScoringReranker):
    name = "geometric"
    batch_size = 50

    def __init__(self, instance_index):
        if instance_index is None:
            raise QueryError("the geometric reranker needs local features; this index was built with --no-instance")
        self.index = instance_index

    @classmethod
    def from_spec(cls, arg: str, **kw) -> "GeometricReranker":
        return cls(kw.get("instance_index"))

    def check(self, query: Query) -> None:
        if query.image is None:
            raise QueryError("the geometric reranker needs an image query")

    def score(self, query: Query, docs: Sequence[Doc]) -> list[float]:
        self.check(query)
        from ...store.derived import asset_of

        # A hit's best unit may be a region tile (no own features): verify the asset's featured units instead.
        have = self.index.unit_ids()
        by_asset: dict[str, list[str]] = {}
        for u in have:
            by_asset.setdefault(asset_of(u), []).append(u)
        units = {d.unit_id: ([d.unit_id] if d.unit_id in have else by_asset.get(d.asset_id, [])) for d in docs}
        got = self.index.verify_units(query.image, sorted({u for us in units.values() for u in us}), bbox=query.bbox)
        return [float(max((got.get(u, 0) for u in units[d.unit_id]), default=0)) for d in docs]
