"""Errors as JSON `{"error": {"message", "type"}}` with the right status; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from polyseek.errors import (ConfigError, DiskFullError, IndexMismatchError, MissingDependencyError, NotFoundError,
                             PolyseekError, QueryError, ReadOnlyError)

log = logging.getLogger("polyseek.serve")


class ApiError(Exception):
    """An error to answer with `status`; raised by route code for HTTP-only conditions (403, 413, ...)."""

    def __init__(self, status: int, message: str, type: str = "ApiError", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.headers = status, message, type, headers


def error_response(status: int, message: str, type: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type}}, status_code=status, headers=headers)


def status_of(e: PolyseekError) -> int:
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, (QueryError, ConfigError)):
        return 400
    if isinstance(e, IndexMismatchError):
        return 409
    if isinstance(e, MissingDependencyError):
        return 501
    if isinstance(e, DiskFullError):
        return 507  # Insufficient Storage (RFC 4918)
    if isinstance(e, ReadOnlyError):
        return 503
    if "another process is writing" in str(e):
        return 409
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.type, exc.headers)

    @app.exception_handler(PolyseekError)
    async def _polyseek(request: Request, exc: PolyseekError):
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, str(exc), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(422, _validation_message(exc), "ValidationError")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        if exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return error_response(exc.status_code, msg, "HTTPError", getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("%s %s crashed", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has details",
                              "InternalError")
