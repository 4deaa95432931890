"""Data types shared by every stage: Asset, Unit, Extraction, Query, Filters, Hit.

Coordinates: a `bbox` is always `[x, y, w, h]` with the origin at the top-left corner, y pointing down.
For images it is in pixels of the EXIF-oriented image; for PDF pages and blocks it is in PDF points
(1/72 inch) of the page as displayed (rotation applied), and the page size is in the unit's `meta`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AssetType = Literal["image", "pdf", "text", "record", "video", "audio"]
# Unit kinds: "image" (a whole image), "page" (a PDF page), "block" (a text block inside a page),
# "figure" (an image region inside a page, with its caption), "passage" (a chunk of a text file),
# "record" (one row of a records file), "region" (a tile or crop of an image), "frame" (a video keyframe for a
# scene window), "speech" (a transcript sentence), "segment" (a scene window's on-screen text and speech together).
UnitKind = Literal["image", "page", "block", "figure", "passage", "record", "region", "frame", "speech", "segment"]

BBox = tuple[float, float, float, float]


@dataclass
class Unit:
    """The smallest searchable piece of an asset: a page, a block, a passage, a whole image."""

    id: str
    kind: str
    text: str = ""
    page: int | None = None  # 1-based page number for PDF units
    bbox: BBox | None = None
    time: tuple[float, float] | None = None  # seconds, for audio/video segments
    char_start: int | None = None  # offsets into the source text for passages
    char_end: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # Pixels for visual encoders (a PIL image); never stored, dropped after encoding.
    image: Any = field(default=None, repr=False, compare=False)


@dataclass
class Asset:
    """One indexed thing: a file, or one row of a records file."""

    id: str
    path: str  # absolute path of the file (for records: of the records file)
    type: str  # AssetType
    hash: str = ""  # content hash (sha256 hex) used for incremental indexing
    size: int = 0
    mtime: float = 0.0
    created: _dt.datetime | None = None  # EXIF date, PDF creation date, or file mtime
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = field(default=None, repr=False)  # JPEG bytes, long side <= thumbnail size
    source: str = ""  # the file the asset came from (records file for records, else path)


@dataclass
class Extraction:
    """What an extractor returns for one file (or one part of a streamed file): the asset, its units, non-fatal
    warnings, and `pooled`: unit id -> ids of units (in the same Extraction) whose mean text vector it gets
    instead of its own. `final` is False for all but the last part of a streamed file."""

    asset: Asset
    units: list[Unit]
    warnings: list[str] = field(default_factory=list)
    pooled: dict[str, list[str]] = field(default_factory=dict)
    final: bool = True


def parse_bbox(s: str | None) -> BBox | None:
    """A crop box from "x,y,w,h" (pixels of the query image), as the CLI and the HTTP API take it."""
    if not s:
        return None
    try:
        vals = [float(v) for v in s.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or any(v != v for v in vals):
        from .errors import QueryError

        raise QueryError(f"crop {s!r}: give it as x,y,w,h in pixels of the query image")
    return (vals[0], vals[1], vals[2], vals[3])


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Metadata filters, evaluated inside the store."""

    type: tuple[str, ...] = ()  # asset types to keep
    path: str | None = None  # glob over the asset path, e.g. "*/reports/*.pdf"
    after: _dt.datetime | None = None  # asset created at or after
    before: _dt.datetime | None = None  # asset created before
    kind: tuple[str, ...] = ()  # unit kinds to keep

    def is_empty(self) -> bool:
        return not (self.type or self.path or self.after or self.before or self.kind)


@dataclass(kw_only=True)
class Query:
    """A query: text, an image (path or PIL image) with an optional crop box, or both."""

    text: str | None = None
    image: Any = None
    bbox: BBox | None = None
    id: str | None = None
    k: int = 10
    filters: Filters = field(default_factory=Filters)


@dataclass
class AssetRef:
    id: str
    path: str
    type: str


@dataclass
class UnitRef:
    id: str
    kind: str
    page: int | None = None
    bbox: BBox | None = None
    time: tuple[float, float] | None = None


@dataclass
class Hit:
    """One ranked result, the same for every modality. `signals` keeps each signal's raw score."""

    rank: int
    score: float
    asset: AssetRef
    unit: UnitRef
    snippet: str = ""
    highlights: list[tuple[int, int]] = field(default_factory=list)  # [start, end) spans in snippet
    signals: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. matched crop, matched box

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("bbox",):
            if d["unit"][key] is not None:
                d["unit"][key] = [round(float(v), 2) for v in d["unit"][key]]
        d["highlights"] = [list(h) for h in self.highlights]
        if not d["extra"]:
            d.pop("extra")
        return d
