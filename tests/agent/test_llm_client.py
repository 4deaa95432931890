"""The OpenAI-compatible client against a scripted server on a real socket: replies, streaming, tool calls,
retries, timeouts, refusals, malformed output, keys and cost accounting."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("httpx")

from polyseek.agent import LLMConfig, OpenAIChat  # noqa: E402
from polyseek.agent.base import parse_json_object  # noqa: E402
from polyseek.errors import LLMError  # noqa: E402

from .llm_server import ScriptedLLM  # noqa: E402

MSG = [{"role": "user", "content": "hello there"}]


def client(srv, **kw) -> OpenAIChat:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIChat(LLMConfig(base_url=srv.url, model="test-model", **kw))


@pytest.mark.parametrize("stream", [False, True])
def test_reply_usage_and_cost(stream):
    with ScriptedLLM([{"content": "The answer is 42.", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}]) as srv:
        llm = client(srv, stream=stream, price_in_per_mtok=2.0, price_out_per_mtok=10.0)
        tokens = []
        r = llm.chat(MSG, on_token=tokens.append)
    assert r.content == "The answer is 42."
    assert "".join(tokens) == r.content
    if stream:
        assert len(tokens) > 1  # arrived in pieces
        assert srv.requests[0]["stream"] is True and srv.requests[0]["stream_options"] == {"include_usage": True}
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.calls) == (1000, 500, 1)
    assert r.usage.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    assert not r.usage.estimated
    assert srv.requests[0]["model"] == "test-model"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_joined_and_parsed(stream):
    args = json.dumps({"query": "solar panel efficiency", "k": 3})
    with ScriptedLLM([{"tool_calls": [("search_text", args), ("reflect", "{}")]}]) as srv:
        r = client(srv, stream=stream).chat(MSG, tools=[{"type": "function", "function": {"name": "search_text"}}])
    assert [c.name for c in r.tool_calls] == ["search_text", "reflect"]
    assert r.tool_calls[0].args() == {"query": "solar panel efficiency", "k": 3}
    assert r.finish_reason == "tool_calls"
    assert srv.requests[0]["tools"][0]["function"]["name"] == "search_text"
    assert r.message()["tool_calls"][0]["function"]["arguments"] == args


def test_bad_tool_arguments_say_what_is_wrong():
    with ScriptedLLM([{"tool_calls": [("open", "{unit: 3")]}]) as srv:
        r = client(srv, stream=False).chat(MSG)
    with pytest.raises(LLMError, match="not JSON"):
        r.tool_calls[0].args()


def test_retries_5xx_and_429_then_succeeds():
    script = [{"status": 503}, {"status": 429, "retry_after": 0}, {"content": "ok"}]
    with ScriptedLLM(script) as srv:
        r = client(srv, retries=2).chat(MSG)
    assert r.content == "ok" and r.usage.retries == 2 and len(srv.requests) == 3


def test_gives_up_after_retries_with_a_clear_message():
    with ScriptedLLM(default={"status": 500}) as srv:
        with pytest.raises(LLMError, match=r"HTTP 500 \(gave up after 3 attempt"):
            client(srv, retries=2).chat(MSG)
    assert len(srv.requests) == 3


def test_timeout_is_retried_then_reported():
    with ScriptedLLM(default={"delay": 6.0, "content": "late"}) as srv:
        t0 = time.perf_counter()
        with pytest.raises(LLMError, match="Timeout.*gave up after 2 attempt"):
            client(srv, timeout_s=0.3, retries=1, stream=False).chat(MSG)
        # did not wait for the slow server (two 0.3 s attempts; the wide margin keeps a loaded machine from failing it)
        assert time.perf_counter() - t0 < 4.0


def test_auth_error_is_not_retried_and_names_the_key(monkeypatch):
    monkeypatch.setenv("POLYSEEK_LLM_KEY", "sk-test-123")
    with ScriptedLLM([{"status": 401, "message": "bad key"}]) as srv:
        cfg = LLMConfig.from_env(srv.url, "m", backoff_s=0.01)
        assert "sk-test" not in repr(cfg)  # the key never shows in logs or reprs
        with pytest.raises(LLMError, match="HTTP 401: bad key.*POLYSEEK_LLM_KEY"):
            OpenAIChat(cfg).chat(MSG)
    assert len(srv.requests) == 1
    assert srv.headers[0]["authorization"] == "Bearer sk-test-123"


def test_malformed_stream_and_body():
    with ScriptedLLM([{"garbage": True}, {"garbage": True}]) as srv:
        with pytest.raises(LLMError, match="not JSON"):
            client(srv, stream=True).chat(MSG)
        with pytest.raises(LLMError, match="not a chat completion"):
            client(srv, stream=False).chat(MSG)


def test_refusal_is_reported():
    with ScriptedLLM([{"refusal": "I can't help with that."}]) as srv:
        r = client(srv, stream=True).chat(MSG)
    assert r.refusal == "I can't help with that." and r.content == ""


def test_chat_json_asks_again_then_gives_up():
    good = {"query": "standalone question", "variants": ["a b"]}
    with ScriptedLLM([{"content": "Sure! Here you go"}, {"content": "```json\n" + json.dumps(good) + "\n```"}]) as srv:
        assert client(srv).chat_json(MSG) == good
        assert srv.requests[1]["messages"][-1]["content"].startswith("That was not a valid JSON")
        assert srv.requests[0]["response_format"] == {"type": "json_object"}
    with ScriptedLLM(default={"content": "no json here"}) as srv:
        with pytest.raises(LLMError, match="did not return a JSON object after 2"):
            client(srv).chat_json(MSG)


def test_usage_estimated_when_the_server_reports_none():
    with ScriptedLLM([{"content": "x" * 40, "usage": {}}]) as srv:
        r = client(srv, stream=False).chat(MSG)
    assert r.usage.estimated and r.usage.completion_tokens == 10


def test_parse_json_object_finds_embedded_objects():
    assert parse_json_object('prose {"a": 1} more') == {"a": 1}
    assert parse_json_object("[1, 2]") is None
    assert parse_json_object("") is None


def test_bad_url_and_unconfigured(monkeypatch):
    from polyseek.errors import ConfigError

    monkeypatch.delenv("POLYSEEK_LLM_URL", raising=False)
    assert LLMConfig.from_env() is None
    with pytest.raises(ConfigError, match="must start with http"):
        OpenAIChat(LLMConfig(base_url="localhost:11434"))
