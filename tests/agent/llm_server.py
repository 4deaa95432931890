"""A scripted OpenAI-compatible chat-completions server on a real loopback socket: the test double for a remote
model. It speaks the real wire protocol (JSON replies, or server-sent events when the request says `stream`),
plays one scripted step per request, and records every request it received.

A step is a dict: `content` (text), `tool_calls` ([(name, arguments-json-text)]), `refusal`, `status` (an HTTP
error code, with `retry_after`), `delay` (seconds before answering), `garbage` (a body that is not JSON, or a
stream chunk that is not JSON), `usage` (token counts to report; default: counted as words). When the script
runs out, `default` (a step) is played for every further request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client that timed out
            super().handle_error(request, client_address)


class ScriptedLLM:
    def __init__(self, script: list[dict[str, Any]] | None = None, default: dict[str, Any] | None = None):
        self.script = list(script or [])
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    step = outer.script.pop(0) if outer.script else outer.default
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if step is None:
                    return self._send(500, {"error": {"message": "script exhausted"}})
                if step.get("delay"):
                    time.sleep(step["delay"])
                if step.get("status"):
                    headers = {"Retry-After": str(step["retry_after"])} if "retry_after" in step else {}
                    return self._send(step["status"], {"error": {"message": step.get("message", "scripted error")}},
                                      headers)
                if body.get("stream"):
                    return self._stream(step, body)
                if step.get("garbage"):
                    return self._raw(200, b"this is not json", "application/json")
                msg: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
                if step.get("refusal"):
                    msg["refusal"] = step["refusal"]
                if step.get("tool_calls"):
                    msg["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                          "function": {"name": name, "arguments": args}}
                                         for i, (name, args) in enumerate(step["tool_calls"])]
                finish = "tool_calls" if step.get("tool_calls") else "stop"
                self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                                 "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                 "usage": outer._usage(step, body)})

            def _stream(self, step, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()

                def chunk(obj):
                    self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                    self.wfile.flush()

                self.wfile.write(b": keep-alive comment\n\n")
                chunk({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
                if step.get("garbage"):
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                if step.get("refusal"):
                    chunk({"choices": [{"index": 0, "delta": {"refusal": step["refusal"]}}]})
                text = step.get("content") or ""
                for i in range(0, len(text), 7):  # several small deltas
                    chunk({"choices": [{"index": 0, "delta": {"content": text[i:i + 7]}}]})
                    if step.get("stall"):
                        time.sleep(step["stall"])
                for i, (name, args) in enumerate(step.get("tool_calls") or []):
                    chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
                        {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": ""}}]}}]})
                    half = len(args) // 2
                    for piece in (args[:half], args[half:]):
                        chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
                            {"index": i, "function": {"arguments": piece}}]}}]})
                finish = "tool_calls" if step.get("tool_calls") else "stop"
                chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    chunk({"choices": [], "usage": outer._usage(step, body)})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _send(self, code, obj, headers=None):
                self._raw(code, json.dumps(obj).encode(), "application/json", headers)

            def _raw(self, code, data, ctype, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _usage(step, body) -> dict[str, int]:
        if "usage" in step:
            return step["usage"]
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        out = len((step.get("content") or "").split()) + sum(len(a) // 4 for _, a in step.get("tool_calls") or [])
        return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}

    def __enter__(self) -> "ScriptedLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
