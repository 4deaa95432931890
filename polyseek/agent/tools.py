"""The deep-search tools over one index: search_text, search_image, crop, open, reflect.

Every tool returns a JSON-able result for the trace (and for a model) and adds what it found to a shared
`Pool`: the place rankings it produced and the units it read. Units are numbered in the pool the first time
they are shown, so a model can cite `[n]` and the number resolves to a stored unit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import NotFoundError, QueryError
from . import evidence as ev

RENDER_SCALE = 2.0  # PDF points -> pixels for page renders searched as images
MAX_RESULTS = 5
SNIPPET_CHARS = 300


@dataclass
class Pool:
    """Everything deep search has found: place rankings (fused at the end) and units shown, numbered."""

    rankings: list[tuple[float, list[ev.Place]]] = field(default_factory=list)  # (weight, ranking)
    units: list[dict] = field(default_factory=list)  # numbered 1.. in order of first showing
    _by_id: dict[str, int] = field(default_factory=dict)

    def number(self, row: dict) -> int:
        if row["id"] not in self._by_id:
            self.units.append(row)
            self._by_id[row["id"]] = len(self.units)
        return self._by_id[row["id"]]

    def unit(self, ref: Any) -> dict:
        """A shown unit by its number (int or "3" or "[3]") or its unit id."""
        s = str(ref).strip().strip("[]")
        if s.isdigit() and 1 <= int(s) <= len(self.units):
            return self.units[int(s) - 1]
        if s in self._by_id:
            return self.units[self._by_id[s] - 1]
        raise QueryError(f"no evidence {ref!r}; give the number [n] or unit id of a result shown before")


class Tools:
    """The tools, bound to an index and a pool. `run(name, args)` is what a planner calls."""

    def __init__(self, index, pool: Pool, user_image=None):
        self.index = index
        self.pool = pool
        self.user_image = user_image
        self.table: dict[str, Callable[..., dict]] = {
            "search_text": self.search_text, "search_image": self.search_image, "crop": self.crop,
            "open": self.open, "reflect": self.reflect,
        }

    def run(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        fn = self.table.get(name)
        if fn is None:
            raise QueryError(f"unknown tool {name!r}; choose from: {', '.join(self.table)}, answer")
        try:
            return fn(**args)
        except TypeError as e:
            raise QueryError(f"bad arguments for {name}: {e}") from None

    # -- the tools -------------------------------------------------------------------------------------
    def search_text(self, query: str, weight: float = 1.0) -> dict[str, Any]:
        if not isinstance(query, str) or not query.strip():
            raise QueryError("search_text needs a non-empty 'query' string")
        places = ev.search_places(self.index, query)
        return self._record(places, weight)

    def search_image(self, unit: Any = None, weight: float = 0.5) -> dict[str, Any]:
        """Search with a shown unit's pixels (a figure, a page render, an image), or the user's image."""
        if unit is None or unit == "user":
            if self.user_image is None:
                raise QueryError("search_image needs 'unit' (a result [n]) when the question has no image")
            img = self.user_image
        else:
            img = self.render(self.pool.unit(unit))
        return self._record(ev.search_places(self.index, None, image=img), weight)

    def crop(self, unit: Any = None, box: Any = "auto", weight: float = 0.5, n: int = 2) -> dict[str, Any]:
        """Crop a region of a shown unit's pixels (box [x, y, w, h] in the render's pixels, or "auto": the most
        salient regions) and search each crop by image."""
        from ..retrieve.crops import salient_boxes

        img = self.user_image if unit in (None, "user") else self.render(self.pool.unit(unit))
        if img is None:
            raise QueryError("crop needs 'unit' (a result [n]) when the question has no image")
        if box == "auto":
            boxes = [b for b, _ in salient_boxes(img, n=max(1, min(int(n), 4)))]
        else:
            if not (isinstance(box, (list, tuple)) and len(box) == 4):
                raise QueryError("crop 'box' must be [x, y, w, h] in pixels, or \"auto\"")
            boxes = [tuple(int(v) for v in box)]
        out = []
        for x, y, w, h in boxes:
            if w < 16 or h < 16 or x < 0 or y < 0 or x + w > img.width + 1 or y + h > img.height + 1:
                raise QueryError(f"crop {x},{y},{w},{h} is outside the {img.width}x{img.height} image or too small")
            res = self._record(ev.search_places(self.index, None, image=img.crop((x, y, x + w, y + h))), weight)
            out.append({"box": [x, y, w, h], **res})
        return {"crops": out, "size": [img.width, img.height]}

    def open(self, unit: Any) -> dict[str, Any]:
        """A unit's full text and its neighbours (the units before and after it on its page or in its asset)."""
        try:
            row = self.pool.unit(unit)
        except QueryError:
            if not (isinstance(unit, str) and "#" in unit):
                raise
            row = self._row(unit)  # a unit id the planner learned elsewhere (e.g. a neighbour)
        page = row.get("page")
        rows = [r for r in self.index.unit_rows(asset_ids=[row["asset_id"]], columns=ev.COLUMNS)
                if (r["kind"] not in ("region", "page") or r["id"] == row["id"])
                and (page is None or r["page"] is None or abs(int(r["page"]) - int(page)) <= 1)]
        rows.sort(key=ev._reading_order)
        ids = [r["id"] for r in rows]
        i = ids.index(row["id"]) if row["id"] in ids else 0
        near = rows[max(0, i - 2): i + 3]
        return {"unit": self._show(row, full=True),
                "neighbours": [self._show(r) for r in near if r["id"] != row["id"]]}

    def reflect(self, note: str = "", question: str = "") -> dict[str, Any]:
        """What the pool covers so far: which question words occur in the best places, which do not."""
        from .rewrite import content_words

        places = self.merged()[:3]
        ev.load_units(self.index, places)
        text = ev.normalize(" ".join(p.text() for p in places))
        words = content_words(question)
        missing = [w for w in words if ev.normalize(w) not in text]
        return {"note": note, "covered": [w for w in words if w not in missing], "missing": missing,
                "best_places": [p.key for p in places]}

    # -- helpers ---------------------------------------------------------------------------------------
    def merged(self) -> list[ev.Place]:
        return weighted_merge(self.pool.rankings)

    def _record(self, places: list[ev.Place], weight: float) -> dict[str, Any]:
        self.pool.rankings.append((float(weight), places))
        top = places[:MAX_RESULTS]
        ev.load_units(self.index, top)
        results = []
        for p in top:
            u = best_unit(p)
            if u is not None:
                results.append(self._show(u, place=p.key))
        return {"results": results}

    def _show(self, row: dict, *, full: bool = False, place: str | None = None) -> dict[str, Any]:
        n = self.pool.number(row)
        text = " ".join((row.get("text") or "").split())
        d = {"n": n, "unit": row["id"], "asset": row["asset_id"], "kind": row["kind"], "page": row.get("page"),
             "text": text if full else text[:SNIPPET_CHARS]}
        if place:
            d["place"] = place
        return d

    def _row(self, uid: str) -> dict:
        rows = self.index.unit_rows(unit_ids=[uid], columns=ev.COLUMNS)
        if not rows:
            raise NotFoundError(f"no unit {uid!r} in the index")
        return rows[0]

    def render(self, row: dict):
        """The pixels of a unit: a PDF page render (cropped to the unit's box for blocks and figures), or the
        image file (cropped to the unit's box for regions)."""
        from ..imageio import decode_image

        if row.get("asset_type") == "pdf" and row.get("page") is not None:
            frame = self.index.page_sizes([row["asset_id"]]).get((row["asset_id"], int(row["page"])))
            width = int((frame[0] if frame else 612) * RENDER_SCALE)
            img = self.index.page_render(row["asset_id"], int(row["page"]), width)
            scale = img.width / (frame[0] if frame else 612)
        else:
            img = decode_image(row["path"], f"the file of {row['asset_id']}")
            scale = 1.0
        b = row.get("bbox")
        if b is not None and row["kind"] not in ("page", "image"):
            x, y, w, h = (float(v) * scale for v in b)
            if w >= 16 and h >= 16:
                img = img.crop((int(x), int(y), int(x + w), int(y + h)))
        return img


