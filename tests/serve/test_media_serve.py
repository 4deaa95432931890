"""Audio/video over HTTP: byte ranges (206) for the player, keyframe thumbnails, and the UI playing from a hit's
time with the transcript shown (real uvicorn server, real Chromium)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("av", reason="pip install polyseek[media] to run the media tests")
pytest.importorskip("faster_whisper", reason="pip install polyseek[media] to run the media tests")

from tests.media_fixtures import have_espeak, narration, pattern, slide, write_media  # noqa: E402

from .conftest import LiveServer  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def media_server(tmp_path_factory):
    import polyseek
    from polyseek.config import IndexConfig
    from polyseek.serve.api import ServeConfig

    root = tmp_path_factory.mktemp("mediaserve")
    corpus = root / "corpus"
    corpus.mkdir()
    audio = narration()[0] if have_espeak() else None
    # VP8 + Opus in WebM: every Chromium build plays it
    write_media(corpus / "talk.webm", [(slide("Ferry Schedule"), 4.5), (pattern(3), 5.5)], audio, vcodec="libvpx")
    idx = polyseek.open(root / "idx", IndexConfig(instance=False))
    report = idx.add([corpus])
    assert report.failed == [], report.failed
    idx.close()
    with LiveServer(ServeConfig(index=root / "idx")) as s:
        yield s


def test_media_file_is_served_in_byte_ranges(media_server):
    with media_server.client() as c:
        full = c.get("/assets/talk/file")
        assert full.status_code == 200 and full.headers["content-type"] == "video/webm"
        assert full.headers.get("accept-ranges") == "bytes"
        part = c.get("/assets/talk/file", headers={"Range": "bytes=100-299"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-299/{len(full.content)}"
        assert part.content == full.content[100:300]
        bad = c.get("/assets/talk/file", headers={"Range": f"bytes={len(full.content) + 10}-"})
        assert bad.status_code == 416


def test_keyframe_thumbnails_by_unit(media_server):
    with media_server.client() as c:
        units = c.get("/assets/talk/units").json()["units"]
        frames = [u for u in units if u["kind"] == "frame"]
        assert len(frames) == 2 and all("thumbnail" not in u["meta"] for u in units)
        r = c.get("/assets/talk/thumbnail", params={"unit": frames[1]["id"]})
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        assert c.get("/assets/talk/thumbnail", params={"unit": "talk#nope"}).status_code == 404
        hits = c.post("/search", json={"text": "ferry schedule"}).json()["hits"]
        assert hits[0]["unit"]["time"] == pytest.approx([0.0, 4.5], abs=0.3)


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: apt-get install chromium")
@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_ui_plays_from_the_hit_and_marks_the_transcript(media_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser tests")
    from .test_ui import FLAGS, shot

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        ctx = b.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(media_server.url + "/")
        page.keyboard.press("/")
        page.keyboard.type("library card telescope", delay=10)
        card = page.locator(".card").first
        card.wait_for()
        assert "talk.webm" in card.inner_text()
        time_badge = card.locator(".badge.time").inner_text()
        assert time_badge.startswith("00:0")
        card.click()
        page.wait_for_selector(".transcript .tline.matched mark")
        page.wait_for_function("() => { const v = document.querySelector('video.player');"
                               " return v && v.readyState >= 1 && v.currentTime > 3; }", timeout=30_000)
        t = page.evaluate("document.querySelector('video.player').currentTime")
        marked = page.locator(".transcript .tline.matched mark").all_inner_texts()
        shot(page, "media-detail")
        ctx.close()
        b.close()
    assert 3.5 < t < 7.5, t  # the second sentence starts after about 5 s
    assert {m.lower().strip(".,") for m in marked} & {"library", "card", "telescope"}
    assert not errors, errors
