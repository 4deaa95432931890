"""Evidence for a question: places (PDF pages, passages, images, records) ranked by the full search pipeline, their
units (blocks, figures) loaded whole, and the sentences or table rows inside them scored against the question.

A place's score sums reciprocal ranks of its units in a unit-level search over every signal (Cormack et al. 2009,
applied per page), so a page with several matching blocks outranks one lucky block. A sentence's score mixes
its dense similarity to the question, the weighted share of question terms it contains (a BM25-style overlap,
Robertson & Zaragoza 2009), and its place's rank: the sentence-selection step of extractive QA pipelines (e.g.
DrQA, Chen et al. 2017), without a trained reader. A term's weight there is its idf in the index times its idf
among the pages read for this question: a term that every candidate page holds (the paper's name, its topic)
says nothing about which page holds the answer, the one that only the answer's page holds says most.
A table row flattened into text ("LoRA Tuning 786,432 1,474,560") names its row but not what its values measure:
that is in its table's caption, so a row counts the terms of the captions on its page as its own.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..config import SearchConfig
from ..types import Filters, Query

UNIT_DEPTH = 60  # unit-level hits taken from the search
PLACES = 8  # places whose units are read and split into sentences
PLACE_RRF_K = 10  # small k: the first few units dominate a place's score
MAX_SENTENCE_CHARS = 320
CONTEXT_WEIGHT = 0.3
ENCODE_TOP = 48  # sentences re-scored with their own vectors (the rest only with their unit's)
W_DENSE, W_LEX, W_PLACE = 0.45, 0.35, 0.20  # sentence score mix (see module docstring)
COLUMNS = ["id", "asset_id", "kind", "text", "page", "bbox", "path", "asset_type"]
EVIDENCE_COLUMNS = COLUMNS + ["vec_text"]

_TABLE_CAPTION = re.compile(r"^\s*(?:table|tab\.)\s*[A-Z]?\d+", re.I)  # "Table 2: ...", "Tab. 3 ..."
_NUMERIC = re.compile(r"^[\d.,%±+\-\u2013\u2212()\[\]]+$")  # a table cell's value: 786,432  27.32  (±0.4)  12%
ROW_NUMBERS, ROW_SHARE = 2, 0.3  # a table row: at least 2 values making at least 0.3 of its cells' tokens
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9(\[\"'])")
_SUFFIX = re.compile(r"[\s-]+(X{0,3}[SML]|\d+(?:\.\d+)?[BMK])\b")  # model size variants: XL, XXL, 7B, 1.5B
_CODE = re.compile(r"\b(?=[A-Za-z0-9.\-]*\d)(?=[A-Za-z0-9.\-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9.\-]*[A-Za-z0-9]\b")


def normalize(s: str) -> str:
    """NFKC, lower case, every non-alphanumeric character a space, spaces collapsed (the docqa matching rule)."""
    s = unicodedata.normalize("NFKC", s).lower()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in s).split())


@dataclass
class Place:
    """Where evidence lives: a PDF page, or a unit that stands alone (passage, image, record)."""

    asset: str
    page: int | None
    unit: str  # the page unit, or the standalone unit
    score: float
    rank: int = 0
    path: str = ""
    asset_type: str = ""
    units: list[dict] = field(default_factory=list)  # its blocks/figures (or itself), with full text

    @property
    def key(self) -> str:
        return f"{self.asset}#p{self.page}" if self.page is not None else self.unit

    def text(self) -> str:
        return " ".join(u["text"] or "" for u in self.units)


@dataclass
class Sentence:
    text: str
    unit: dict  # the store row of the unit holding it
    place: Place
    dense: float = 0.0
    lex: float = 0.0  # idf-weighted share of the question's terms it holds (how much of the question it covers)
    score: float = 0.0
    lex_page: float = 0.0  # the same share with page-discriminative weights (what its score uses)


def search_places(index, text: str | None, *, image=None, filters: Filters | None = None,
                  config: SearchConfig | None = None, depth: int = UNIT_DEPTH) -> list[Place]:
    """Places ranked by the summed reciprocal ranks of their units in a unit-level search (every signal)."""
    import dataclasses

    cfg = dataclasses.replace(config or SearchConfig(), group=False, depth=max(100, depth),
                              route="off")  # the answerer ranks places itself; per-query routing would narrow its pool
    hits = index.search_query(Query(text=text, image=image, k=depth, filters=filters or Filters()), cfg)
    return places_from_hits(hits)


def places_from_hits(hits) -> list[Place]:
    places: dict[str, Place] = {}
    for h in hits:
        page = h.unit.page if h.asset.type == "pdf" else None
        key = f"{h.asset.id}#p{page}" if page is not None else h.unit.id
        p = places.get(key)
        if p is None:
            unit = f"{h.asset.id}#p{page}" if page is not None else h.unit.id
            p = places[key] = Place(h.asset.id, page, unit, 0.0, path=h.asset.path, asset_type=h.asset.type)
        p.score += 1.0 / (PLACE_RRF_K + h.rank)
    out = sorted(places.values(), key=lambda p: (-p.score, p.key))
    for i, p in enumerate(out, 1):
        p.rank = i
    return out


def merge_places(lists: Sequence[Sequence[Place]], k: int = 60) -> list[Place]:
    """Reciprocal rank fusion of several place rankings (query variants, image searches) into one."""
    merged: dict[str, Place] = {}
    for lst in lists:
        for p in lst:
            m = merged.get(p.key)
            if m is None:
                m = merged[p.key] = Place(p.asset, p.page, p.unit, 0.0, path=p.path, asset_type=p.asset_type,
                                          units=p.units)
            m.score += 1.0 / (k + p.rank)
    out = sorted(merged.values(), key=lambda p: (-p.score, p.key))
    for i, p in enumerate(out, 1):
        p.rank = i
    return out


def load_units(index, places: Sequence[Place]) -> None:
    """Fill each place's `units`: the blocks and figures of a page (the page unit itself when it has none),
    or the standalone unit. One store scan over the places' assets."""
    todo = [p for p in places if not p.units]
    if not todo:
        return
    rows = index.unit_rows(asset_ids=sorted({p.asset for p in todo}), columns=EVIDENCE_COLUMNS)
    by_place: dict[str, list[dict]] = {}
    for r in rows:
        if r["kind"] == "region":
            continue
        by_place.setdefault(f"{r['asset_id']}#p{r['page']}" if r["asset_type"] == "pdf" and r["page"] is not None
                            else r["id"], []).append(r)
    for p in todo:
        units = by_place.get(p.key, [])
        parts = [u for u in units if u["kind"] != "page" and (u["text"] or "").strip()]
        page_units = [u for u in units if u["kind"] == "page"]
        p.units = sorted(parts, key=_reading_order) if parts else page_units or units


