"""GET /assets/...: metadata, thumbnail, the file itself (or one PDF page as PNG), units. Ids may contain '/'."""

from __future__ import annotations

import datetime as _dt
import mimetypes
from typing import Any, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from ..errors import ApiError
from ..security import require_token
from ..state import AppState

router = APIRouter(tags=["assets"], dependencies=[Depends(require_token)])

# Files are shown inline but can never run script on this origin (an indexed .html or .svg would otherwise).
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60"}
SANDBOX = {"Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
# Audio and video are served with their real type, so the UI's player can stream them with Range requests.
MEDIA_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".wav": "audio/wav", ".mp3": "audio/mpeg",
               ".m4a": "audio/mp4", ".aac": "audio/aac", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".oga": "audio/ogg", ".opus": "audio/ogg"}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (_dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v


def asset_json(a: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in a.items() if k != "thumbnail"}
    out["has_thumbnail"] = bool(a.get("thumbnail"))
    return _jsonable(out)


def _state(request: Request) -> AppState:
    return request.app.state.polyseek


@router.get("/assets", summary="List indexed assets (newest first)")
def list_assets(request: Request, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0),
                type: Optional[str] = Query(None, description="Only this asset type")):
    st = _state(request)
    st.index.fresh()  # another process may have indexed files since the last search
    rows = st.index.assets()
    items = [{"id": k, "path": v["path"], "type": v["type"], "mtime": v["mtime"]} for k, v in rows.items()
             if type is None or v["type"] == type]
    items.sort(key=lambda r: (-(r["mtime"] or 0), r["id"]))
    return {"total": len(items), "assets": items[offset:offset + limit]}


@router.get("/assets/{asset_id:path}/thumbnail",
            summary="The asset's stored thumbnail (JPEG); with ?unit=ID, that video keyframe's thumbnail",
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No such asset or no thumbnail"}})
def thumbnail(asset_id: str, request: Request,
              unit: Optional[str] = Query(None, description="A frame or segment unit of a video")):
    a = _state(request).asset(asset_id)
    if unit is not None:
        return Response(_unit_thumbnail(_state(request), asset_id, unit), media_type="image/jpeg",
                        headers=SAFE_HEADERS)
    if not a.get("thumbnail"):
        raise ApiError(404, f"asset {asset_id!r} ({a['type']}) has no thumbnail", "NotFoundError")
    return Response(a["thumbnail"], media_type="image/jpeg", headers=SAFE_HEADERS)


def _unit_thumbnail(st: AppState, asset_id: str, unit_id: str) -> bytes:
    import base64

    for r in st.index.units(asset_id, ["id", "meta"]):
        if r["id"] == unit_id:
            b64 = r["meta"].get("thumbnail")
            if not b64:
                raise ApiError(404, f"unit {unit_id!r} has no thumbnail (only video frames and segments do)",
                               "NotFoundError")
            return base64.b64decode(b64)
    raise ApiError(404, f"asset {asset_id!r} has no unit {unit_id!r}", "NotFoundError")


@router.get("/assets/{asset_id:path}/file", summary="The asset's file; for PDFs with ?page=N, that page as PNG",
            responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {},
                                         "text/plain": {}}},
                       403: {"description": "The file lies outside the indexed folders"},
                       404: {"description": "No such asset, page or file"}})
async def file(request: Request, asset_id: str,
               page: Optional[int] = Query(None, ge=1, le=100000, description="PDF page to render (1-based)"),
               width: int = Query(1000, ge=16, le=2400, description="Width of the page render in pixels")):
    st = _state(request)
    a = await run_in_threadpool(st.asset, asset_id)
    path = await run_in_threadpool(st.safe_file, a)
    if page is not None:
        if a["type"] != "pdf":
            raise ApiError(400, f"?page is for PDFs; asset {asset_id!r} is {a['type']}", "QueryError")
        png = await run_in_threadpool(st.render_pdf_page, a, path, page, width)
        return Response(png, media_type="image/png", headers=SAFE_HEADERS)
    if a["type"] == "pdf":
        return FileResponse(path, media_type="application/pdf", headers=SAFE_HEADERS,
                            content_disposition_type="inline", filename=path.name)
    if a["type"] in ("video", "audio"):
        # FileResponse answers `Range: bytes=...` with 206 Partial Content: the player seeks to the hit's t0.
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                            headers={**SAFE_HEADERS, **SANDBOX}, content_disposition_type="inline",
                            filename=path.name)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if a["type"] != "image" or media not in IMAGE_TYPES:
        media = "text/plain; charset=utf-8" if a["type"] == "text" else "application/octet-stream"
    return FileResponse(path, media_type=media, headers={**SAFE_HEADERS, **SANDBOX},
                        content_disposition_type="inline", filename=path.name)


@router.get("/assets/{asset_id:path}/units", summary="The asset's searchable units (pages, blocks, passages...)")
def units(asset_id: str, request: Request):
    st = _state(request)
    out = [_jsonable(r) for r in st.index.units(asset_id)]
    for u in out:
        u["meta"].pop("thumbnail", None)  # keyframe thumbnails are served by /thumbnail?unit=
    out.sort(key=lambda u: (u["page"] or 0, u.get("t0") or 0.0))  # stable: audio/video units in time order
    return {"asset": asset_id, "units": out}


@router.get("/assets/{asset_id:path}", summary="An asset's metadata")
def asset(asset_id: str, request: Request):
    return asset_json(_state(request).asset(asset_id))
