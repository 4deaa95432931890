"""The Ask panel in real headless Chromium: the answer streams in, its [n] citations open the cited page with the
block's box drawn. Screenshots go to test-artifacts/serve/."""

from __future__ import annotations

from .test_ui import browser, page, shot  # noqa: F401 - fixtures shared with the search UI tests


def test_ask_panel_streams_an_answer_with_clickable_citations(page, server):  # noqa: F811
    seen = []
    page.on("response", lambda r: seen.append((r.url, r.headers.get("content-type", ""))) if "/ask" in r.url else None)
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    page.fill("#ask-q", "What was the average conversion efficiency of polycrystalline cells?")
    page.press("#ask-q", "Enter")
    page.wait_for_selector("#answer-text a.cite", timeout=120_000)
    assert any(ct.startswith("text/event-stream") for _, ct in seen)
    text = page.locator("#answer-text").inner_text()
    assert "17.9" in text and "[1]" in text
    assert page.locator("#answer-steps li").count() >= 3  # streamed steps
    assert "report" in page.locator("#answer-cites li").first.inner_text()
    shot(page, "ask-answer")
    page.locator("#answer-text a.cite").first.click()
    page.wait_for_selector("#detail:not([hidden]) .frame img")
    box = page.locator("#detail .frame .box")
    box.wait_for()
    bb, fb = box.bounding_box(), page.locator("#detail .frame").bounding_box()
    assert bb["width"] > 20 and bb["height"] > 5 and bb["y"] > fb["y"]  # a block, not the whole page
    assert "Page 2 of 2" in page.locator("#d-media").inner_text()
    shot(page, "ask-citation-page")


def test_ask_panel_says_when_it_cannot_find_the_answer(page, server):  # noqa: F811
    page.goto(server.url + "/")
    page.fill("#ask-q", "Who composed the opera Carmen and in which year did it premiere?")
    page.click("#ask-go")
    page.wait_for_selector("#answer-text.abstained", timeout=120_000)
    assert "cannot find" in page.locator("#answer-text").inner_text()
    assert page.locator("#answer-cites li").count() == 0