def _reading_order(u: dict):
    b = u.get("bbox") or (0, 0, 0, 0)
    return (u.get("page") or 0, _unit_no(u["id"]), b[1], b[0])


def _unit_no(uid: str) -> int:
    m = re.search(r"(\d+)$", uid)
    return int(m.group(1)) if m else 0


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences, with table rows and lines kept apart and long runs (tables flattened into one line) cut into
    word windows of about `max_chars`."""
    out = []
    for line in re.split(r"\n+", text or ""):
        line = " ".join(line.split())
        if not line:
            continue
        for s in _SENT_END.split(line):
            s = s.strip()
            while len(s) > max_chars:
                cut = s.rfind(" ", max_chars // 2, max_chars)
                cut = cut if cut > 0 else max_chars
                out.append(s[:cut])
                s = s[cut:].strip()
            if len(s) >= 3:
                out.append(s)
    return out


class TermWeights:
    """Global idf of stemmed terms from the index's keyword index (its live document frequencies)."""

    def __init__(self, index):
        searcher = index.searcher()
        kw = getattr(searcher.retrievers.get("bm25"), "index", None)
        self.tokens = searcher.stemmer.tokens  # text -> stemmed terms, as the keyword index tokenises
        self._kw = kw
        self.n_docs = max(1, len(kw) if kw is not None else 1)
        self._df: dict[str, int] = {}

    def df(self, term: str) -> int:
        if term not in self._df:
            self._df[term] = self._kw.document_frequency(term) if self._kw is not None else 0
        return self._df[term]

    def idf(self, term: str) -> float:
        """BM25's idf, floored at a small positive value (Robertson–Spärck Jones with +1 inside the log)."""
        df = self.df(term)
        return max(0.05, math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5)))


