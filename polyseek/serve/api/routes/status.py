"""GET /healthz (no token needed) and GET /status (what the index holds and what this server allows)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from ..routes.assets import _jsonable
from ..security import require_token

router = APIRouter(tags=["status"])


@router.get("/healthz", summary="Liveness: 200 when the server answers")
def healthz():
    return {"ok": True}


@router.get("/status", summary="Index contents, encoders, signals, failures, and server settings",
            dependencies=[Depends(require_token)])
def status(request: Request):
    state = request.app.state.polyseek
    st = _jsonable(state.index.status())
    signals = state.signals()
    cfg = state.config
    st["signals"] = signals
    st["image_search"] = any("image" in m for m in signals.values())
    st["server"] = {"auth": bool(cfg.token), "allow_roots": [str(p) for p in cfg.allow_roots], "uploads": True,
                    "max_upload_bytes": cfg.max_upload_bytes, "max_image_pixels": cfg.max_image_pixels}
    return st


@router.get("/suggestions", summary="Searches to suggest on the landing page, taken from the index's own text",
            dependencies=[Depends(require_token)])
def suggestions(request: Request, n: int = Query(4, ge=1, le=12)):
    return {"suggestions": request.app.state.polyseek.index.suggestions(n)}
