"""The web UI in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright). Screenshots go to
test-artifacts/serve/."""

from __future__ import annotations

import os

import pytest

from tests.fixtures import text_image

from .conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium to run the browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser tests")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # launch() gives Chromium a fresh temporary profile of its own (the --user-data-dir the notes ask for).
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    # bypass_csp: wait_for_function evaluates strings, which the page's own CSP (no eval) forbids.
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_type_a_query_and_see_results(page, server):
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    shot(page, "home")
    page.keyboard.press("/")
    page.keyboard.type("polycrystalline", delay=20)
    page.wait_for_selector(".card mark")
    first = page.locator(".card").first
    assert "report.pdf" in first.inner_text()
    assert first.locator("mark").first.inner_text().lower().startswith("polycrystal")
    assert "result" in page.locator("#statusline").inner_text()
    shot(page, "results")
    # Filters narrow the search: PDFs only, then a date in the future shows the no-results state.
    page.click(".chip[data-type=pdf]")
    page.wait_for_function("document.querySelectorAll('#results .card .badge.pdf').length === "
                           "document.querySelectorAll('#results .card').length")
    page.fill("#f-after", "2999-01-01")
    page.wait_for_selector("#emptystate:not([hidden])")
    assert "Reset filters" in page.locator("#emptystate").inner_text()
    page.click("#emptystate button:has-text('Reset filters')")
    page.wait_for_selector(".card mark")


def test_open_detail_view_with_keyboard(page, server):
    page.goto(server.url + "/")
    page.fill("#q", "polycrystalline")
    page.wait_for_selector(".card mark")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden]) .detail-media .frame img")
    page.wait_for_function("document.querySelector('#d-media img').naturalWidth > 0")
    assert "report" in page.locator("#d-title").inner_text().lower() or "solar" in page.locator("#d-title").inner_text().lower()
    assert "PDF" in page.locator("#d-meta").inner_text()
    shot(page, "detail")
    page.click("#d-like")
    page.wait_for_selector("#detail", state="hidden")
    page.wait_for_selector("#statusline:has-text('similar to')")
    page.keyboard.press("Escape")


def test_upload_an_image_and_draw_a_crop(page, server, tmp_path):
    q = tmp_path / "query.png"
    text_image("INVOICE 2024", size=(480, 200)).save(q)
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    page.set_input_files("#image-input", str(q))
    page.wait_for_selector("#queryimage:not([hidden])")
    page.wait_for_function("document.getElementById('qi-img').naturalWidth === 480")
    # Either results (a visual signal exists) or the engine's message saying what to configure.
    page.wait_for_function("document.querySelectorAll('.card').length > 0 || "
                           "document.getElementById('qi-help').classList.contains('warn')")
    if page.locator("#qi-help.warn").count():
        assert "visual" in page.locator("#qi-help").inner_text()
    box = page.locator("#qi-img").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.8, steps=6)
    page.mouse.up()
    page.wait_for_selector("#qi-crop:not([hidden])")
    x, y, w, h = (int(v) for v in page.get_attribute("#qi-stage", "data-crop").split(","))
    assert abs(x - 48) <= 4 and abs(y - 40) <= 4 and abs(w - 240) <= 5 and abs(h - 120) <= 5
    assert page.locator("#qi-clear-crop").is_visible()
    # Text alongside the image always gives results.
    page.fill("#q", "green tea")
    page.wait_for_selector(".card")
    shot(page, "image-crop")
    page.click("#qi-remove")
    page.wait_for_selector("#queryimage", state="hidden")


def test_token_prompt(page, token_server):
    page.goto(token_server.url + "/")
    page.wait_for_selector("#tokenbox:not([hidden])")
    shot(page, "token")
    page.fill("#token", "wrong")
    page.click("#tokenform button")
    page.wait_for_selector("#t-error:not([hidden])")
    page.fill("#token", "s3cret-token")
    page.click("#tokenform button")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    # (A query with a real match: OCR is off in this corpus, and dense-only noise is no longer padded in.)
    page.fill("#q", "polycrystalline")
    page.wait_for_selector(".card")
    # Thumbnails load through fetch with the token (an <img src> alone would get 401).
    page.wait_for_function("[...document.querySelectorAll('.card img')].some(i => i.naturalWidth > 0)")
    assert page.evaluate("sessionStorage.getItem('polyseek.token')") == "s3cret-token"


def test_suggestion_chips_refine_the_query(page, server):
    """A text query shows 'Narrow to:' chips (clusters of the results); a click searches the chip's query."""
    page.goto(server.url + "/")
    page.wait_for_selector("#index-info:has-text('files indexed')")
    page.locator("#q").fill("water")
    page.wait_for_selector("#suggestions .chip")
    chip = page.locator("#suggestions .chip").first
    text = chip.inner_text()
    assert text.startswith("water ") and len(text.split()) >= 2
    shot(page, "suggestions")
    chip.click()
    page.wait_for_function("document.querySelector('#q').value.startsWith('water ')")
    assert page.locator("#q").input_value() == text
    page.wait_for_selector(".card")
