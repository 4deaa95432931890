"""Deep search: a budgeted planner loop over the tools in tools.py, with a JSON trace of every step.

With a model, the model plans: it calls search_text / search_image / crop / open / reflect until it calls
`answer` (or replies in plain text), the multi-round search-crop-reflect loop of search agents (MMSearch-R1,
DeepMMSearch-R1, Vision-DeepResearch). Without one, the engine runs a fixed plan that uses the same tools:
query variants → search → crop the top images' salient regions and search again → reflect (and search the
words no result covers) → merge by weighted reciprocal rank fusion → extractive answer.
Either way the step, time and token budgets are checked before every step; a run that hits one answers from
what it has found, marked in the trace. Model failures (timeouts, malformed tool calls, refusals) are
reported back to the model or end the loop with the extractive answer; they never crash the ask.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import LLMError, PolyseekError
from . import evidence as ev
from .answer import ABSTAIN, Answer, answer_from_places, cited_numbers, is_abstention, _with_frames
from .base import image_part
from .rewrite import content_words, keyword_variant
from .tools import Pool, Tools, dumps, elapsed_ms, tool_specs

IMAGE_KINDS = ("figure", "image", "page")

PLANNER_PROMPT = (
    "You are a search agent over the user's local documents. Use the tools to find evidence: search_text "
    "(try several phrasings), search_image and crop (to search by a figure, a page or a region of it), open (to "
    "read a result and its surroundings), reflect (to see what is still missing). Results are numbered [n]. When "
    "you have the answer, call answer with a short answer that cites results as [n]. If the documents do not "
    f"hold the answer, answer exactly: {ABSTAIN}")


class Budget:
    def __init__(self, options, usage):
        self.max_steps, self.max_seconds, self.max_tokens = options.max_steps, options.max_seconds, options.max_tokens
        self.usage = usage
        self.steps = 0
        self.t0 = time.perf_counter()

    def exhausted(self) -> str | None:
        if self.steps >= self.max_steps:
            return f"step budget of {self.max_steps} used"
        if time.perf_counter() - self.t0 > self.max_seconds:
            return f"time budget of {self.max_seconds:g} s used"
        if self.usage.total_tokens >= self.max_tokens:
            return f"token budget of {self.max_tokens} used ({self.usage.total_tokens})"
        return None


def deep_search(index, question, rewritten, variants, *, llm, image, options, trace, usage, warnings) -> Answer:
    pool = Pool()
    tools = Tools(index, pool, user_image=image)
    budget = Budget(options, usage)
    if llm is not None and llm.tools:
        try:
            return _planner_loop(index, question, rewritten, llm=llm, image=image, tools=tools, budget=budget,
                                 options=options, trace=trace, usage=usage, warnings=warnings)
        except LLMError as e:
            warnings.append(f"the planner model failed ({e}); finished with the fixed plan")
            trace.step("fallback", reason=str(e))
    _fixed_plan(question, rewritten, variants, tools, budget, trace, image)
    places = tools.merged()
    mode = "deep-llm+fixed" if llm is not None else "deep"
    return answer_from_places(index, question, rewritten, places, llm=None, image=image, options=options, trace=trace,
                              usage=usage, warnings=warnings, mode=mode)


def _call(tools: Tools, budget: Budget, trace, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """Run one tool as one budgeted, traced step; None when the budget is used up or the tool failed."""
    why = budget.exhausted()
    if why:
        if not any(s.get("name") == "budget" for s in trace.steps):
            trace.step("budget", reason=why)
        return None
    budget.steps += 1
    t = time.perf_counter()
    try:
        out = tools.run(name, args)
    except PolyseekError as e:
        trace.step(name, args=_short(args), error=str(e), ms=elapsed_ms(t))
        return None
    trace.step(name, args=_short(args), result=_summary(out), ms=elapsed_ms(t))
    return out


def _fixed_plan(question, rewritten, variants, tools: Tools, budget: Budget, trace, image) -> None:
    queries = [rewritten or question] + list(variants)
    kw = keyword_variant(rewritten or question)
    if kw and kw not in queries:
        queries.append(kw)
    if image is not None:
        _call(tools, budget, trace, "search_image", {"unit": "user"})
        _call(tools, budget, trace, "crop", {"unit": "user", "box": "auto", "n": 2})
    for q in queries:
        if q.strip():
            _call(tools, budget, trace, "search_text", {"query": q})
    # Crop the top visual results' salient regions and search by them (instance/visual signals).
    merged = tools.merged()
    ev.load_units(tools.index, merged[:3])
    seen = 0
    for p in merged[:3]:
        figs = [u for u in p.units if u["kind"] in ("figure", "image")]
        target = figs[0] if figs else None
        if target is None and p.asset_type == "pdf":
            target = {"id": p.unit, "asset_id": p.asset, "kind": "page", "page": p.page, "bbox": None,
                      "path": p.path, "asset_type": "pdf", "text": ""}
        if target is None:
            continue
        n = tools.pool.number(target)
        _call(tools, budget, trace, "crop", {"unit": n, "box": "auto", "n": 2})
        seen += 1
        if seen == 2:
            break
    out = _call(tools, budget, trace, "reflect", {"note": "coverage after search and crops",
                                                  "question": rewritten or question})
    if out and out.get("missing"):
        _call(tools, budget, trace, "search_text", {"query": " ".join(out["missing"] + content_words(question)[:3])})


def _planner_loop(index, question, rewritten, *, llm, image, tools: Tools, budget: Budget, options, trace, usage,
                  warnings) -> Answer:
    user: Any = f"Question: {rewritten or question}"
    if image is not None and llm.vision:
        user = [{"type": "text", "text": user + "\n(The user's image is attached; search_image with unit \"user\".)"},
                image_part(image)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": PLANNER_PROMPT}, {"role": "user", "content": user}]
    specs = tool_specs()
    final: str | None = None
    while final is None:
        why = budget.exhausted()
        if why:
            trace.step("budget", reason=why)
            break
        budget.steps += 1
        t = time.perf_counter()
        reply = llm.chat(messages, tools=specs, max_tokens=400,
                         on_token=lambda tok: trace.emit("token", {"text": tok, "planner": True}))
        usage.add(reply.usage)
        if reply.refusal:
            trace.step("plan", refusal=reply.refusal, ms=elapsed_ms(t))
            final = ABSTAIN
            warnings.append(f"the model refused: {reply.refusal}")
            break
        trace.step("plan", content=reply.content[:300], tool_calls=[c.name for c in reply.tool_calls],
                   tokens=reply.usage.total_tokens, ms=elapsed_ms(t))
        if not reply.tool_calls:
            final = reply.content.strip() or ABSTAIN
            break
        messages.append(reply.message())
        for call in reply.tool_calls:
            try:
                args = call.args()
            except LLMError as e:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": f"error: {e}"})
                trace.step(call.name or "tool", error=str(e))
                continue
            if call.name == "answer":
                final = str(args.get("answer") or "").strip() or ABSTAIN
                messages.append({"role": "tool", "tool_call_id": call.id, "content": "ok"})
                break
            t = time.perf_counter()
            try:
                out = tools.run(call.name, args)
                content = dumps(out)
                trace.step(call.name, args=_short(args), result=_summary(out), ms=elapsed_ms(t))
            except PolyseekError as e:
                content = f"error: {e}"
                trace.step(call.name, args=_short(args), error=str(e), ms=elapsed_ms(t))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    places = tools.merged()
    ranked = [{"place": p.key, "asset": p.asset, "page": p.page, "score": round(p.score, 5)} for p in places[:20]]
    if final is None:  # budget used before an answer: answer from what was found
        warnings.append("deep search stopped at its budget; answered from the evidence found so far")
        return answer_from_places(index, question, rewritten, places, llm=None, image=image, options=options,
                                  trace=trace, usage=usage, warnings=warnings, mode="deep-llm+budget")
    if is_abstention(final):
        trace.step("answer", method="deep-llm", abstained=True)
        return Answer(question, rewritten, ABSTAIN, True, [], trace.steps, usage, "deep-llm", ranked, warnings=warnings)
    cites, bad = [], []
    for n in cited_numbers(final):
        if 1 <= n <= len(tools.pool.units):
            row = tools.pool.units[n - 1]
            snippet = ev.split_sentences(row.get("text") or "")[:1]
            cites.append({"n": n, **ev.unit_ref(row), "snippet": snippet[0] if snippet else ""})
        else:
            bad.append(n)
    trace.step("answer", method="deep-llm", abstained=False, invalid_citations=bad)
    if not cites:
        warnings.append("the model's answer cites no result it was shown; kept without citations")
    return Answer(question, rewritten, final, False, _with_frames(index, cites), trace.steps, usage, "deep-llm",
                  ranked, warnings=warnings)


def _short(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, str) or len(v) < 200 else v[:200] + "…") for k, v in args.items()}


def _summary(out: dict[str, Any]) -> dict[str, Any]:
    """What a tool found, small enough for the trace."""
    if "results" in out:
        return {"results": [f"[{r['n']}] {r.get('place', r['unit'])}" for r in out["results"]]}
    if "crops" in out:
        return {"crops": [{"box": c["box"], "results": [f"[{r['n']}] {r.get('place', r['unit'])}"
                                                        for r in c["results"][:3]]} for c in out["crops"]]}
    if "unit" in out:
        return {"unit": out["unit"]["unit"], "neighbours": [n["unit"] for n in out.get("neighbours", [])]}
    return out
