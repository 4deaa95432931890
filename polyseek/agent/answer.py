"""Answers from evidence: options, the answer record and its trace, the extractive answerer, the model's answer
with its citations checked, and abstention. Used by `ask` (ask.py) and deep search (deep.py).

Two answerers share everything up to the evidence: the extractive one (no model; the best sentences or table
rows, each cited) and an LLM one (the numbered evidence in the prompt, citations parsed from its answer and
kept only when they point at evidence it was shown). Every citation is a unit read from the store, so it
resolves to an asset, a unit, a page and a box that exist.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import LLMError
from . import answertype as at
from . import evidence as ev
from .base import LLM, Usage, image_part

ABSTAIN = "I cannot find the answer in the indexed documents."
# Floors below which the best sentence is too weak to answer with: its match to the question (dense and term
# overlap, without the page's rank, which depends on the corpus), and the idf-weighted share of the question's
# terms it holds. Set well under every answerable docqa-dev question's best sentence (0.36 and 0.21 at the
# lowest), so they catch off-topic questions, not near misses (docs/ask.md).
MIN_SCORE = 0.25
MIN_LEX = 0.15
ANSWER_SENTENCES = 3  # extractive: the chosen sentence and up to two more from the same page (or passage)
PAGE_SUPPORT = 2  # a page's support: the mean of its two best sentences' scores
TYPE_RATIO = 0.8  # a quantity question's answer sentence must score this share of the best sentence (odd half)
TYPE_LOOKAHEAD = 12  # a quantity question's answer is looked for among this many best sentences
MIN_EXTRA_WORDS = 4  # extra sentences: not headings or stray labels
EXTRA_RATIO = 0.6  # ... and scoring at least this share of the chosen one
LLM_EVIDENCE = 8  # evidence units shown to a model
LLM_UNIT_CHARS = 700

Event = Callable[[str, dict], None]


@dataclass(frozen=True, kw_only=True)
class AskOptions:
    k: int = ev.PLACES  # places read for evidence
    deep: bool = False
    max_steps: int = 12  # deep search budget
    max_seconds: float = 120.0
    max_tokens: int = 60_000
    min_score: float = MIN_SCORE
    min_lex: float = MIN_LEX
    min_margin: float = 0.0  # abstain when the best page's support leads the next page's by less (0: never)


@dataclass
class Answer:
    question: str
    rewritten: str
    answer: str
    abstained: bool
    citations: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    usage: Usage
    mode: str
    evidence: list[dict[str, Any]] = field(default_factory=list)  # ranked places (for evidence recall)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "rewritten": self.rewritten, "answer": self.answer,
                "abstained": self.abstained, "citations": self.citations, "steps": self.steps,
                "usage": self.usage.to_dict(), "mode": self.mode, "evidence": self.evidence,
                "seconds": round(self.seconds, 3), "warnings": self.warnings}


class Trace:
    """The steps of one ask, each timed; `emit` forwards them (and tokens) to a listener such as an SSE stream."""

    def __init__(self, on_event: Event | None = None):
        self.steps: list[dict[str, Any]] = []
        self.on_event = on_event
        self.t0 = time.perf_counter()

    def step(self, name: str, **data) -> dict[str, Any]:
        s = {"step": len(self.steps) + 1, "name": name, "t_ms": round((time.perf_counter() - self.t0) * 1000, 1), **data}
        self.steps.append(s)
        self.emit("step", s)
        return s

    def emit(self, kind: str, data: dict) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


def answer_from_places(index, question, rewritten, places: Sequence[ev.Place], *, llm, image, options, trace, usage,
                       warnings, mode) -> Answer:
    """Evidence selection over ranked places, then the extractive or the model's answer."""
    t = time.perf_counter()
    ev.load_units(index, places[: options.k])
    weights = ev.TermWeights(index)
    focus, context = focus_of(question, rewritten)
    sents = ev.score_sentences(index, focus, places, weights, max_places=options.k, context=context)
    trace.step("select_evidence", sentences=len(sents),
               top=[{"unit": s.unit["id"], "score": round(s.score, 3), "text": s.text[:160]} for s in sents[:5]],
               ms=_ms(t))
    ranked = [{"place": p.key, "asset": p.asset, "page": p.page, "score": round(p.score, 5)} for p in places[:20]]
    if llm is not None:
        try:
            text, cites, abstained = _llm_answer(llm, question, sents, image, options, trace, usage)
            return Answer(question, rewritten, text, abstained, _with_frames(index, cites), trace.steps, usage, mode,
                          ranked, warnings=warnings)
        except LLMError as e:
            warnings.append(f"the model could not answer ({e}); fell back to the extractive answer")
            trace.step("fallback", reason=str(e))
            mode = mode + "+extractive"
    text, cites, abstained, why, info = extractive_answer(focus, sents, places, options)
    trace.step("answer", method="extractive", abstained=abstained, reason=why, **info)
    trace.emit("token", {"text": text})  # the extractive answer arrives whole
    return Answer(question, rewritten, text, abstained, _with_frames(index, cites), trace.steps, usage, mode, ranked,
                  warnings=warnings)


