"""POST /ask: an answer with citations, as JSON or as server-sent events (steps, tokens, then the answer).

The model (if any) comes from the server's environment (POLYSEEK_LLM_URL, POLYSEEK_LLM_MODEL, POLYSEEK_LLM_KEY);
without one the extractive answerer answers. Sessions live in the index folder, one file per session id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from polyseek.errors import PolyseekError

from ..errors import status_of
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


def _run(request: Request, body: AskIn, on_event=None) -> dict[str, Any]:
    from polyseek.agent import AskOptions, ask

    state = request.app.state.polyseek
    opts = AskOptions(deep=body.deep, max_steps=body.max_steps, max_seconds=body.max_seconds)
    return ask(state.index, body.question, llm=_llm(request), session=body.session, options=opts,
               on_event=on_event).to_dict()


def sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()


@router.post("/ask", summary="Answer a question with citations (JSON, or server-sent events)",
             responses={200: {"content": {"text/event-stream": {}}, "description":
                              "JSON {answer, citations, steps, usage, ...}; or events `step`, `token`, `answer` "
                              "(the same JSON), `error`"},
                        400: {"description": "Bad question"}, 401: {"description": "Token missing"}})
async def ask_route(body: AskIn, request: Request):
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        return await run_in_threadpool(_run, request, body)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def on_event(kind, data):
        if kind != "answer":  # the answer is sent once, below, after the run returns
            loop.call_soon_threadsafe(queue.put_nowait, (kind, data))

    def work():
        try:
            out = _run(request, body, on_event)
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
