"""Bearer-token check (a dependency on every data router), the request-body size limit, and the Host and Origin
checks that keep web pages from using a local server (ASGI middlewares)."""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

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


def _refuse(status: int, message: str, type: str) -> tuple[dict, dict]:
    body = json.dumps({"error": {"message": message, "type": type}}).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]},
            {"type": "http.response.body", "body": body})


def _split_host(value: str) -> str:
    """The name part of a Host header or URL netloc: 'a:80' -> 'a', '[::1]:80' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class HostOriginMiddleware:
    """Refuse (403) a Host header that is not a name of this server (DNS rebinding: a page on evil.example whose
    name now resolves to 127.0.0.1), and writes whose Origin, or else Referer, is another site (CSRF: a page
    posting a form to http://127.0.0.1:8000/index). Requests with neither header (curl, scripts) pass; the
    --cors-origin origins pass. As Jupyter does (`allow_remote_access`, `check_origin`)."""

    def __init__(self, app, hosts: frozenset[str] | None, origins: tuple[str, ...]):
        self.app, self.hosts, self.origins = app, hosts, set(origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k: v.decode("latin-1") for k, v in scope.get("headers", ()) if k in (b"host", b"origin", b"referer")}
        host = headers.get(b"host", "")
        if self.hosts is not None and _split_host(host) not in self.hosts:
            msgs = _refuse(403, f"this server does not answer to the host name {host!r} (a DNS rebinding attempt?); "
                                f"use http://127.0.0.1, or start it with --allow-host NAME", "ForbiddenError")
        elif scope["method"] in UNSAFE_METHODS and not self._same_origin(headers, host):
            msgs = _refuse(403, "cross-origin writes are refused: this request came from a page on another site. "
                                "Use the server's own web UI, or add the site with --cors-origin", "ForbiddenError")
        else:
            return await self.app(scope, receive, send)
        for m in msgs:
            await send(m)

    def _same_origin(self, headers: dict, host: str) -> bool:
        origin = headers.get(b"origin")
        if origin is None and b"referer" in headers:
            p = urlsplit(headers[b"referer"])
            origin = f"{p.scheme}://{p.netloc}"
        if origin is None:
            return True  # not sent by a browser page
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        p = urlsplit(origin)
        return p.scheme in ("http", "https") and bool(p.netloc) and p.netloc == host.strip().lower()


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes: at once when Content-Length says so, else while reading (a streamed
    body): then whatever the app answers after the read failed is replaced by the same 413."""

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
        seen, over, started = 0, False, False

        async def limited():
            nonlocal seen, over
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    over = True
                    raise BodyTooLarge(limit)
            return msg

        async def guarded_send(msg):
            nonlocal started
            if over:  # the app's answer to a body cut short (a 400 from the form parser, a 500): a 413 instead
                if not started:
                    started = True
                    for m in _refuse(413, BodyTooLarge(limit).message, "TooLargeError"):
                        await send(m)
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            return await self.app(scope, limited, guarded_send)
        except Exception:
            if not over:
                raise
            await guarded_send({"type": "http.response.start"})
