"""POST /index: add uploaded files (kept under <index>/uploads/) or paths under --allow-root; POST /index/remove."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError


from polyseek.store.fsio import storage_guard
from polyseek.wire import IndexPathsIn, RemoveIn

from ..errors import ApiError
from ..security import require_token
from ..state import AppState

router = APIRouter(tags=["index"], dependencies=[Depends(require_token)])

MAX_FILES = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")

_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/IndexPathsIn"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}, "required": ["files"]}},
    },
}
EXTRA_SCHEMAS = (IndexPathsIn,)


def safe_name(name: str) -> str:
    """A plain file name from an uploaded one: no folders, no leading dots, no odd characters."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = _UNSAFE.sub("_", base).strip(" .")[:120]
    return base or "upload"


def _store_upload(folder: Path, name: str, tmp: Path, digest: str) -> Path:
    """Move `tmp` to folder/name; the same content under the same name is kept once, else a suffix is added."""
    stem, ext = os.path.splitext(name)
    for i in range(0, 10_000):
        target = folder / (name if i == 0 else f"{stem}-{i}{ext}")
        if target.exists():
            with open(target, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() == digest:
                    tmp.unlink()
                    return target
            continue
        os.replace(tmp, target)
        return target
    raise ApiError(409, f"too many uploads named {name!r}", "ConflictError")


def _inside(real: str, roots) -> bool:
    return any(real == str(r) or real.startswith(str(r).rstrip(os.sep) + os.sep) for r in roots)


def add_paths(state: AppState, paths: list[str]) -> dict[str, Any]:
    paths = list(dict.fromkeys(paths))  # the same file twice in one run makes the store's merge ambiguous
    with state.write_lock:
        report = state.writer().add(paths, progress=False)
        rows = state.writer().assets(paths=[os.path.abspath(p) for p in paths])
    state.index.refresh()  # let the next search see this commit at once
    out = report.to_dict()
    out["assets"] = sorted(rows)
    return out


@router.post("/index", summary="Add files: multipart uploads, or JSON {paths} under the server's --allow-root folders",
             openapi_extra={"requestBody": _BODY},
             responses={403: {"description": "Path outside the allowed roots"}, 413: {"description": "Too large"}})
async def index(request: Request):
    """Index uploaded files (saved under the index folder's `uploads/`) or server-side paths; returns the report."""
    state: AppState = request.app.state.polyseek
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES + 10)
        uploads = [v for k, v in form.multi_items() if not isinstance(v, str)]
        if not uploads:
            raise ApiError(400, "no files in the upload: send them as multipart field 'files'", "QueryError")
        folder = state.config.uploads
        saved = []
        for up in uploads:
            tmpname = None

            def discard():
                if tmpname:
                    os.unlink(tmpname)
            with storage_guard(state.config.index, "saving an upload", discard):
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmpname = tempfile.mkstemp(dir=folder, prefix=".part-")
                h = hashlib.sha256()
                with os.fdopen(fd, "wb") as f:
                    while chunk := await up.read(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
            saved.append(str(await run_in_threadpool(_store_upload, folder, safe_name(up.filename or ""),
                                                     Path(tmpname), h.hexdigest())))
        out = await run_in_threadpool(add_paths, state, saved)
        out["saved"] = saved
        return out
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        try:
            body = IndexPathsIn.model_validate_json(await request.body() or b"{}")
        except ValidationError as e:
            raise RequestValidationError([{**err, "loc": ("body",) + tuple(err["loc"])} for err in e.errors()]) \
                from None
        roots = state.config.allow_roots
        if not roots:
            raise ApiError(403, "this server takes no paths: start it with --allow-root DIR to allow indexing files "
                                "under DIR, or upload the files instead", "ForbiddenError")
        paths = []
        for p in body.paths:
            if "\x00" in p:
                raise ApiError(400, "a path cannot contain NUL", "QueryError")
            real = os.path.realpath(p)
            if not os.path.isabs(p) or not _inside(real, roots):
                raise ApiError(403, f"{p!r} is not inside an allowed root ({', '.join(map(str, roots))}); "
                                    f"give absolute paths under those folders", "ForbiddenError")
            if not os.path.exists(real):
                raise ApiError(404, f"{p!r} does not exist", "NotFoundError")
            paths.append(real)
        return await run_in_threadpool(add_paths, state, paths)
    raise ApiError(415, f"send multipart/form-data (files) or JSON {{paths}}, not {ctype}", "UnsupportedMediaType")


@router.post("/index/remove", summary="Remove assets by id or indexed path")
def remove(body: RemoveIn, request: Request):
    state: AppState = request.app.state.polyseek
    roots = [os.path.realpath(r) for r in (*state.config.allow_roots, state.config.uploads)]
    with state.write_lock:
        writer = state.writer()
        known = writer.assets()
        # Paths `status` lists as failed or skipped can be forgotten wherever they are (a mistyped path, say).
        listed = {f["path"] for f in writer.failures()} | {f["path"] for f in writer.skipped()}
        for item in body.items:
            # An asset id, or a path inside an allowed root or the uploads folder: "/" must not wipe the index.
            if item not in known and item not in listed and not _inside(os.path.realpath(item), roots):
                raise ApiError(403, f"{item!r} is neither an asset id nor a path under an allowed root", "ForbiddenError")
        n = state.writer().remove(body.items)
    state.index.refresh()
    return {"removed": n}
