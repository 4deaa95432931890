"""Query rewriting: a follow-up question made standalone with the conversation so far, and query variants.

Without a model, a follow-up (one that leans on a pronoun, or names fewer than three content words) gets the
content words of the previous turn's question appended: the history-concatenation baseline of conversational
query reformulation (TREC CAsT; "TTR"-style rewriting is the model-driven version, used when an LLM is set).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ..errors import LLMError

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-']*")
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "does", "did", "do",
                   "is", "are", "was", "were", "according", "many", "much", "name", "named", "tell", "give",
                   "should", "would", "could", "can", "be", "been"}
_ANAPHORA = {"it", "its", "they", "them", "their", "this", "that", "these", "those", "he", "she", "his", "her",
             "there", "same", "former", "latter"}


def _stopwords() -> set[str]:
    from bm25s.tokenization import STOPWORDS_EN

    return set(STOPWORDS_EN) | _QUESTION_WORDS


def content_words(text: str) -> list[str]:
    """The words of `text` that are not stopwords or question words, in order, without repeats."""
    stop = _stopwords()
    seen, out = set(), []
    for w in _WORD.findall(text or ""):
        lw = w.lower()
        if lw in stop or len(lw) < 2 or lw in seen:
            continue
        seen.add(lw)
        out.append(w)
    return out


def is_follow_up(question: str) -> bool:
    words = [w.lower() for w in _WORD.findall(question)]
    return bool(set(words) & _ANAPHORA) or len(content_words(question)) < 3


def rewrite_offline(question: str, history: Sequence[dict[str, Any]]) -> str:
    """The question made standalone by appending the previous question's content words it lacks."""
    if not history or not is_follow_up(question):
        return question
    have = {w.lower() for w in content_words(question)}
    prev = history[-1].get("rewritten") or history[-1].get("question") or ""
    extra = [w for w in content_words(prev) if w.lower() not in have]
    return f"{question} ({' '.join(extra)})" if extra else question


def keyword_variant(question: str) -> str:
    return " ".join(content_words(question))


REWRITE_PROMPT = (
    "You rewrite a user's question into a standalone search query for a document index. Use the conversation to "
    "resolve pronouns and ellipsis. Keep names, numbers and quoted terms exactly. Reply with a JSON object: "
    '{"query": "<standalone question>", "variants": ["<keyword query>", "<another phrasing>"]}')


def rewrite_with_llm(llm, question: str, history: Sequence[dict[str, Any]], usage) -> tuple[str, list[str]]:
    """(standalone question, variants) from the model; LLMError when it fails or answers nonsense."""
    turns = "\n".join(f"Q: {t.get('question', '')}\nA: {(t.get('answer') or '')[:300]}" for t in history)
    msgs = [{"role": "system", "content": REWRITE_PROMPT},
            {"role": "user", "content": (f"Conversation so far:\n{turns}\n\n" if turns else "") + f"Question: {question}"}]
    obj = llm.chat_json(msgs, max_tokens=200, usage=usage)
    q = obj.get("query")
    if not isinstance(q, str) or not q.strip():
        raise LLMError(f"the rewrite has no 'query' string: {str(obj)[:200]}")
    variants = [v for v in obj.get("variants") or [] if isinstance(v, str) and v.strip()][:3]
    return q.strip(), variants
