"""A tiny OpenAI-compatible chat-completions server on a real socket, standing in for a remote LLM in tests.

It answers like a model would: for a listwise prompt it ranks the numbered results by how many query words
each contains (so the expected order is known); for a pointwise prompt it grades the same overlap 0-10.
Every request body is recorded, so tests can check what the client sent.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _overlap(query: str, text: str) -> int:
    q = set(re.findall(r"\w+", query.lower()))
    return len(q & set(re.findall(r"\w+", text.lower())))


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions" or self.server.fail:
            self.send_response(500 if self.server.fail else 404)
            self.end_headers()
            self.wfile.write(b'{"error": "nope"}')
            return
        prompt = body["messages"][-1]["content"]
        query = re.search(r"Query: (.*)", prompt).group(1)
        if "Results:" in prompt:
            items = re.findall(r"^\[(\d+)\] (.*)$", prompt, re.M)
            order = sorted(items, key=lambda it: (-_overlap(query, it[1]), int(it[0])))
            answer = "Ranking: " + json.dumps([int(i) for i, _ in order])
        else:
            passage = re.search(r"Passage: (.*)", prompt).group(1)
            answer = str(min(10, 3 * _overlap(query, passage)))
        out = {"id": "x", "object": "chat.completion", "model": body["model"],
               "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LLMServer:
    def __enter__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []
        self.httpd.fail = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        return self

    @property
    def requests(self):
        return self.httpd.requests

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
