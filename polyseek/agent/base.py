"""The language-model interface the agent talks to, and the records of what it cost.

`LLM.chat` is the one required method (messages in, one `Reply` out, tokens streamed to `on_token`);
`chat_json` is built on it. Backends: `openai.py` (any OpenAI-compatible chat-completions server).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Sequence

from ..errors import LLMError

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant"|"tool", "content": str | [parts], ...}


@dataclass
class Usage:
    """Tokens and money spent; `estimated` when a server did not report token counts (chars / 4 then)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    retries: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: "Usage") -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.seconds += other.seconds
        self.retries += other.retries
        self.estimated = self.estimated or other.estimated

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        d["cost_usd"] = round(self.cost_usd, 6)
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model wrote it; `args()` parses it

    def args(self) -> dict[str, Any]:
        """The arguments as a dict; LLMError (with what was wrong) when the model wrote bad JSON."""
        try:
            val = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as e:
            raise LLMError(f"tool call {self.name!r} has arguments that are not JSON ({e.msg}): "
                           f"{self.arguments[:200]!r}") from None
        if not isinstance(val, dict):
            raise LLMError(f"tool call {self.name!r} arguments must be a JSON object, got {type(val).__name__}")
        return val

    def to_message(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Reply:
    """One assistant turn: text and/or tool calls, why it stopped, a refusal if the model refused."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    refusal: str | None = None
    usage: Usage = field(default_factory=Usage)

    def message(self) -> Message:
        """This reply as an assistant message to append to the conversation."""
        m: Message = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            m["tool_calls"] = [t.to_message() for t in self.tool_calls]
        return m


class LLM:
    """A chat model. Capabilities are attributes: `vision` (accepts image parts), `tools` (function calling)."""

    name: ClassVar[str] = ""
    model: str = ""
    vision: bool = False
    tools: bool = True

    def chat(self, messages: Sequence[Message], *, tools: Sequence[dict] | None = None, json_mode: bool = False,
             max_tokens: int | None = None, on_token: Callable[[str], None] | None = None) -> Reply:
        """One completion. `on_token` receives text as it streams (backends that cannot stream call it once)."""
        raise NotImplementedError

    def chat_json(self, messages: Sequence[Message], *, max_tokens: int | None = None, usage: Usage | None = None,
                  attempts: int = 2) -> dict[str, Any]:
        """A JSON object from the model: asks for JSON mode, pulls the first {...} out of the text, and asks once
        more (saying what was wrong) when it is not valid. LLMError when no attempt gives an object."""
        msgs = list(messages)
        last = ""
        for _ in range(max(1, attempts)):
            reply = self.chat(msgs, json_mode=True, max_tokens=max_tokens)
            if usage is not None:
                usage.add(reply.usage)
            if reply.refusal:
                raise LLMError(f"the model refused: {reply.refusal}")
            obj = parse_json_object(reply.content)
            if obj is not None:
                return obj
            last = reply.content
            msgs = msgs + [{"role": "assistant", "content": reply.content},
                           {"role": "user", "content": "That was not a valid JSON object. Reply with only the JSON object."}]
        raise LLMError(f"the model did not return a JSON object after {attempts} attempt(s); last reply: {last[:200]!r}")


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (bare, or inside a ``` fence, or after some prose), else None."""
    if not text:
        return None
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:text.rfind("}") + 1])
    dec = json.JSONDecoder()
    for c in candidates:
        i = c.find("{")
        if i < 0:
            continue
        try:
            obj, _ = dec.raw_decode(c[i:])
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def image_part(image, max_side: int = 1024, fmt: str = "PNG") -> dict[str, Any]:
    """A PIL image as an OpenAI `image_url` content part (a base64 data URL), downscaled to `max_side`."""
    import base64
    import io

    im = image.convert("RGB")
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, int(im.width * s)), max(1, int(im.height * s))))
    buf = io.BytesIO()
    im.save(buf, fmt)
    mime = "image/png" if fmt.upper() == "PNG" else "image/jpeg"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"}}
