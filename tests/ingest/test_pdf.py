"""PDF extraction on PDFs written with fpdf2: pages, blocks, figures with captions, OCR fallback, rotation."""

from __future__ import annotations

import pypdfium2 as pdfium

from polyseek.config import IngestConfig
from polyseek.ingest import ExtractContext, extract_file
from tests.fixtures import report_pdf


def _inside(bbox, size, tol=1.0):
    x, y, w, h = bbox
    return -tol <= x and -tol <= y and w > 0 and h > 0 and x + w <= size[0] + tol and y + h <= size[1] + tol


def test_pages_blocks_and_figure_with_caption(good_corpus):
    """Layout blocks one unit each (pdf_passage_words=0); passages are tested in test_passages.py."""
    ctx = ExtractContext(config=IngestConfig(ocr=False, pdf_passage_words=0), asset_id="rep", want_pixels=True)
    ex = extract_file(good_corpus.root / "docs" / "report.pdf", ctx)
    a = ex.asset
    assert a.meta["pages"] == 2 and a.title == "Solar Panel Efficiency Report"
    assert a.meta["author"] == "Polyseek Tests" and a.created.year == 2023
    assert a.thumbnail[:2] == b"\xff\xd8"
    pages = [u for u in ex.units if u.kind == "page"]
    assert [p.id for p in pages] == ["rep#p1", "rep#p2"]
    size = pages[0].meta["size"]
    assert abs(size[0] - 595.28) < 0.5 and abs(size[1] - 841.89) < 0.5  # A4 in points
    assert "polycrystalline" in pages[1].text and "\x02" not in pages[0].text
    blocks = [u for u in ex.units if u.kind == "block" and u.page == 1]
    assert blocks[0].text == "Solar Panel Efficiency Report"
    assert any(b.text == "Method" for b in blocks)  # headings are their own blocks
    for b in blocks:
        assert _inside(b.bbox, size)
        assert pages[0].text[b.char_start : b.char_end] == b.text
    # top-left origin: the title is near the top of the page
    assert blocks[0].bbox[1] < 100
    # line boxes: offsets index the page text, boxes inside the page
    for x, y, w, h, s, e in pages[0].meta["chars"]:
        assert _inside((x, y, w, h), size) and 0 <= s < e <= len(pages[0].text)
    (fig,) = [u for u in ex.units if u.kind == "figure"]
    assert fig.id == "rep#p1f0" and fig.text.startswith("Figure 1: Monthly energy yield")
    x, y, w, h = fig.bbox
    assert abs(x - 56) < 1 and abs(w - 240) < 1 and abs(h - 128) < 1
    caption = next(b for b in blocks if b.text.startswith("Figure 1"))
    assert caption.bbox[1] >= y + h - 1  # caption lies below the figure
    assert pages[0].image is not None and fig.image.size[0] > 200  # 72 dpi render, crop of the figure


def test_scanned_page_is_ocred_and_boxes_mapped_to_points(good_corpus):
    ex = extract_file(good_corpus.root / "docs" / "scan.pdf", ExtractContext(config=IngestConfig(), asset_id="s"))
    page = ex.units[0]
    assert page.meta["ocr"] is True and "RECEIPT" in page.text.upper()
    blocks = [u for u in ex.units if u.kind == "block"]
    assert blocks and all(_inside(b.bbox, (420, 200)) for b in blocks)
    # the text image sits at y=20..100 pt on the page
    assert 15 <= blocks[0].bbox[1] <= 100


def test_scanned_page_without_ocr_has_empty_text(good_corpus):
    ex = extract_file(good_corpus.root / "docs" / "scan.pdf",
                      ExtractContext(config=IngestConfig(ocr=False), asset_id="s"))
    assert ex.units[0].text == "" and ex.units[0].meta["ocr"] is False


def test_rotated_page_boxes_follow_displayed_orientation(tmp_path):
    report_pdf(tmp_path / "r.pdf")
    doc = pdfium.PdfDocument(str(tmp_path / "r.pdf"))
    doc[0].set_rotation(90)
    doc.save(str(tmp_path / "rot.pdf"))
    doc.close()
    ex = extract_file(tmp_path / "rot.pdf", ExtractContext(config=IngestConfig(ocr=False, pdf_passage_words=0), asset_id="r"))
    page = ex.units[0]
    w, h = page.meta["size"]
    assert w > h  # landscape once rotated
    title = next(u for u in ex.units if u.kind == "block" and u.text.startswith("Solar Panel"))
    x, y, bw, bh = title.bbox
    # rotated 90 degrees clockwise: the title (top-left of the portrait page) is now at the top-right, vertical
    assert bh > bw and x > w / 2 and y < h / 2
    assert _inside(title.bbox, (w, h))