def focus_of(question: str, rewritten: str) -> tuple[str, str]:
    """(what the answer must match, context words): a follow-up rewritten offline keeps its own words as the focus
    and the words it borrowed from earlier turns as context; a model's standalone rewrite is the focus itself."""
    if question and rewritten and rewritten != question and rewritten.startswith(question):
        return question, rewritten[len(question):]
    return rewritten or question, ""


def weak_evidence(question: str, sents: Sequence[ev.Sentence], places: Sequence[ev.Place],
                  options: AskOptions) -> str | None:
    """Why the evidence is too weak to answer from, or None. Checks that need no choice of sentence: there is a
    sentence at all, and the identifiers the question names (GPT-4, BC2GM...) occur in the top places."""
    if not sents:
        return "no evidence found"
    top_text = ev.normalize(" ".join(p.text() for p in places[:3]))
    missing = [t for t in ev.specific_terms(question) if t not in top_text]
    if missing:
        return f"the evidence never mentions {', '.join(missing)}"
    return None


def weak_sentence(best: ev.Sentence, options: AskOptions) -> str | None:
    """Why the chosen sentence is too weak to answer with, or None: its match to the question (dense and term
    overlap, without the page's rank, which depends on the corpus) and its share of the question's terms."""
    match = ev.match_score(best)
    if match < options.min_score:
        return f"best evidence matches the question at {match:.2f} < {options.min_score}"
    if best.lex < options.min_lex:
        return f"best evidence shares {best.lex:.2f} of the question's terms (< {options.min_lex})"
    return None


def page_support(sents: Sequence[ev.Sentence], n: int = PAGE_SUPPORT) -> dict[str, float]:
    """Each place's support: the mean score of its `n` best sentences (a missing one counts 0). A page that
    states the answer among other matching sentences beats a page with one lucky sentence."""
    by: dict[str, list[float]] = {}
    for s in sents:
        by.setdefault(s.place.key, []).append(s.score)
    return {k: sum(sorted(v, reverse=True)[:n]) / n for k, v in by.items()}


