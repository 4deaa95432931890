"""The web UI on a mixed index, in real headless Chromium: suggestions from the index's own text, the failures list
(clickable, each with its reason, forgettable), the matched region drawn for an image hit, signals in words, records
named by their title, and the note when text targets images without a visual encoder. Screenshots go to
test-artifacts/serve/first-*.png."""

from __future__ import annotations

import os

import pytest

from tests.fixtures import textured_image

from .conftest import LiveServer
from .test_ui import CHROMIUM, browser, page, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    import polyseek
    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.serve.api import ServeConfig

    base = tmp_path_factory.mktemp("ui-first")
    root = base / "files"
    root.mkdir()
    textured_image(7, size=(480, 360)).save(root / "workbench.png")
    (root / "brackets.md").write_text("# Fatigue cracks\n\nAluminium brackets show fatigue cracks under cyclic load. "
                                      "Fatigue cracks start at rivet holes in aluminium brackets.\n")
    (root / "hinges.md").write_text("# Hinge wear\n\nSteel hinges wear at the pin; fatigue cracks are rare in steel.\n")
    (root / "empty.pdf").write_bytes(b"")
    (root / "parts.csv").write_text("id,title,text\nP-17,Self locking nut M6,nylon insert lock nut for brackets\n"
                                    "P-18,Flat washer M6,zinc plated washer\n")
    path = base / "index"
    idx = polyseek.open(path, IndexConfig(ingest=IngestConfig(ocr=False)))
    idx.add([root / "parts.csv"], records=True, text_fields=("title", "text"))
    rep = idx.add([root])
    assert [p for p, _ in rep.failed] == [str(root / "empty.pdf")]
    idx.close()
    query = base / "query.png"
    textured_image(7, size=(480, 360)).crop((120, 90, 360, 270)).save(query)
    with LiveServer(ServeConfig(index=path)) as s:
        yield s, root, query


def test_landing_suggests_searches_from_the_index_itself(page, mixed):
    server, _, _ = mixed
    page.goto(server.url + "/")
    page.wait_for_selector("#suggestions button")
    tips = [t.lower() for t in page.locator("#suggestions button").all_inner_texts()]
    assert "fatigue cracks" in tips and "invoice total" not in tips
    shot(page, "first-home")
    page.click("#suggestions button:has-text('fatigue cracks')")
    page.wait_for_selector(".card mark")


def test_failures_are_listed_with_reasons_and_can_be_forgotten(page, mixed):
    server, root, _ = mixed
    page.goto(server.url + "/")
    page.wait_for_selector("#failed-btn")
    assert page.locator("#failed-btn").inner_text() == "1 failed"
    page.click("#failed-btn")
    page.wait_for_selector("#failures:not([hidden]) .failures-list li")
    item = page.locator("#failures .failures-list li").first
    assert str(root / "empty.pdf") in item.inner_text() and "empty file (0 bytes)" in item.inner_text()
    shot(page, "first-failures")
    item.locator("button:has-text('Forget')").click()
    page.wait_for_selector("#failures", state="hidden")
    page.wait_for_selector("#failed-btn", state="detached")


def test_image_hit_draws_the_matched_region_and_says_why_in_words(page, mixed):
    server, _, query = mixed
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    page.set_input_files("#image-input", str(query))
    page.wait_for_selector(".card .why .sig:has-text('same object')")
    why = page.locator(".card").first.locator(".why").inner_text()
    assert "matched points" in why
    page.locator(".card").first.click()
    page.wait_for_selector("#detail:not([hidden]) .frame .box.matchbox")
    box = page.locator("#detail .frame .box.matchbox").bounding_box()
    frame = page.locator("#detail .frame img").bounding_box()
    # The crop was the middle half of the image: the drawn box is roughly there, not the whole frame.
    assert 0.3 * frame["width"] < box["width"] < 0.75 * frame["width"]
    meta = page.locator("#d-meta").inner_text()
    assert "Matched by" in meta
    assert "instance" in meta and "instance 0." not in meta and ".000" not in meta  # a count of points, not 151.000
    shot(page, "first-image-match")


def test_records_are_titled_by_their_title_field(page, mixed):
    server, _, _ = mixed
    page.goto(server.url + "/")
    page.fill("#q", "lock nut")
    page.wait_for_selector(".card .title:has-text('Self locking nut M6')")
    assert "parts.csv" not in page.locator(".card .title").first.inner_text()
    shot(page, "first-record")


def test_text_query_for_images_without_a_visual_encoder_says_so(page, mixed):
    server, _, _ = mixed
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    page.click(".chip[data-type=image]")
    page.fill("#q", "workbench")
    page.wait_for_selector("#banner.info:not([hidden])")
    assert "has no visual encoder" in page.locator("#banner").inner_text()
    shot(page, "first-visual-note")
