"""POST /ask on the real server: JSON answers, server-sent events, sessions and bad requests."""

from __future__ import annotations

import json

Q = "What was the average conversion efficiency of polycrystalline cells?"


def parse_sse(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if data:
            out.append((kind, json.loads(data)))
    return out


def test_ask_json(client):
    r = client.post("/ask", json={"question": Q})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "17.9" in body["answer"] and not body["abstained"]
    c = body["citations"][0]
    assert c["asset"] == "report" and c["page"] == 2 and c["frame"] and len(c["bbox"]) == 4
    assert client.get(f"/assets/{c['asset']}/file", params={"page": c["page"], "width": 200}).status_code == 200
    assert set(body) >= {"answer", "citations", "steps", "usage"}


def test_ask_streams_events(client):
    with client.stream("POST", "/ask", json={"question": Q, "deep": True, "max_steps": 4},
                       headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode())
    kinds = [k for k, _ in events]
    assert kinds[0] == "step" and kinds[-1] == "answer" and "token" in kinds
    steps = [d["name"] for k, d in events if k == "step"]
    assert "search_text" in steps and len([s for s in steps if s in ("search_text", "crop", "reflect")]) <= 4
    assert "17.9" in events[-1][1]["answer"]


def test_ask_session_follow_up(client, index_path):
    client.post("/ask", json={"question": "At what temperature should green tea be brewed?", "session": "api-tea"})
    r = client.post("/ask", json={"question": "and for how long?", "session": "api-tea"})
    assert r.status_code == 200
    assert "tea" in r.json()["rewritten"].lower() and "two minutes" in r.json()["answer"]
    assert len(json.loads((index_path / "sessions" / "api-tea.json").read_text())["turns"]) == 2


def test_ask_bad_requests(client):
    assert client.post("/ask", json={"question": ""}).status_code == 422
    assert client.post("/ask", json={"question": "x", "session": "../../etc"}).status_code == 422
    r = client.post("/ask", json={"question": "x", "max_steps": 0})
    assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError"
    assert client.post("/ask", json={"question": "x", "surprise": 1}).status_code == 422


def _png(text: str, size=(360, 120)) -> bytes:
    import io

    from tests.fixtures import text_image

    buf = io.BytesIO()
    text_image(text, size=size).save(buf, "PNG")
    return buf.getvalue()


def _search_step(body: dict) -> dict:
    return next(s for s in body["steps"] if s["name"] == "search")


def test_ask_with_an_image_as_multipart_or_data_url(client):
    import base64

    img = _png("INVOICE 2024")
    r = client.post("/ask", data={"question": Q}, files={"image": ("q.png", img, "image/png")})
    assert r.status_code == 200, r.text
    assert _search_step(r.json())["image"] is True and "17.9" in r.json()["answer"]
    url = "data:image/png;base64," + base64.b64encode(img).decode()
    r = client.post("/ask", json={"question": Q, "image": url})
    assert r.status_code == 200, r.text
    assert _search_step(r.json())["image"] is True
    r = client.post("/ask", json={"question": Q})
    assert _search_step(r.json())["image"] is False
    with client.stream("POST", "/ask", data={"question": Q, "stream": "true"},
                       files={"image": ("q.png", img, "image/png")}) as r:
        events = parse_sse(r.read().decode())
    assert events[-1][0] == "answer" and _search_step(events[-1][1])["image"] is True


def test_ask_image_errors(client):
    from tests.serve.test_api import assert_error

    assert_error(client.post("/ask", json={"question": Q, "image": "https://example.com/a.png"}), 400, "data URL")
    assert_error(client.post("/ask", json={"question": Q, "image": "data:image/png;base64,@@@"}), 400, "base64")
    assert_error(client.post("/ask", data={"question": Q}, files={"image": ("q.png", b"not an image", "image/png")}),
                 400, "image")
    assert_error(client.post("/ask", data={"question": Q},
                             files={"image": ("big.png", _png("BIG", size=(1200, 1000)), "image/png")}), 413, "pixels")
    assert client.post("/ask", data={"deep": "true"}).status_code == 422  # no question
    assert_error(client.post("/ask", content=b"question", headers={"content-type": "text/plain"}), 415, "JSON")