def choose_evidence(question: str, sents: Sequence[ev.Sentence],
                    options: AskOptions) -> tuple[list[ev.Sentence], str | None, dict[str, Any]]:
    """(sentences to answer with, why not, what decided it). The page is chosen first (page_support), then its
    best sentence, then up to two more from the same page; sentences that ask rather than state are never
    chosen; a question that wants a quantity needs a sentence that states one (answertype.py), scoring at least
    TYPE_RATIO of the best sentence, on the page and overall, or the answer is an abstention. When the question
    is about a figure or table whose caption is on another page of the same document, that page is cited
    (figure_caption)."""
    cands = [s for s in sents if not at.is_question(s.text)]
    info: dict[str, Any] = {"candidates": len(cands), "questions_skipped": len(sents) - len(cands)}
    if not cands:
        return [], "the only matching sentences are questions", info
    quantity = at.wants_quantity(question)
    info["wants_quantity"] = quantity
    top = sents[0].score
    if quantity:
        typed = [s for s in cands[:TYPE_LOOKAHEAD] if at.states_quantity(s.text, question)]
        if not typed or typed[0].score < TYPE_RATIO * top:
            return [], "no strong evidence states a quantity", info
    support = page_support(cands)
    page = max(support, key=lambda k: (support[k], -min(s.place.rank for s in cands if s.place.key == k)))
    ranked = sorted(support.values(), reverse=True)
    info.update(page=page, page_support=round(ranked[0], 4),
                margin=round(ranked[0] - ranked[1], 4) if len(ranked) > 1 else None)
    on_page = [s for s in cands if s.place.key == page]
    best = on_page[0]
    if quantity:
        typed = [s for s in on_page if at.states_quantity(s.text, question)]
        if not typed or typed[0].score < TYPE_RATIO * on_page[0].score:
            return [], f"no sentence of the best page ({page}) states a quantity", info
        best = typed[0]
    why = weak_sentence(best, options)
    if why:
        return [], why, info
    margin = info["margin"]
    if options.min_margin > 0 and margin is not None and margin < options.min_margin:
        return [], f"two pages support the answer almost equally (margin {margin:.3f} < {options.min_margin})", info
    caption = figure_caption(question, best, cands)
    if caption is not None:  # the figure (or table) the question asks about is on another page: cite it there
        info.update(moved_from=page, page=caption.place.key)
        best, on_page = caption, [s for s in cands if s.place.key == caption.place.key]
    chosen = [best]
    for s in on_page:
        if len(chosen) == ANSWER_SENTENCES:
            break
        if (s is not best and len(s.text.split()) >= MIN_EXTRA_WORDS and s.score >= EXTRA_RATIO * best.score
                and not any(near_duplicate(s.text, c.text) for c in chosen)):
            chosen.append(s)
    return chosen, None, info


def figure_caption(question: str, best: ev.Sentence, cands: Sequence[ev.Sentence]) -> ev.Sentence | None:
    """The caption of the figure (or table) a question asks about, when it is on another page of the chosen
    page's document than the chosen page, else None. The label is the one the question names ("Figure 1 of the
    papermage paper ..."), else the one the chosen sentence refers to when the question asks about a figure or
    table ("In LongEval's plot of ..." answered by "In Figure 2, we plot ..."). The chosen page keeps the answer
    when it holds that caption itself, or when its best sentence is a caption or a table row (the figure's or
    table's own content)."""
    if at.caption_label(best.text, best.unit.get("kind") == "figure") or ev.is_table_row(best.text):
        return None
    wanted = at.labels_in(question)
    if not wanted:
        asked = at.asks_about(question)
        wanted = [lb for lb in at.labels_in(best.text) if lb[0] in asked]
    if not wanted:
        return None
    caps = [s for s in cands if s.place.asset == best.place.asset
            and at.caption_label(s.text, s.unit.get("kind") == "figure") in wanted]
    if not caps or any(s.place.key == best.place.key for s in caps):
        return None
    page = caps[0].place.key  # the best-scoring caption; its figure unit (whose box is the figure) when there is one
    return next((s for s in caps if s.place.key == page and s.unit.get("kind") == "figure"), caps[0])


def near_duplicate(a: str, b: str) -> bool:
    """Same words, or one inside the other (a figure's caption is often also a text block of its page)."""
    na, nb = ev.normalize(a), ev.normalize(b)
    return na == nb or (min(len(na), len(nb)) >= 20 and (na in nb or nb in na))


def extractive_answer(question: str, sents: Sequence[ev.Sentence], places: Sequence[ev.Place],
                      options: AskOptions) -> tuple[str, list[dict], bool, str | None, dict[str, Any]]:
    """(answer, citations, abstained, why, what decided it): the sentences choose_evidence picks from one page,
    each run of sentences from one unit followed by that unit's [n]. One page per answer keeps the citations as
    precise as the page choice (docs/ask.md)."""
    why = weak_evidence(question, sents, places, options)
    if why:
        return ABSTAIN, [], True, why, {}
    chosen, why, info = choose_evidence(question, sents, options)
    if why:
        return ABSTAIN, [], True, why, info
    cites, parts = [], []
    for i, s in enumerate(chosen):
        n = next((c["n"] for c in cites if c["unit"] == s.unit["id"]), None)
        if n is None:
            n = len(cites) + 1
            cites.append({"n": n, **ev.unit_ref(s.unit), "snippet": s.text, "score": round(s.score, 4)})
        same_next = i + 1 < len(chosen) and chosen[i + 1].unit["id"] == s.unit["id"]
        parts.append(s.text if same_next else f"{s.text} [{n}]")  # one [n] after a run of the same unit
    return " ".join(parts), cites, False, None, info


