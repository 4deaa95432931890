"""The HTTP API against a real uvicorn server: search (JSON and multipart), assets, files, indexing, errors."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fixtures import text_image

HIT_KEYS = {"rank", "score", "asset", "unit", "snippet", "highlights", "signals"}


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def assert_error(r, status: int, *words: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"], body
    assert "Traceback" not in r.text
    for w in words:
        assert w.lower() in body["error"]["message"].lower(), body


def search(client, **body):
    r = client.post("/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_healthz_and_status(client):
    assert client.get("/healthz").json() == {"ok": True}
    st = client.get("/status").json()
    assert st["assets"] >= 8 and st["units"] > st["assets"] - 1
    assert "bm25" in st["signals"] and isinstance(st["image_search"], bool)
    assert st["server"]["auth"] is False


def test_search_json_has_cli_schema(client):
    res = search(client, text="polycrystalline", k=5, id="q1")
    assert res["id"] == "q1" and res["took_ms"] >= 0
    top = res["hits"][0]
    assert HIT_KEYS <= set(top)
    assert top["asset"]["id"] == "report" and top["asset"]["type"] == "pdf"
    assert top["unit"]["page"] >= 1
    s, e = top["highlights"][0]
    assert top["snippet"][s:e].lower().startswith("polycrystal")
    if top["unit"]["bbox"] is not None:
        w, h = top["frame"]
        assert 500 < w < 700 and 700 < h < 900  # an A4/Letter page in points


def test_search_filters(client):
    hits = search(client, text="tea tomatoes invoice report", k=20, filters={"type": ["text"]})["hits"]
    assert hits and all(h["asset"]["type"] == "text" for h in hits)
    hits = search(client, text="tea tomatoes", k=20, filters={"path": "*.md"})["hits"]
    assert hits and all(h["asset"]["path"].endswith(".md") for h in hits)
    assert search(client, text="green tea", filters={"after": "2999-01-01"})["hits"] == []
    assert search(client, text="green tea", filters={"before": "2999-01-01"})["hits"]


def test_search_bad_requests_are_json(client):
    assert_error(client.post("/search", json={"text": "x", "k": 0}), 422, "k")
    assert_error(client.post("/search", json={"text": "x", "bogus": 1}), 422, "bogus")
    assert_error(client.post("/search", json={"text": "x", "filters": {"after": "last tuesday"}}), 422, "date")
    assert_error(client.post("/search", json={"text": "x", "fusion": "nope"}), 400)
    assert_error(client.post("/search", json={"text": "x", "signals": ["telepathy"]}), 400, "telepathy")
    assert_error(client.post("/search", json={}), 400, "empty query")
    assert_error(client.post("/search", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/search", content=b"x", headers={"content-type": "text/plain"}), 415)
    assert_error(client.get("/no/such/endpoint"), 404, "no such endpoint")
    assert_error(client.get("/search"), 405)


def test_search_by_image_answers_with_hits_or_the_engines_message(client):
    img = png_bytes(text_image("INVOICE 2024"))
    r = client.post("/search", files={"image": ("q.png", img, "image/png")}, data={"k": "5"})
    if r.status_code == 200:
        assert r.json()["hits"], "an index that can search by image should find the same picture"
    else:
        assert_error(r, 400, "visual")
    # Image and text together always answer (the text signals run even without a visual one).
    r = client.post("/search", files={"image": ("q.png", img, "image/png")}, data={"text": "green tea", "k": "5"})
    assert r.status_code == 200, r.text


def test_search_image_crop_and_limits(client):
    img = png_bytes(text_image("INVOICE 2024"))  # 360x120
    r = client.post("/search", files={"image": ("q.png", img, "image/png")}, data={"crop": "400,200,50,50"})
    assert_error(r, 400, "outside")
    assert_error(client.post("/search", files={"image": ("q.png", img, "image/png")}, data={"crop": "a,b"}), 400,
                 "x,y,w,h")
    r = client.post("/search", files={"image": ("q.png", img, "image/png")}, data={"crop": "10,10,100,60",
                                                                                    "text": "invoice"})
    assert r.status_code == 200, r.text
    assert_error(client.post("/search", files={"image": ("q.png", b"not an image", "image/png")}), 400, "image")
    big = png_bytes(Image.new("RGB", (1200, 1000), "white"))  # 1.2 MP > the server's 1 MP limit
    assert_error(client.post("/search", files={"image": ("big.png", big, "image/png")}), 413, "pixels")
    huge = b"0" * 3_500_000  # over the 2 MB body limit
    assert_error(client.post("/search", files={"image": ("huge.png", huge, "image/png")}), 413, "limit")


def test_asset_metadata_thumbnail_units(client):
    a = client.get("/assets/report").json()
    assert a["id"] == "report" and a["type"] == "pdf" and a["has_thumbnail"] and "thumbnail" not in a
    t = client.get("/assets/report/thumbnail")
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg" and t.content[:2] == b"\xff\xd8"
    units = client.get("/assets/report/units").json()["units"]
    pages = [u for u in units if u["kind"] == "page"]
    assert pages and pages[0]["meta"]["size"][0] > 500
    assert_error(client.get("/assets/notes/thumbnail"), 404, "no thumbnail")
    assert_error(client.get("/assets/does-not-exist"), 404, "does-not-exist")
    listing = client.get("/assets", params={"type": "pdf"}).json()
    assert listing["total"] >= 2 and all(x["type"] == "pdf" for x in listing["assets"])


def test_files_images_pdf_pages_and_text(client, corpus):
    r = client.get("/assets/invoice/file")
    assert r.status_code == 200 and r.content == (corpus["root"] / "invoice.png").read_bytes()
    assert r.headers["content-type"] == "image/png" and r.headers["x-content-type-options"] == "nosniff"
    r = client.get("/assets/report/file")
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    r = client.get("/assets/report/file", params={"page": 1, "width": 300})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).width == 300
    assert_error(client.get("/assets/report/file", params={"page": 99}), 404, "page 99")
    assert_error(client.get("/assets/invoice/file", params={"page": 1}), 400, "pdf")
    # An indexed HTML file is served as plain text in a sandbox, never as a page of this origin.
    r = client.get("/assets/article/file")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "sandbox" in r.headers["content-security-policy"]


def test_more_like_this_excludes_the_asset(client):
    res = search(client, like="notes", k=5)
    assert all(h["asset"]["id"] != "notes" for h in res["hits"])
    assert [h["rank"] for h in res["hits"]] == list(range(1, len(res["hits"]) + 1))
    assert_error(client.post("/search", json={"like": "nope"}), 404)


def test_index_upload_then_search_then_remove(client):
    body = b"# Quokka\n\nThe quokka is a small marsupial that lives on Rottnest Island.\n"
    r = client.post("/index", files=[("files", ("../../quokka notes!.md", body, "text/markdown"))])
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["indexed"] == 1 and rep["failed"] == [] and len(rep["assets"]) == 1
    saved = rep["saved"][0]
    assert "/uploads/" in saved and ".." not in saved and saved.endswith(".md")
    hits = search(client, text="quokka marsupial")["hits"]
    assert hits and hits[0]["asset"]["id"] == rep["assets"][0]
    assert client.get(f"/assets/{rep['assets'][0]}/file").content == body
    again = client.post("/index", files=[("files", ("../../quokka notes!.md", body, "text/markdown"))]).json()
    assert again["saved"] == [saved] and again["indexed"] == 0
    twice = client.post("/index", files=[("files", ("same.md", body, "text/markdown")),
                                         ("files", ("same.md", body, "text/markdown"))])  # found by Schemathesis
    assert twice.status_code == 200 and twice.json()["saved"][0] == twice.json()["saved"][1]
    client.post("/index/remove", json={"items": twice.json()["assets"]})
    assert client.post("/index/remove", json={"items": rep["assets"]}).json() == {"removed": 1}
    assert all(h["asset"]["id"] != rep["assets"][0] for h in search(client, text="quokka marsupial")["hits"])
    assert_error(client.post("/index", content=b"x", headers={"content-type": "text/csv"}), 415)
    assert_error(client.post("/index", json={}), 422, "paths")


def test_index_paths_only_under_allowed_roots(client, corpus):
    assert_error(client.post("/index", json={"paths": [str(corpus["outside"])]}), 403, "allowed root")
    assert_error(client.post("/index", json={"paths": [str(corpus["allowed"] / ".." / "outside")]}), 403)
    assert_error(client.post("/index", json={"paths": ["relative/path"]}), 403)
    assert_error(client.post("/index", json={"paths": [str(corpus["allowed"] / "missing.md")]}), 404)
    r = client.post("/index", json={"paths": [str(corpus["allowed"])]})
    assert r.status_code == 200 and r.json()["indexed"] == 1, r.text
    assert search(client, text="kiwi vitamin")["hits"][0]["asset"]["path"].endswith("kiwi.md")


@pytest.mark.parametrize("path", ["/", "/docs", "/ui/app.js", "/ui/app.css", "/openapi.json"])
def test_ui_and_docs_are_served_locally(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert "cdn" not in r.text.lower() and "https://" not in r.text.replace("https://goo.gl", "")


def test_remove_refuses_paths_outside_allowed_roots(client):
    before = client.get("/status").json()["assets"]
    assert_error(client.post("/index/remove", json={"items": ["/"]}), 403, "allowed root")
    assert_error(client.post("/index/remove", json={"items": ["../../etc"]}), 403)
    assert client.get("/status").json()["assets"] == before
