"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama, hosted APIs) over httpx.

Streaming is server-sent events (`data: {chunk}` lines, `data: [DONE]`); tool-call arguments arrive in pieces
keyed by `index` and are joined. Timeouts, connection errors, 429 and 5xx are retried with exponential backoff
(honouring `Retry-After`); other 4xx fail at once with the server's message. Token counts come from the
server's `usage` (requested in streams with `stream_options.include_usage`), else are estimated at chars / 4.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import ConfigError, LLMError, MissingDependencyError
from .base import LLM, Message, Reply, ToolCall, Usage

ENV_URL = "POLYSEEK_LLM_URL"
ENV_MODEL = "POLYSEEK_LLM_MODEL"
ENV_KEYS = ("POLYSEEK_LLM_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """Where the model is and how patient to be with it. The key is read from the environment, never stored."""

    base_url: str  # e.g. http://localhost:11434/v1 (Ollama), http://localhost:8080/v1 (llama.cpp), .../v1 (vLLM)
    model: str = "default"
    api_key: str | None = dataclasses.field(default=None, repr=False)
    timeout_s: float = 60.0  # per request: connect, and each read of the (streamed) body
    retries: int = 2  # extra attempts after a timeout, a dropped connection, 429 or 5xx
    backoff_s: float = 0.5
    stream: bool = True
    temperature: float = 0.0
    vision: bool = False  # send images (data URLs) to the model
    price_in_per_mtok: float = 0.0  # USD per million prompt tokens, for cost accounting
    price_out_per_mtok: float = 0.0

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, **kw) -> "LLMConfig | None":
        """The configured endpoint (arguments first, then POLYSEEK_LLM_URL / POLYSEEK_LLM_MODEL, the key from
        POLYSEEK_LLM_KEY or OPENAI_API_KEY), or None when no endpoint is configured."""
        url = base_url or os.environ.get(ENV_URL)
        if not url:
            return None
        key = next((os.environ[k] for k in ENV_KEYS if os.environ.get(k)), None)
        vision = os.environ.get("POLYSEEK_LLM_VISION", "").lower() in ("1", "true", "yes")
        return cls(base_url=url, model=model or os.environ.get(ENV_MODEL) or "default", api_key=key,
                   vision=kw.pop("vision", vision), **kw)


class OpenAIChat(LLM):
    name = "openai"

    def __init__(self, config: LLMConfig):
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("asking a language model needs httpx: pip install 'polyseek[ask]'") from None
        if not config.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM url {config.base_url!r} must start with http:// or https://, "
                              f"e.g. http://localhost:11434/v1")
        self.config = config
        self.model = config.model
        self.vision = config.vision
        self._httpx = httpx
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._client = httpx.Client(base_url=config.base_url.rstrip("/") + "/", headers=headers,
                                    timeout=httpx.Timeout(config.timeout_s))

    def close(self) -> None:
        self._client.close()

    def chat(self, messages: Sequence[Message], *, tools: Sequence[dict] | None = None, json_mode: bool = False,
             max_tokens: int | None = None, on_token: Callable[[str], None] | None = None) -> Reply:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "temperature": self.config.temperature}
        if tools:
            body["tools"] = list(tools)
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        if max_tokens:
            body["max_tokens"] = max_tokens
        stream = self.config.stream
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        t0 = time.perf_counter()
        retries = 0
        while True:
            try:
                reply = self._stream(body, on_token) if stream else self._once(body, on_token)
                break
            except _Retryable as e:
                if retries >= self.config.retries:
                    raise LLMError(f"{self.config.base_url}: {e.why} (gave up after {retries + 1} attempt(s))") from None
                time.sleep(min(e.wait if e.wait is not None else self.config.backoff_s * 2 ** retries, 30.0))
                retries += 1
        u = reply.usage
        u.calls, u.retries, u.seconds = 1, retries, time.perf_counter() - t0
        if not (u.prompt_tokens or u.completion_tokens):
            u.estimated = True
            u.prompt_tokens = sum(len(json.dumps(m.get("content") or "")) for m in messages) // 4
            u.completion_tokens = (len(reply.content) + sum(len(t.arguments) for t in reply.tool_calls)) // 4
        u.cost_usd = (u.prompt_tokens * self.config.price_in_per_mtok
                      + u.completion_tokens * self.config.price_out_per_mtok) / 1e6
        return reply

    # -- transport ----------------------------------------------------------------------------------
    def _post_error(self, resp) -> None:
        code = resp.status_code
        if code == 429 or code >= 500:
            wait = resp.headers.get("retry-after")
            try:
                w = float(wait) if wait is not None else None
            except ValueError:
                w = None
            raise _Retryable(f"HTTP {code}", w)
        if code >= 400:
            try:
                detail = resp.json().get("error", {})
                msg = detail.get("message") if isinstance(detail, dict) else str(detail)
            except (ValueError, AttributeError):
                msg = resp.text[:300]
            hint = " (check POLYSEEK_LLM_KEY / OPENAI_API_KEY)" if code in (401, 403) else ""
            hint = hint or (" (check --llm-model; the server does not know it)" if code == 404 else "")
            raise LLMError(f"{self.config.base_url} answered HTTP {code}: {msg}{hint}")

    def _once(self, body, on_token) -> Reply:
        httpx = self._httpx
        try:
            resp = self._client.post("chat/completions", json=body)
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from None
        self._post_error(resp)
        return self._parse_plain(resp, on_token)

    def _stream(self, body, on_token) -> Reply:
        httpx = self._httpx
        reply = Reply()
        parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        got_any = False
        try:
            with self._client.stream("POST", "chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._post_error(resp)
                ctype = resp.headers.get("content-type", "")
                if "text/event-stream" not in ctype:  # a server that ignores `stream`: one JSON reply
                    resp.read()
                    return self._parse_plain(resp, on_token)
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue  # comments (": keep-alive"), event names, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError:
                        raise LLMError(f"{self.config.base_url} streamed a chunk that is not JSON: {data[:200]!r}") from None
                    if "error" in chunk:
                        err = chunk["error"]
                        raise LLMError(f"{self.config.base_url} reported an error mid-stream: "
                                       f"{err.get('message') if isinstance(err, dict) else err}")
                    got_any = True
                    _usage(reply.usage, chunk.get("usage"))
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            parts.append(delta["content"])
                            if on_token:
                                on_token(delta["content"])
                        if delta.get("refusal"):
                            reply.refusal = (reply.refusal or "") + delta["refusal"]
                        for tc in delta.get("tool_calls") or []:
                            slot = calls.setdefault(int(tc.get("index", len(calls))), {"id": None, "name": "", "args": []})
                            slot["id"] = tc.get("id") or slot["id"]
                            fn = tc.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["args"].append(fn.get("arguments") or "")
                        if choice.get("finish_reason"):
                            reply.finish_reason = choice["finish_reason"]
        except (httpx.TimeoutException, httpx.TransportError) as e:
            if parts and on_token:  # tokens were already shown: retrying would show them twice
                raise LLMError(f"{self.config.base_url}: the stream broke off ({type(e).__name__})") from None
            raise _Retryable(f"{type(e).__name__}: {e}") from None
        if not got_any:
            raise _Retryable("the stream ended without any chunk")
        reply.content = "".join(parts)
        for i in sorted(calls):
            c = calls[i]
            reply.tool_calls.append(ToolCall(c["id"] or f"call_{i}", c["name"], "".join(c["args"])))
        return reply

    def _parse_plain(self, resp, on_token) -> Reply:
        """A whole (non-streamed) chat completion."""
        try:
            data = resp.json()
            choice = data["choices"][0]
            msg = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.config.base_url} sent a reply that is not a chat completion: {resp.text[:200]!r}") from None
        reply = Reply(content=msg.get("content") or "", finish_reason=choice.get("finish_reason"),
                      refusal=msg.get("refusal"))
        for i, tc in enumerate(msg.get("tool_calls") or []):
            fn = tc.get("function") or {}
            reply.tool_calls.append(ToolCall(tc.get("id") or f"call_{i}", fn.get("name", ""), fn.get("arguments") or ""))
        _usage(reply.usage, data.get("usage"))
        if on_token and reply.content:
            on_token(reply.content)
        return reply


class _Retryable(Exception):
    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.why = why
        self.wait = wait


def _usage(u: Usage, d: dict | None) -> None:
    if isinstance(d, dict):
        u.prompt_tokens = int(d.get("prompt_tokens") or u.prompt_tokens)
        u.completion_tokens = int(d.get("completion_tokens") or u.completion_tokens)
