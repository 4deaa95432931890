"""POST /ask: an answer with citations, as JSON or as server-sent events (steps, tokens, then the answer).

A query image (the CLI's `ask --image`) comes as a `data:image/...;base64,` URL in the JSON `image` field, or as
the `image` file of a multipart form whose other fields are the JSON body's.

The model (if any) comes from the server's environment (POLYSEEK_LLM_URL, POLYSEEK_LLM_MODEL, POLYSEEK_LLM_KEY);
without one the extractive answerer answers. Sessions live in the index folder, one file per session id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import threading
from typing import Any, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polyseek.errors import PolyseekError, QueryError

from ..errors import ApiError, status_of
from ..security import require_token

log = logging.getLogger(__name__)
router = APIRouter(tags=["ask"], dependencies=[Depends(require_token)])


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., min_length=1, max_length=4000)
    deep: bool = Field(False, description="Deep search: a budgeted plan of text, image and crop searches.")
    session: Optional[str] = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                   description="Conversation id: follow-ups are rewritten with its history.")
    stream: bool = Field(False, description="Reply with text/event-stream (also chosen by Accept: text/event-stream).")
    max_steps: int = Field(12, ge=1, le=20, description="Deep search step budget.")
    max_seconds: float = Field(60.0, gt=0, le=120, description="Deep search time budget.")
    image: Optional[str] = Field(None, description="A query image as a data URL (data:image/png;base64,...), "
                                                   "searched with the question; or send it as multipart `image`.")


_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9=.+-]+)*;base64,", re.I)
_BODY = {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/AskIn"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["question"], "properties": {
        "question": {"type": "string"}, "image": {"type": "string", "format": "binary"},
        "deep": {"type": "boolean"}, "session": {"type": "string"}, "stream": {"type": "boolean"},
        "max_steps": {"type": "integer"}, "max_seconds": {"type": "number"}}}}}}
EXTRA_SCHEMAS = (AskIn,)


def image_bytes(data_url: str) -> bytes:
    """The bytes of a base64 image data URL; QueryError for anything else (a URL to fetch is not accepted)."""
    m = _DATA_URL.match(data_url)
    if not m:
        raise QueryError("`image` must be a data URL such as data:image/png;base64,...; "
                         "or send the file as multipart field `image`")
    try:
        return base64.b64decode(data_url[m.end():], validate=True)
    except (binascii.Error, ValueError):
        raise QueryError("`image` is not valid base64 after its data:image/...;base64, prefix") from None


async def read_body(request: Request) -> tuple[AskIn, bytes | None]:
    """The question and its options from JSON or a multipart form, and the query image's bytes (or None)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form(max_files=1, max_fields=20)
            fields = {k: v for k, v in form.items() if isinstance(v, str) and v != "" and k != "image"}
            upload = form.get("image")
            body = AskIn.model_validate(fields)
            if upload is not None and not isinstance(upload, str):
                return body, await upload.read()
            return body, image_bytes(upload) if isinstance(upload, str) and upload else None
        if ctype in ("application/json", "") or ctype.endswith("+json"):
            body = AskIn.model_validate_json(await request.body() or b"{}")
            return body, image_bytes(body.image) if body.image else None
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body",) + tuple(err.get("loc", ()))}
                                      for err in e.errors()]) from None
    raise ApiError(415, f"send JSON or multipart/form-data, not {ctype}", "UnsupportedMediaType")


def _llm(request: Request):
    """The model client of this app, built once from the environment (None: extractive answers)."""
    app = request.app
    with _LLM_LOCK:
        if not hasattr(app.state, "ask_llm"):
            from polyseek.agent import LLMConfig, OpenAIChat

            cfg = LLMConfig.from_env()
            app.state.ask_llm = OpenAIChat(cfg) if cfg is not None else None
        return app.state.ask_llm


_LLM_LOCK = threading.Lock()


def _run(request: Request, body: AskIn, image: bytes | None, on_event=None) -> dict[str, Any]:
    from polyseek.agent import AskOptions, ask

    state = request.app.state.polyseek
    if image is not None:
        from .search import load_image

        image = load_image(image, state.config.max_image_pixels)
    opts = AskOptions(deep=body.deep, max_steps=body.max_steps, max_seconds=body.max_seconds)
    return ask(state.index, body.question, llm=_llm(request), image=image, session=body.session, options=opts,
               on_event=on_event).to_dict()


def sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()


@router.post("/ask", summary="Answer a question with citations (JSON, or server-sent events)",
             responses={200: {"content": {"text/event-stream": {}}, "description":
                              "JSON {answer, citations, steps, usage, ...}; or events `step`, `token`, `answer` "
                              "(the same JSON), `error`"},
                        400: {"description": "Bad question or image"}, 401: {"description": "Token missing"},
                        413: {"description": "Image too large"}},
             openapi_extra={"requestBody": _BODY})
async def ask_route(request: Request):
    """JSON `{question, deep, session, stream, max_steps, max_seconds, image}` (image: a data URL), or multipart with
    the same fields and an `image` file."""
    body, image = await read_body(request)
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        return await run_in_threadpool(_run, request, body, image)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def on_event(kind, data):
        if kind != "answer":  # the answer is sent once, below, after the run returns
            loop.call_soon_threadsafe(queue.put_nowait, (kind, data))

    def work():
        try:
            out = _run(request, body, image, on_event)
            loop.call_soon_threadsafe(queue.put_nowait, ("answer", out))
        except PolyseekError as e:
            loop.call_soon_threadsafe(queue.put_nowait, ("error", {"error": str(e), "type": type(e).__name__,
                                                                   "status": status_of(e)}))
        except Exception as e:  # noqa: BLE001 - the stream has started: a crash can only be reported as an event
            log.exception("POST /ask crashed")
            loop.call_soon_threadsafe(queue.put_nowait, ("error", {"error": f"internal error ({type(e).__name__}); "
                                                                   "the server log has details",
                                                                   "type": "InternalError", "status": 500}))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    async def events():
        task = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                yield sse(*item)
        finally:
            await task

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
