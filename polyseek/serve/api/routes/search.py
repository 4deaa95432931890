"""POST /search: JSON (text, filters, like) or multipart (an image, an optional crop, text). CLI JSON schema."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from polyseek.config import SearchConfig
from polyseek.errors import ImageTooLargeError, QueryError
from polyseek.imageio import decode_image
from polyseek.types import Filters, Query, parse_bbox

from ..errors import ApiError
from polyseek.wire import FiltersIn, SearchForm, SearchIn, SearchOut, SimilarIn
from ..security import require_token
from ..state import AppState

router = APIRouter(tags=["search"], dependencies=[Depends(require_token)])

LIKE_TEXT_CHARS = 1500

_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/SearchIn"}},
        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SearchForm"}},
    },
}
EXTRA_SCHEMAS = (SearchIn, FiltersIn, SearchForm)


def load_image(data: bytes, max_pixels: int):
    """Decode an uploaded query image, refusing more than `max_pixels` before decoding the pixels."""
    if not data:
        raise QueryError("the uploaded image is empty")
    try:
        return decode_image(data, "the uploaded image", max_pixels)
    except ImageTooLargeError as e:
        raise ApiError(413, str(e), "TooLargeError") from None


def frames(state: AppState, hits) -> dict[tuple[str, int | None], list[float]]:
    """(asset id, page) -> [width, height] of the coordinate space of that page or image."""
    return state.index.page_sizes([h.asset.id for h in hits if h.unit.bbox is not None])


def run_search(state: AppState, query: Query, config: SearchConfig, exclude: str | None = None,
               suggest: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    if exclude:
        query.k += 1
    hits = state.index.search_query(query, config)
    if exclude:
        hits = [h for h in hits if h.asset.id != exclude][: query.k - 1]
        for i, h in enumerate(hits, 1):
            h.rank = i
    suggestions = None
    if suggest:  # clusters of the full list, not of what the cutoff kept
        full = (hits if config.cutoff == "none"
                else state.index.search_query(query, dataclasses.replace(config, cutoff="none")))
        suggestions = state.index.suggest(query, full)
    took = (time.perf_counter() - t0) * 1000
    out = hits_out(state, hits)
    res: dict[str, Any] = {"id": query.id, "took_ms": round(took, 2), "hits": out,
                           "warnings": state.index.query_warnings(query, hits)}
    if hits and "route" in hits[0].extra:
        res["route"] = hits[0].extra["route"]
    if suggestions is not None:
        res["suggestions"] = suggestions
    return res


def hits_out(state: AppState, hits) -> list[dict]:
    fr = frames(state, hits)
    out = []
    for h in hits:
        d = h.to_dict()
        d["frame"] = fr.get((h.asset.id, h.unit.page)) or fr.get((h.asset.id, None))
        if h.asset.type == "record":  # one CSV holds many records: the card names the record, not the file
            d["title"] = state.index.asset(h.asset.id).get("title") or h.asset.id
        out.append(d)
    return out


def like_query(state: AppState, body: SearchIn, filters: Filters) -> Query:
    """A query built from an asset's own text (title, then its pages or passages) and, for images, its pixels."""
    asset = state.asset(body.like)
    units = state.index.unit_rows(asset_ids=[asset["id"]], columns=["id", "kind", "text"])
    top = [u["text"] for u in units if u["kind"] in ("page", "passage", "image", "record") and u["text"]]
    text = " ".join([asset.get("title") or ""] + top)[:LIKE_TEXT_CHARS].strip()
    image = None
    if asset["type"] == "image" and state.image_search():
        image = str(state.safe_file(asset))
    if not text and image is None:
        raise QueryError(f"asset {asset['id']!r} has no text, and this index cannot search by image; "
                         f"nothing to compare with")
    return Query(id=body.id, text=text or None, image=image, k=body.k, filters=filters)


