"""Bearer-token check (a dependency on every data router) and the request-body size limit (ASGI middleware)."""

from __future__ import annotations

import hmac
import json

from fastapi import Request

from .errors import ApiError


def require_token(request: Request) -> None:
    """401 unless the request carries `Authorization: Bearer <token>` (when the server has a token)."""
    token = request.app.state.polyseek.config.token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "this server needs a token: send the header 'Authorization: Bearer <token>' "
                            "(the token the server was started with, --token or POLYSEEK_TOKEN)",
                       "AuthError", {"WWW-Authenticate": "Bearer"})


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes "
                              f"({limit / 1e6:.0f} MB); send smaller files or raise --max-upload-mb", "TooLargeError")


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes: at once when Content-Length says so, else while reading."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    size = int(v)
                except ValueError:
                    size = 0
                if size > limit:
                    body = json.dumps({"error": {"message": BodyTooLarge(limit).message,
                                                 "type": "TooLargeError"}}).encode()
                    await send({"type": "http.response.start", "status": 413,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode()),
                                            (b"connection", b"close")]})
                    await send({"type": "http.response.body", "body": body})
                    return
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return msg

        return await self.app(scope, limited, send)