def best_unit(p: ev.Place) -> dict | None:
    """A place's unit to show first: its longest text unit (pages), or itself."""
    units = [u for u in p.units if (u.get("text") or "").strip()] or p.units
    return max(units, key=lambda u: len(u.get("text") or "")) if units else None


def weighted_merge(rankings, k: int = 60) -> list[ev.Place]:
    """Weighted reciprocal rank fusion of place rankings (text searches count more than image searches)."""
    merged: dict[str, ev.Place] = {}
    for w, places in rankings:
        for p in places:
            m = merged.get(p.key)
            if m is None:
                m = merged[p.key] = ev.Place(p.asset, p.page, p.unit, 0.0, path=p.path, asset_type=p.asset_type,
                                             units=p.units)
            m.score += w / (k + p.rank)
    out = sorted(merged.values(), key=lambda p: (-p.score, p.key))
    for i, p in enumerate(out, 1):
        p.rank = i
    return out


def tool_specs() -> list[dict[str, Any]]:
    """OpenAI function-calling schemas of the tools, plus `answer`."""
    def fn(name, desc, props, required):
        return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
            "type": "object", "properties": props, "required": required}}}

    unit = {"type": ["integer", "string"], "description": "a result number [n] shown before, or a unit id"}
    return [
        fn("search_text", "Search the documents by text. Returns numbered results.",
           {"query": {"type": "string"}}, ["query"]),
        fn("search_image", "Search by the pixels of a shown result (figure, page, image) or the user's image.",
           {"unit": unit}, []),
        fn("crop", "Crop a region of a shown result's image and search by it. box = [x, y, w, h] pixels or \"auto\".",
           {"unit": unit, "box": {"type": ["array", "string"], "items": {"type": "number"}}}, ["unit"]),
        fn("open", "Read a shown result in full, with the text around it.", {"unit": unit}, ["unit"]),
        fn("reflect", "Check which words of the question the best results cover so far.",
           {"note": {"type": "string"}, "question": {"type": "string"}}, []),
        fn("answer", "Give the final answer, citing results as [n]. Say you cannot find it if the results do not "
                     "hold it.", {"answer": {"type": "string"}}, ["answer"]),
    ]


def dumps(obj: Any, limit: int = 4000) -> str:
    s = json.dumps(obj, ensure_ascii=False, default=str)
    return s if len(s) <= limit else s[:limit] + "…"


def elapsed_ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)
