"""Ask and deep search over an index: answers with citations; the LLM client protocol."""

from .ask import ABSTAIN, Answer, AskOptions, ask
from .base import LLM, Reply, ToolCall, Usage
from .openai import LLMConfig, OpenAIChat

__all__ = ["ABSTAIN", "Answer", "AskOptions", "ask", "LLM", "Reply", "ToolCall", "Usage", "LLMConfig", "OpenAIChat"]