def score_sentences(index, question: str, places: Sequence[Place], weights: TermWeights,
                    max_places: int = PLACES, encode_top: int = ENCODE_TOP, context: str = "") -> list[Sentence]:
    """Every sentence of the top places, scored against the question, best first. `context` (words a follow-up
    borrowed from the conversation) is part of the dense query, and counts in the term overlap at CONTEXT_WEIGHT
    of the question's own terms.

    Dense similarity is first the stored vector of the sentence's unit (free: read with the unit); the
    `encode_top` sentences that score best that way are then encoded and re-scored with their own vectors,
    so a question costs one small encoder batch however long its pages are."""
    sents: list[Sentence] = []
    for p in list(places)[:max_places]:
        for u in p.units:
            for s in split_sentences(u["text"] or ""):
                sents.append(Sentence(s, u, p))
    if not sents:
        return []
    captions: dict[str, set[str]] = {}  # place -> the terms of its table captions
    for s in sents:
        if _TABLE_CAPTION.match(s.text):
            captions.setdefault(s.place.key, set()).update(weights.tokens(s.text))
    q_idf = {t: weights.idf(t) for t in question_terms(context, weights)} if context else {}
    q_idf = {t: CONTEXT_WEIGHT * v for t, v in q_idf.items()}
    q_idf.update({t: weights.idf(t) for t in question_terms(question, weights)})
    q_weight = sum(q_idf.values()) or 1.0
    local = page_idf(q_idf, list(places)[:max_places], weights)
    q_disc = {t: v * local[t] for t, v in q_idf.items()}
    d_weight = sum(q_disc.values()) or 1.0
    enc = index.encoder("text")
    qv = np.asarray(enc.encode_queries([f"{question} {context}".strip()])[0], dtype=np.float32)
    top_score = max(p.score for p in places[:max_places]) or 1.0
    unit_dense: dict[str, float] = {}
    for s in sents:
        uid = s.unit["id"]
        if uid not in unit_dense:
            v = s.unit.get("vec_text")
            unit_dense[uid] = float(np.asarray(v, dtype=np.float32) @ qv) if v is not None else 0.0
        terms = set(weights.tokens(s.text))
        if s.place.key in captions and is_table_row(s.text):
            terms |= captions[s.place.key]  # a row holds values; what they measure is in its table's caption
        s.lex = sum(q_idf.get(t, 0.0) for t in terms) / q_weight
        s.lex_page = sum(q_disc.get(t, 0.0) for t in terms) / d_weight
        s.dense = unit_dense[uid]
        s.score = _mix(s, top_score)
    sents.sort(key=lambda s: -s.score)
    head = sents[:encode_top]
    sv = enc.encode_documents([s.text for s in head])
    for s, d in zip(head, (sv @ qv).tolist()):
        s.dense = float(d)
        s.score = _mix(s, top_score)
    head.sort(key=lambda s: -s.score)
    return head


def is_table_row(text: str) -> bool:
    """A line of a table flattened into text: mostly values ("LoRA Tuning 786,432 1,474,560 Prompt Tuning ...")."""
    words = [w for w in re.split(r"[\s|]+", text) if w]  # markdown rows: "| LoRA Tuning | 786,432 |"
    n = sum(1 for w in words if _NUMERIC.match(w) and any(c.isdigit() for c in w))
    return n >= ROW_NUMBERS and n >= ROW_SHARE * len(words)


def page_idf(terms, places: Sequence[Place], weights: TermWeights) -> dict[str, float]:
    """Each term's idf among `places` (BM25's idf with the places as the documents): high for a term that few of
    the pages read for this question hold."""
    held = [set(weights.tokens(p.text())) for p in places]
    n = len(held)
    out = {}
    for t in terms:
        df = sum(t in h for h in held)
        out[t] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return out


def match_score(s: Sentence) -> float:
    """How well a sentence itself matches the question: the dense and term-overlap parts of its score."""
    return (W_DENSE * s.dense + W_LEX * s.lex) / (W_DENSE + W_LEX)


def _mix(s: Sentence, top_place: float) -> float:
    return W_DENSE * s.dense + W_LEX * s.lex_page + W_PLACE * (s.place.score / top_place)


def question_terms(question: str, weights: TermWeights) -> set[str]:
    """The stemmed terms of a question without question words ("what", "did", "how"...), which carry no topic."""
    from .rewrite import content_words

    return set(weights.tokens(" ".join(content_words(question))))


def specific_terms(question: str) -> list[str]:
    """Identifier-like names in a question (model, dataset and version names: letters mixed with digits such as
    'GPT-4' or 'BC2GM', with a size variant right after, as in 'GPT2 XL' or 'Llama-2 7B'), normalized.
    An answer about them needs evidence that names them."""
    out = set()
    for m in _CODE.finditer(question):
        name = m.group(0)
        nxt = _SUFFIX.match(question, m.end())
        out.add(normalize(name + (" " + nxt.group(1) if nxt else "")))
    return sorted(out)


def page_frames(index, cites: Sequence[dict]) -> dict:
    """(asset, page or None) -> [width, height] of the space the citations' boxes are in (page or image)."""
    return index.page_sizes(sorted({c["asset"] for c in cites}))


def unit_ref(row: dict[str, Any]) -> dict[str, Any]:
    bbox = row.get("bbox")
    return {"asset": row["asset_id"], "unit": row["id"], "kind": row["kind"], "page": row.get("page"),
            "bbox": [round(float(v), 2) for v in bbox] if bbox is not None else None, "path": row.get("path"),
            "type": row.get("asset_type")}