def _validation(e: ValidationError) -> RequestValidationError:
    return RequestValidationError([{**err, "loc": ("body",) + tuple(err.get("loc", ()))} for err in e.errors()])


@router.post("/search", response_model=SearchOut, summary="Search by text, image (with crop) or both",
             openapi_extra={"requestBody": _BODY},
             responses={400: {"description": "Bad query"}, 401: {"description": "Token missing"},
                        413: {"description": "Upload too large"}})
async def search(request: Request):
    """JSON `{text, k, filters, signals, fusion, like}`, or multipart with `image` (+ `crop`="x,y,w,h", `text`, `k`).

    The response is the CLI's `search --json` schema, plus `frame` on each hit: the size of the space its box is in.
    """
    state: AppState = request.app.state.polyseek
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=40)
        try:
            def one(name):
                v = form.get(name)
                return v if isinstance(v, str) and v != "" else None

            def many(name):
                return [v for v in form.getlist(name) if isinstance(v, str) and v]

            fin = FiltersIn(type=many("type"), path=one("path"), after=one("after"), before=one("before"),
                            kind=many("kind"))
            body = SearchIn(text=one("text"), k=one("k") or 10, filters=fin, signals=many("signals"),
                            fusion=one("fusion"), id=one("id"), cutoff=one("cutoff") or "none",
                            route=one("route") or "auto", rerank=one("rerank"),
                            rerank_depth=one("rerank_depth") or 50, suggest=one("suggest") in ("1", "true", "on"))
        except ValidationError as e:
            raise _validation(e) from None
        upload = form.get("image")
        data = await upload.read() if upload is not None and not isinstance(upload, str) else None
        crop = parse_bbox(one("crop"))
        if crop is not None and not data:
            raise QueryError("a crop needs an image: send the `image` file with it")
        image = await run_in_threadpool(load_image, data, state.config.max_image_pixels) if data else None
        query = Query(id=body.id, text=body.text, image=image, bbox=crop, k=body.k, filters=body.filters.to_filters())
        exclude = None
    elif ctype in ("application/json", "") or ctype.endswith("+json"):
        raw = await request.body()
        try:
            body = SearchIn.model_validate_json(raw or b"{}")
        except ValidationError as e:
            raise _validation(e) from None
        filters = body.filters.to_filters()
        if body.like:
            query = await run_in_threadpool(like_query, state, body, filters)
            exclude = body.like
        else:
            query = Query(id=body.id, text=body.text, k=body.k, filters=filters)
            exclude = None
    else:
        raise ApiError(415, f"send JSON or multipart/form-data, not {ctype}", "UnsupportedMediaType")
    from polyseek.retrieve.cutoff import parse_cutoff

    try:
        parse_cutoff(body.cutoff)
        given = {"fusion": body.fusion} if body.fusion else {}  # else SearchConfig's default
        config = SearchConfig(signals=tuple(body.signals), cutoff=body.cutoff, route=body.route,
                              rerank=body.rerank or "none", rerank_depth=body.rerank_depth, **given)
    except (TypeError, ValueError) as e:
        raise QueryError(str(e)) from None
    return await run_in_threadpool(run_search, state, query, config, exclude, body.suggest)


@router.post("/similar", response_model=SearchOut, summary="More like this: assets similar to one asset",
             responses={400: {"description": "Bad request"}, 401: {"description": "Token missing"},
                        404: {"description": "No such asset"}})
def similar(body: SimilarIn, request: Request):
    """`{asset_id, k, filters}`: the assets nearest to `asset_id` by every signal it has (its text and visual
    vectors, its terms, its pixels), itself excluded. The response has the /search schema."""
    state: AppState = request.app.state.polyseek
    t0 = time.perf_counter()
    hits = state.index.similar(body.asset_id, k=body.k, filters=body.filters.to_filters())
    return {"id": body.asset_id, "took_ms": round((time.perf_counter() - t0) * 1000, 2), "hits": hits_out(state, hits)}