# -- the model's answer ----------------------------------------------------------------------------------

ANSWER_PROMPT = (
    "You answer questions using only the numbered evidence from the user's documents. Be brief: one or two "
    "sentences, quoting names and numbers exactly. Put the evidence number in brackets, like [2], after each claim. "
    f"If the evidence does not contain the answer, reply exactly: {ABSTAIN}")
_CITE = re.compile(r"\[(\d{1,3})(?:\s*,\s*(\d{1,3}))*\]")


def evidence_units(sents: Sequence[ev.Sentence], n: int = LLM_EVIDENCE) -> list[ev.Sentence]:
    """The best sentence of each of the `n` best units."""
    seen, out = set(), []
    for s in sents:
        if s.unit["id"] in seen:
            continue
        seen.add(s.unit["id"])
        out.append(s)
        if len(out) == n:
            break
    return out


def format_evidence(units: Sequence[ev.Sentence]) -> str:
    lines = []
    for i, s in enumerate(units, 1):
        where = f"{s.unit['asset_id']}" + (f", page {s.unit['page']}" if s.unit.get("page") is not None else "")
        text = " ".join((s.unit["text"] or "").split())[:LLM_UNIT_CHARS]
        lines.append(f"[{i}] ({where}, {s.unit['kind']}) {text}")
    return "\n".join(lines)


def cited_numbers(text: str) -> list[int]:
    out: list[int] = []
    for m in re.finditer(r"\[([\d,\s]+)\]", text):
        for v in m.group(1).split(","):
            v = v.strip()
            if v.isdigit() and int(v) not in out:
                out.append(int(v))
    return out


def is_abstention(text: str) -> bool:
    t = ev.normalize(text)
    return not t or ev.normalize(ABSTAIN) in t or t.startswith(("i cannot find", "i can t find", "cannot find",
                                                                "not found", "i don t know", "unanswerable"))


def resolve_citations(text: str, units: Sequence[ev.Sentence]) -> tuple[list[dict], list[int]]:
    """Citations for the [n] in `text` that point at shown evidence (renumbered 1..), and the invalid numbers."""
    cites, bad = [], []
    for n in cited_numbers(text):
        if 1 <= n <= len(units):
            s = units[n - 1]
            cites.append({"n": n, **ev.unit_ref(s.unit), "snippet": s.text})
        else:
            bad.append(n)
    return cites, bad


def _llm_answer(llm: LLM, question, sents, image, options, trace, usage) -> tuple[str, list[dict], bool]:
    units = evidence_units(sents)
    if not units:
        trace.step("answer", method="llm", abstained=True, reason="no evidence to show the model")
        return ABSTAIN, [], True
    content: Any = f"Evidence:\n{format_evidence(units)}\n\nQuestion: {question}"
    if image is not None and llm.vision:
        content = [{"type": "text", "text": content + "\n(The user's image is attached.)"}, image_part(image)]
    msgs = [{"role": "system", "content": ANSWER_PROMPT}, {"role": "user", "content": content}]
    reply = llm.chat(msgs, max_tokens=300, on_token=lambda tok: trace.emit("token", {"text": tok}))
    usage.add(reply.usage)
    if reply.refusal:
        trace.step("answer", method="llm", abstained=True, reason=f"the model refused: {reply.refusal}")
        return ABSTAIN, [], True
    text = reply.content.strip()
    if is_abstention(text):
        trace.step("answer", method="llm", abstained=True, tokens=reply.usage.total_tokens)
        return ABSTAIN, [], True
    cites, bad = resolve_citations(text, units)
    if bad:
        text = re.sub(r"\[(\d{1,3})\]", lambda m: m.group(0) if int(m.group(1)) not in bad else "", text).strip()
    trace.step("answer", method="llm", abstained=False, invalid_citations=bad, tokens=reply.usage.total_tokens)
    if not cites:
        raise LLMError("the model answered without citing any evidence")
    return text, cites, False


def _with_frames(index, cites: list[dict]) -> list[dict]:
    frames = ev.page_frames(index, cites) if cites else {}
    for c in cites:
        c["frame"] = frames.get((c["asset"], c["page"])) or frames.get((c["asset"], None))
    return cites


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)

