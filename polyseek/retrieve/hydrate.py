"""Hydrate stage: fused (and reranked) candidates → `Hit`s with display rows, snippets and highlight spans."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from ..types import AssetRef, Hit, UnitRef
from .rerank.base import Candidate

DISPLAY_COLUMNS = ["id", "asset_id", "kind", "text", "page", "bbox", "t0", "t1", "asset_type", "path"]


def hydrate(candidates: Sequence[Candidate], rows: dict[str, dict], terms: set[str],
            stem_word: Callable[[str], str | None], extras: dict[str, dict]) -> list[Hit]:
    """Hits for `candidates` in order, from their display `rows` (unit id -> row); a candidate whose row is gone
    (deleted between retrieval and lookup by a concurrent index run) is skipped."""
    pattern = term_pattern(terms)
    hits = []
    for c in candidates:
        row = rows.get(c.unit_id)
        if row is None:
            continue
        snippet, spans = make_snippet(row["text"] or "", terms, stem_word, pattern=pattern)
        t = (row["t0"], row["t1"]) if row["t0"] is not None else None
        hits.append(Hit(
            rank=len(hits) + 1, score=float(c.score),
            asset=AssetRef(id=c.asset_id, path=row["path"], type=row["asset_type"]),
            unit=UnitRef(id=c.unit_id, kind=row["kind"], page=row["page"],
                         bbox=tuple(row["bbox"]) if row["bbox"] is not None else None, time=t),
            snippet=snippet, highlights=spans, signals=dict(c.signals), extra={**extras.get(c.unit_id, {}), **c.extra},
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
