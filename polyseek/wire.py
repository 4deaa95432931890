"""The wire formats: queries and hits as JSON, for the HTTP API (pydantic models: requests validated, unknown keys
rejected, responses documented), the CLI's JSONL batch mode, eval's queries.jsonl and the coming agent."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .types import Filters, Query

AssetTypeName = Literal["image", "pdf", "text", "record", "video", "audio"]


def parse_date(v: str | None, name: str) -> _dt.datetime | None:
    if v is None or v == "":
        return None
    try:
        return _dt.datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{name}={v!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None


def query_from_json(rec: dict[str, Any], base: Path, *, k: int = 10, filters: Filters | None = None,
                    default_id: str | None = None) -> Query:
    """A query from one JSON object (a line of queries.jsonl): `id` (or BEIR's `_id`), `text`, `image` (a path,
    relative to `base`), `bbox` ([x, y, w, h] of the image). ValueError says what is missing."""
    if not isinstance(rec, dict):
        raise ValueError(f"a query is a JSON object, not {type(rec).__name__}")
    qid = rec.get("id", rec.get("_id", default_id))
    if qid is None:
        raise ValueError("a query needs an 'id' (or '_id')")
    image = rec.get("image")
    if image is not None and not Path(image).is_absolute():
        image = str((base / image).resolve())
    text = rec.get("text") or None
    if text is None and image is None:
        raise ValueError(f"query {qid!r} has neither 'text' nor 'image'")
    bbox = rec.get("bbox")
    return Query(id=str(qid), text=text, image=image, bbox=tuple(bbox) if bbox else None, k=k,
                 filters=filters or Filters())


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: list[AssetTypeName] = Field(default_factory=list, description="Only these asset types.")
    path: Optional[str] = Field(None, max_length=1000, description="Glob over the asset path, e.g. '*/reports/*.pdf'.")
    after: Optional[str] = Field(None, description="Assets created on or after this date (YYYY-MM-DD).")
    before: Optional[str] = Field(None, description="Assets created before this date.")
    kind: list[str] = Field(default_factory=list, description="Only these unit kinds: page, block, figure, ...")

    @field_validator("after", "before")
    @classmethod
    def _date(cls, v, info):
        parse_date(v, info.field_name)
        return v

    def to_filters(self) -> Filters:
        return Filters(type=tuple(self.type), path=self.path or None, after=parse_date(self.after, "after"),
                       before=parse_date(self.before, "before"), kind=tuple(self.kind))


class SearchIn(BaseModel):
    """A JSON search request. `like` searches with an indexed asset's own text and image ("more like this")."""

    model_config = ConfigDict(extra="forbid")
    id: Optional[str] = Field(None, max_length=200, description="Echoed back as the response id.")
    text: Optional[str] = Field(None, max_length=4000)
    like: Optional[str] = Field(None, max_length=2000, description="Asset id: find assets similar to this one.")
    k: int = Field(10, ge=1, le=1000)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    signals: list[str] = Field(default_factory=list, description="Only these signals (bm25, dense, visual, ...).")
    fusion: Optional[str] = Field(None, max_length=40, description="dbsf (default), rrf, combsum, ...")
    cutoff: str = Field("none", max_length=20, description="auto, none, or a threshold in (0, 1] relative to the "
                        "top hit: show only the hits that stand out (the web UI sends auto).")
    route: Literal["auto", "off"] = Field("auto", description="auto: signals and granularity chosen per query.")
    rerank: Optional[str] = Field(None, max_length=500, description="cross-encoder:MODEL, llm:MODEL@URL, geometric.")
    rerank_depth: int = Field(50, ge=1, le=1000)
    suggest: bool = Field(False, description="Also return 3-5 refined queries, one per cluster of the results.")


class SimilarIn(BaseModel):
    """More like this: assets similar to `asset_id` by every signal it has."""

    model_config = ConfigDict(extra="forbid")
    asset_id: str = Field(..., min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=1000)
    filters: FiltersIn = Field(default_factory=FiltersIn)


class SearchForm(BaseModel):
    """The multipart form of POST /search (documentation only; parsed by hand)."""

    image: Optional[bytes] = Field(None, json_schema_extra={"format": "binary"}, description="Query image file.")
    crop: Optional[str] = Field(None, description="Crop of the query image: x,y,w,h in pixels.")
    text: Optional[str] = None
    k: Optional[int] = Field(None, ge=1, le=1000)
    type: Optional[list[AssetTypeName]] = None
    path: Optional[str] = None
    after: Optional[str] = None
    before: Optional[str] = None
    kind: Optional[list[str]] = None
    signals: Optional[list[str]] = None
    fusion: Optional[str] = None


class AssetRefOut(BaseModel):
    id: str
    path: str
    type: str


class UnitRefOut(BaseModel):
    id: str
    kind: str
    page: Optional[int] = None
    bbox: Optional[list[float]] = None
    time: Optional[list[float]] = None


class HitOut(BaseModel):
    rank: int
    score: float
    asset: AssetRefOut
    unit: UnitRefOut
    snippet: str = ""
    highlights: list[list[int]] = Field(default_factory=list)
    signals: dict[str, float] = Field(default_factory=dict)
    extra: Optional[dict[str, Any]] = None
    title: Optional[str] = Field(None, description="A record's title (its title field, else its id); files show "
                                                   "their name")
    frame: Optional[list[float]] = Field(None, description="[width, height] of the space unit.bbox is in: image "
                                                          "pixels, or PDF points of the page.")


class SuggestionOut(BaseModel):
    query: str
    add: list[str]
    ids: list[str]
    size: int


class SearchOut(BaseModel):
    id: Optional[str] = None
    took_ms: float
    hits: list[HitOut]
    warnings: list[str] = Field(default_factory=list, description="What to know about these results, e.g. that "
                                "text matches images only through OCR text when no visual encoder is configured")
    route: Optional[dict[str, Any]] = Field(None, description="Signals and granularity the router chose, and why.")
    suggestions: Optional[list[SuggestionOut]] = None


class IndexPathsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(..., min_length=1, max_length=1000,
                             description="Files or folders, each inside a root the server allows (--allow-root).")


class RemoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(..., min_length=1, max_length=1000, description="Asset ids or indexed paths.")
