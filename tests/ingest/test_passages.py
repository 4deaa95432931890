"""PDF blocks merged into passages: fewer units, every character still covered, never a unit that is a lone label."""

from __future__ import annotations

from polyseek.config import IngestConfig
from polyseek.ingest import ExtractContext, extract_file
from polyseek.ingest.passages import is_label, merge_blocks


def _blocks(*texts):
    out, pos = [], 0
    for i, t in enumerate(texts):
        out.append((t, (10.0, 20.0 * i, 100.0, 20.0 * i + 12), pos, pos + len(t)))
        pos += len(t) + 2
    return out


def test_is_label():
    assert all(is_label(t) for t in ("E", "C", "(c)", "12", "—", "  ", "a)"))
    assert not any(is_label(t) for t in ("Fig", "Results", "21.4 percent"))


def test_merge_up_to_the_word_budget_and_labels_join_a_neighbour():
    blocks = _blocks("E", "Results", "one two three four five", "C", "six seven eight nine ten eleven", "D")
    out = merge_blocks(blocks, max_words=7)
    assert [t for t, *_ in out] == ["E\n\nResults\n\none two three four five\n\nC", "six seven eight nine ten eleven\n\nD"]
    assert out[0][2] == 0 and out[1][3] == blocks[-1][3]  # char ranges cover the merged blocks
    assert out[0][1] == (10.0, 0.0, 100.0, 72.0)  # the union box
    assert merge_blocks(_blocks("E", "C"), max_words=100) == []  # only labels: no passage
    assert [t for t, *_ in merge_blocks(blocks, max_words=0)] == ["Results", "one two three four five",
                                                                  "six seven eight nine ten eleven"]


def test_pdf_with_figure_labels_has_passages_and_no_label_units(tmp_path):
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", "", 11)
    for i in range(6):
        pdf.multi_cell(0, 15, f"Paragraph {i} about fatigue cracks in aluminium alloy brackets under cyclic load.")
        pdf.ln(10)
    for x, label in ((80, "E"), (300, "C")):  # figure panel labels, far apart on one line
        pdf.set_font("helvetica", "B", 16)
        pdf.text(x, 600, label)
    pdf.output(str(tmp_path / "labels.pdf"))
    cfg = IngestConfig(ocr=False)
    ex = extract_file(tmp_path / "labels.pdf", ExtractContext(config=cfg, asset_id="l"))
    page = ex.units[0]
    passages = [u for u in ex.units if u.kind == "block"]
    assert len(passages) == 1  # six paragraphs and two labels, one passage of under 120 words
    assert not [u for u in ex.units if u.text and is_label(u.text)]
    for p in passages:
        assert page.text[p.char_start:p.char_end] == p.text
    assert "Paragraph 0" in passages[0].text and "Paragraph 5" in passages[0].text
    one_a_block = extract_file(tmp_path / "labels.pdf", ExtractContext(
        config=IngestConfig(ocr=False, pdf_passage_words=0), asset_id="l"))
    texts = [u.text for u in one_a_block.units if u.kind == "block"]
    assert len(texts) >= 6 and "E" not in texts and "C" not in texts
