"""LLM reranker through an OpenAI-compatible chat-completions endpoint.

Listwise (`llm`): one prompt lists the candidates and asks for their order (RankGPT, Sun et al. 2023); the
candidates are shown in first-pass order, which biases the model towards it (positional bias, as MM-R5 and
ImageScope note), so the first-pass order is also the tie-break. Pointwise (`llm-pointwise`): one prompt per
candidate asks for a 0-10 relevance grade (Liang et al. 2022's HELM relevance prompt style).

The client is a minimal one (`ChatClient`: one `complete(messages)` method) so the agent's client can replace it.
Spec: `llm:MODEL@BASE_URL` (e.g. `llm:qwen2.5:0.5b@http://127.0.0.1:11434/v1`); the key comes from
POLYSEEK_LLM_API_KEY or OPENAI_API_KEY when the server needs one.
"""

from __future__ import annotations

import json
import os
import re
from typing import Protocol, Sequence

from ...errors import ConfigError, PolyseekError
from ...types import Query
from .base import Doc, ScoringReranker, rerankers


class LLMError(PolyseekError):
    """The LLM endpoint failed or answered something unusable."""


class ChatClient(Protocol):
    def complete(self, messages: list[dict], **kw) -> str: ...


class OpenAICompatClient:
    """POST {base_url}/chat/completions with httpx; returns the first choice's message content."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM base URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else (os.environ.get("POLYSEEK_LLM_API_KEY")
                                                            or os.environ.get("OPENAI_API_KEY"))
        self.timeout = timeout

    def complete(self, messages: list[dict], **kw) -> str:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "temperature": 0, **kw}
        try:
            r = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise LLMError(f"LLM endpoint {self.base_url} unreachable: {e}") from None
        if r.status_code != 200:
            raise LLMError(f"LLM endpoint {self.base_url} answered {r.status_code}: {r.text[:200]}")
        try:
            return r.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"LLM endpoint {self.base_url} sent no chat completion: {r.text[:200]}") from None


def parse_llm_spec(arg: str) -> tuple[str, str]:
    """'MODEL@URL' -> (model, url); the URL defaults to POLYSEEK_LLM_URL."""
    model, sep, url = arg.rpartition("@") if "@" in arg else (arg, "", "")
    url = url or os.environ.get("POLYSEEK_LLM_URL", "")
    if not model or not url:
        raise ConfigError("LLM reranker spec is llm:MODEL@BASE_URL (e.g. llm:my-model@http://127.0.0.1:8000/v1), "
                          "or set POLYSEEK_LLM_URL")
    return model, url


def _doc(c: Doc, chars: int) -> str:
    return " ".join((c.text or "").split())[:chars]


@rerankers.register("llm")
class ListwiseLLMReranker(ScoringReranker):
    name = "llm"
    batch_size = 20  # one prompt ranks this many candidates

    def __init__(self, client: ChatClient, *, max_chars: int = 500):
        self.client = client
        self.max_chars = max_chars

    @classmethod
    def from_spec(cls, arg: str, **kw):
        model, url = parse_llm_spec(arg)
        return cls(kw.get("client") or OpenAICompatClient(url, model))

    def score(self, query: Query, docs: Sequence[Doc]) -> list[float]:
        if not docs:
            return []
        listing = "\n".join(f"[{i + 1}] {_doc(d, self.max_chars)}" for i, d in enumerate(docs))
        msgs = [
            {"role": "system", "content": "You rank search results by relevance to a query."},
            {"role": "user", "content": f"Query: {query.text or ''}\n\nResults:\n{listing}\n\n"
             f"Answer with the result numbers from most to least relevant as a JSON list, e.g. [2, 1, 3]."},
        ]
        order = parse_order(self.client.complete(msgs), len(docs))
        n = len(docs)
        pos = {i: r for r, i in enumerate(order)}
        # Unlisted candidates go after the listed ones, in first-pass order.
        return [float(n - pos[i]) if i in pos else float(-i) / n for i in range(n)]


@rerankers.register("llm-pointwise")
class PointwiseLLMReranker(ListwiseLLMReranker):
    name = "llm-pointwise"
    batch_size = 1

    def score(self, query: Query, docs: Sequence[Doc]) -> list[float]:
        out = []
        for d in docs:
            msgs = [
                {"role": "system", "content": "You grade how well a passage answers a search query."},
                {"role": "user", "content": f"Query: {query.text or ''}\n\nPassage: {_doc(d, self.max_chars)}\n\n"
                 f"Grade its relevance from 0 (unrelated) to 10 (answers it). Answer with the number only."},
            ]
            out.append(parse_grade(self.client.complete(msgs)))
        return out


def parse_order(text: str, n: int) -> list[int]:
    """0-based candidate indices from an answer like '[3, 1, 2]' or '3 > 1 > 2'; repeats and out-of-range dropped."""
    m = re.search(r"\[[^\]]*\]", text)
    nums: list = []
    if m:
        try:
            nums = json.loads(m.group(0))
        except ValueError:
            nums = []
    if not nums:
        nums = re.findall(r"\d+", text)
    out, seen = [], set()
    for x in nums:
        try:
            i = int(x) - 1
        except (TypeError, ValueError):
            continue
        if 0 <= i < n and i not in seen:
            seen.add(i)
            out.append(i)
    if not out:
        raise LLMError(f"LLM reranker: no ranking in the answer {text[:200]!r}")
    return out


def parse_grade(text: str) -> float:
    m = re.search(r"-?\d+(?:\.\d+)?", text)
    if not m:
        raise LLMError(f"LLM reranker: no grade in the answer {text[:200]!r}")
    return max(0.0, min(10.0, float(m.group(0))))
