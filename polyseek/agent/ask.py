"""`ask`: question → rewrite → retrieval (every signal) → evidence units → an answer citing [n] units, or an
abstention when the evidence is weak (answer.py); `deep=True` runs the budgeted planner of deep.py instead of
the single search.
"""

from __future__ import annotations

import time

from ..errors import LLMError, QueryError
from . import evidence as ev
from .answer import ABSTAIN, Answer, AskOptions, Event, Trace, answer_from_places
from .tools import elapsed_ms
from .base import LLM, Usage
from .openai import LLMConfig, OpenAIChat
from .rewrite import rewrite_offline, rewrite_with_llm

__all__ = ["ABSTAIN", "Answer", "AskOptions", "ask"]


def ask(index, question: str, *, llm: LLM | LLMConfig | None = None, image=None, session=None, options: AskOptions | None = None,
        deep: bool | None = None, on_event: Event | None = None) -> Answer:
    """Answer `question` from `index` (see module docstring). `session`: a Session (or its name) whose history
    rewrites the question and which records this turn. `image`: a query image (path or PIL) searched with the
    text. `on_event(kind, data)` hears each step, streamed tokens and the final answer."""
    opts = options or AskOptions()
    if deep is not None:
        import dataclasses

        opts = dataclasses.replace(opts, deep=deep)
    if isinstance(session, str):
        from .session import Session

        session = Session.open(index.path, session)
    if isinstance(llm, LLMConfig):
        llm = OpenAIChat(llm)
    if not (question or "").strip() and image is None:
        raise QueryError("empty question: give a question (and optionally an image)")
    question = (question or "").strip()
    t0 = time.perf_counter()
    trace = Trace(on_event)
    usage = Usage()
    warnings: list[str] = []
    history = session.history() if session is not None else []
    rewritten, variants = question, []
    if llm is not None and question:
        try:
            rewritten, variants = rewrite_with_llm(llm, question, history, usage)
        except LLMError as e:
            warnings.append(f"rewrite by the model failed, used the question as typed: {e}")
            rewritten = rewrite_offline(question, history)
    else:
        rewritten = rewrite_offline(question, history)
    trace.step("rewrite", input=question, output=rewritten, variants=variants, history=len(history))
    if image is not None:
        from ..imageio import load_query_image

        image = load_query_image(image)
    if opts.deep:
        from .deep import deep_search

        ans = deep_search(index, question, rewritten, variants, llm=llm, image=image, options=opts, trace=trace,
                          usage=usage, warnings=warnings)
    else:
        ans = _ask_once(index, question, rewritten, llm=llm, image=image, options=opts, trace=trace, usage=usage,
                        warnings=warnings)
    ans.seconds = time.perf_counter() - t0
    if session is not None:
        session.append(question, rewritten, ans.to_dict())
    trace.emit("answer", ans.to_dict())
    return ans


def _ask_once(index, question, rewritten, *, llm, image, options, trace, usage, warnings) -> Answer:
    t = time.perf_counter()
    places = ev.search_places(index, rewritten or None, image=image)
    trace.step("search", query=rewritten, image=image is not None, places=[p.key for p in places[:10]],
               ms=elapsed_ms(t))
    return answer_from_places(index, question, rewritten, places, llm=llm, image=image, options=options, trace=trace,
                              usage=usage, warnings=warnings, mode="llm" if llm else "extractive")


