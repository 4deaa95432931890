"""Query routing (UniversalRAG, 2025): per query, pick the signals and the granularity that fit it instead of
running every signal over one mixed index, where the query's own modality tends to win.

Rules first (each one says why it fired, in `route["why"]`); `route="off"` restores the plain behaviour
(every signal the query can use, one hit per document). Granularities: document (one hit per asset), page
(one per PDF page), passage/block (one per text unit), image (whole images), region (image regions and tiles).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..types import Query

GRANULARITIES = ("document", "page", "passage", "block", "image", "region")
_VISUAL = re.compile(r"\b(photo|photos|picture|pictures|image|images|screenshot|diagram|chart|figure|logo|"
                     r"drawing|illustration|plot|graph|map)\b", re.I)
_QUESTION = re.compile(r"^\s*(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|list)\b|\?\s*$",
                       re.I)
_EXACT = re.compile(r'"[^"]+"|\b[A-Z]{2,}[-_]?\d+\b|\b\d+(\.\d+){2,}\b|\b[\w.-]+\.(pdf|py|json|csv)\b')


@dataclass
class Route:
    signals: tuple[str, ...]
    granularity: str = "document"
    weights: dict[str, float] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"signals": list(self.signals), "granularity": self.granularity,
                "weights": dict(self.weights), "why": list(self.why)}


def route_query(query: Query, available: Sequence[str], kinds: Mapping[str, int] | None = None) -> Route:
    """Signals, granularity and weight hints for `query` given the signals this index has and its unit kinds
    (kind -> count). Pure: the same inputs give the same route."""
    kinds = dict(kinds or {})
    has_text = bool(query.text and query.text.strip())
    has_image = query.image is not None
    avail = list(available)
    why: list[str] = []
    weights: dict[str, float] = {}
    if has_image and not has_text:
        sig = [s for s in avail if s in ("instance", "visual")]
        gran = "region" if query.bbox is not None else "image"
        why.append("image query: local features and visual embedding only")
        return Route(tuple(sig), gran, weights, why)
    text = query.text or ""
    sig = [s for s in avail if s in ("bm25", "dense")]
    images = kinds.get("image", 0) + kinds.get("region", 0) + kinds.get("figure", 0)
    textual = sum(v for k, v in kinds.items() if k not in ("image", "region"))
    if "visual" in avail:
        if _VISUAL.search(text):
            sig.append("visual")
            why.append("the query names something visual: visual signal on")
        elif images and images >= textual:
            sig.append("visual")
            why.append("the index is mostly images: visual signal on")
        else:
            why.append("text query over a mostly textual index: visual signal off")
    if has_image:
        sig += [s for s in avail if s == "instance" and s not in sig]
        why.append("image given with the text: local features on")
    if _EXACT.search(text) and "bm25" in sig:
        weights["bm25"] = 2.0
        why.append("exact tokens (quotes, codes, versions, file names): keyword signal weighted x2")
    gran = "document"
    if _QUESTION.search(text) and kinds.get("page", 0) and kinds.get("page", 0) >= 0.5 * sum(kinds.values() or [0]):
        gran = "page"
        why.append("a question over page-level documents: one hit per page")
    elif _QUESTION.search(text) and kinds.get("page", 0):
        gran = "page"
        why.append("a question over PDFs: one hit per page")
    if not sig:
        sig = [s for s in avail]
        why.append("no rule matched the available signals: every signal")
    return Route(tuple(dict.fromkeys(sig)), gran, weights, why)


_PAGE = re.compile(r"^(.*#p\d+)(?:[bf]\d+)?$")


def page_key(unit_id: str, asset_id: str) -> str:
    """The group of a unit at page granularity: '<asset>#p<page>' for PDF units, else the asset."""
    m = _PAGE.match(unit_id)
    return m.group(1) if m else asset_id
