"""Every status the server can answer, in the OpenAPI document: the route's own, and those any request may get from
the middlewares and handlers (foreign Host, cross-origin write, body too large, token, disk full, read-only)."""

from __future__ import annotations

ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}}}}}

WHY = {
    400: "Bad request (a query, file or parameter that cannot be used as given)",
    401: "Token missing or wrong (servers started with --token)",
    403: "Foreign Host header (DNS rebinding), a cross-origin write, or a path outside the allowed folders",
    404: "No such asset, page, file or path",
    409: "Another process is writing to the index, or the index was built with other encoders",
    413: "Request body, upload or image over the server's limits",
    415: "Body is neither multipart/form-data nor JSON",
    422: "Request does not match the schema",
    500: "Internal error (the server log has details)",
    501: "An optional package this request needs is not installed",
    503: "The index folder is read-only: searching works, changing it does not",
    507: "The disk holding the index is full: what was committed before is kept",
}
WRITES = (409, 503, 507)


def codes_for(path: str, method: str) -> set[int]:
    codes = {403, 500}
    if not path.startswith(("/ui", "/docs", "/redoc", "/healthz")) and path != "/":
        codes |= {401, 422}
    if method in ("post", "put", "patch", "delete"):
        codes |= {400, 413, 422}
    if path.startswith("/index"):
        codes |= {404, 415, *WRITES} if path == "/index" else {404, *WRITES}
    if path == "/search":
        codes |= {404, 409, 501}
    if path.startswith("/assets"):
        codes |= {400, 404}
    return codes


def document_errors(doc: dict) -> dict:
    """Add the error responses of each operation (with the JSON error body) where the route did not."""
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for code in sorted(codes_for(path, method)):
                r = op["responses"].setdefault(str(code), {"description": WHY[code]})
                if code != 422:
                    r.setdefault("content", ref)
    return doc
