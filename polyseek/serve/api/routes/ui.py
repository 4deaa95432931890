"""The web UI (static files from polyseek/serve/ui, no build step, no external assets) and a local /docs page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(UI_DIR / name, headers=HEADERS)


@router.get("/")
def home():
    return _page("index.html")


@router.get("/docs")
def docs():
    """Swagger UI needs CDN assets, so /docs is a small local page that renders /openapi.json."""
    return _page("docs.html")


@router.get("/redoc")
def redoc():
    return RedirectResponse("/docs")
