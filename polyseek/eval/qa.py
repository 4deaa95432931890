"""Question answering evaluation: answers, abstentions, citations and evidence against a QA set.

A QA set is a benchmark folder whose `queries.jsonl` rows carry `answers` (a list of alternatives, each a list
of strings that must all occur in a correct answer; `[]` for an unanswerable question) and `evidence`
(`"<asset id>#p<page>"` strings; or `doc` + `pages`). Matching rule: both sides normalized (NFKC, lower case,
non-alphanumerics to spaces, spaces collapsed), then substring containment — the rule of the docqa sets.

Metrics (per question, then means):
- answer_accuracy: answerable questions answered correctly (an abstention is wrong).
- abstain_accuracy: unanswerable questions where the system abstained; false_abstain: answerable ones where it did.
- citation_precision: of the pages cited, the share that hold evidence (questions with at least one citation).
- citation_recall: of the evidence pages, the share cited (answerable questions).
- evidence_recall@5: of the evidence pages, the share among the first five places the retrieval ranked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..agent.evidence import normalize
from ..errors import ConfigError, NotFoundError
from .datasets import read_jsonl


@dataclass
class QAItem:
    id: str
    text: str
    answers: list[list[str]]
    evidence: list[str]  # "<asset>#p<page>" or unit ids
    type: str = ""
    image_only: bool = False

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class QASet:
    name: str
    path: Path
    items: list[QAItem] = field(default_factory=list)
    corpus: Path | None = None


def is_correct(answer: str, alternatives: Sequence[Sequence[str]]) -> bool:
    """True when every string of at least one alternative occurs in the normalized answer."""
    a = normalize(answer)
    return any(all(normalize(x) in a for x in alt) for alt in alternatives)


def _evidence(rec: dict) -> list[str]:
    if isinstance(rec.get("evidence"), list):
        return [str(e) for e in rec["evidence"]]
    doc, pages = rec.get("doc"), rec.get("pages") or []
    if doc is None:
        return []
    if isinstance(doc, list):
        return [f"{d}#p{p}" for d, ps in zip(doc, pages) for p in ps]
    return [f"{doc}#p{p}" for p in pages]


def is_qa_set(path: str | Path) -> bool:
    """Whether the folder's queries carry `answers` (a QA set rather than a retrieval benchmark)."""
    q = Path(path) / "queries.jsonl"
    if not q.is_file():
        return False
    with open(q, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return "answers" in json.loads(line)
    return False


def load_qa(path: str | Path) -> QASet:
    root = Path(path).expanduser().resolve()
    qfile = root / "queries.jsonl"
    if not qfile.is_file():
        raise NotFoundError(f"{root} has no queries.jsonl; a QA set needs one with 'answers' on every row")
    items = []
    for n, rec in read_jsonl(qfile):
        answers = rec.get("answers")
        if not isinstance(answers, list) or not all(isinstance(a, list) for a in answers):
            raise ConfigError(f"{qfile}:{n}: 'answers' must be a list of lists of strings ([] if unanswerable)")
        if not rec.get("text") or "id" not in rec:
            raise ConfigError(f"{qfile}:{n}: a question needs 'id' and 'text'")
        items.append(QAItem(str(rec["id"]), rec["text"], answers, _evidence(rec), rec.get("type", ""),
                            bool(rec.get("image_only"))))
    corpus = root / "corpus" if (root / "corpus").is_dir() else None
    return QASet(root.name, root, items, corpus)


def _page_of(c: dict) -> str:
    return f"{c['asset']}#p{c['page']}" if c.get("page") is not None else c["unit"]


def score_answer(item: QAItem, ans: dict[str, Any]) -> dict[str, Any]:
    """One question's scores from an answer dict (Answer.to_dict())."""
    abstained = bool(ans.get("abstained"))
    cited = [_page_of(c) for c in ans.get("citations", [])]
    gold = set(item.evidence)
    top5: list[str] = []
    for e in ans.get("evidence", []):
        key = e["place"]
        if key not in top5:
            top5.append(key)
        if len(top5) == 5:
            break
    out: dict[str, Any] = {"id": item.id, "type": item.type, "answerable": item.answerable, "abstained": abstained,
                           "citations": len(cited), "seconds": ans.get("seconds"),
                           "tokens": ans.get("usage", {}).get("total_tokens", 0)}
    if item.answerable:
        out["correct"] = (not abstained) and is_correct(ans.get("answer", ""), item.answers)
        out["citation_recall"] = len(gold & set(cited)) / len(gold) if gold else None
        out["evidence_recall@5"] = len(gold & set(top5)) / len(gold) if gold else None
        if cited:
            out["citation_precision"] = sum(c in gold for c in cited) / len(cited)
    else:
        out["abstain_correct"] = abstained
        if cited:
            out["citation_precision"] = 0.0  # an answer to an unanswerable question cites nothing that holds it
    return out


def aggregate_qa(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def mean(key, pred=lambda r: True):
        vals = [r[key] for r in rows if pred(r) and r.get(key) is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    ans = [r for r in rows if r["answerable"]]
    un = [r for r in rows if not r["answerable"]]
    secs = [r["seconds"] for r in rows if r.get("seconds") is not None]
    return {
        "answer_accuracy": mean("correct"),
        "abstain_accuracy": mean("abstain_correct"),
        "abstained_unanswerable": f"{sum(r['abstain_correct'] for r in un)}/{len(un)}",
        "false_abstain": round(sum(r["abstained"] for r in ans) / len(ans), 4) if ans else None,
        "citation_precision": mean("citation_precision"),
        "citation_recall": mean("citation_recall"),
        "evidence_recall@5": mean("evidence_recall@5"),
        "seconds_per_question": round(float(np.mean(secs)), 3) if secs else None,
        "seconds_p95": round(float(np.percentile(secs, 95)), 3) if secs else None,
        "tokens_per_question": round(float(np.mean([r["tokens"] for r in rows])), 1) if rows else 0,
        "questions": len(rows),
    }


def by_type(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    types = sorted({r["type"] for r in rows})
    return {t: aggregate_qa([r for r in rows if r["type"] == t]) for t in types}


MODES = ("extractive", "deep", "llm", "deep-llm")


def run_qa(qa: QASet, index, modes: Sequence[str] = ("extractive",), *, llm=None, options=None,
           progress: bool = False, limit: int | None = None) -> dict[str, Any]:
    """Ask every question in each mode; per-question scores, means, means per question type."""
    import dataclasses

    from ..agent.ask import AskOptions, ask

    base = options or AskOptions()
    results = []
    items = qa.items[:limit] if limit else qa.items
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown ask mode {mode!r}; choose from: {', '.join(MODES)}")
        if mode in ("llm", "deep-llm") and llm is None:
            raise ConfigError(f"mode {mode!r} needs a model: give --llm-url (or set POLYSEEK_LLM_URL)")
        opts = dataclasses.replace(base, deep=mode.startswith("deep"))
        model = llm if mode in ("llm", "deep-llm") else None
        rows, answers = [], []
        t0 = time.perf_counter()
        for i, item in enumerate(items, 1):
            a = ask(index, item.text, llm=model, options=opts).to_dict()
            answers.append({"id": item.id, **{k: a[k] for k in ("answer", "abstained", "citations", "mode")}})
            rows.append(score_answer(item, a))
            if progress:
                import sys

                print(f"\r{mode}: {i}/{len(items)}", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        results.append({"name": mode, "model": getattr(model, "model", None), "metrics": aggregate_qa(rows),
                        "by_type": by_type(rows), "per_question": rows, "answers": answers,
                        "total_s": round(time.perf_counter() - t0, 2)})
    return {"bench": qa.name, "task": "qa", "questions": len(items), "results": results}
