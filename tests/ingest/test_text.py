"""Text, Markdown and HTML extraction: passages with exact offsets, heading paths, legacy encodings."""

from __future__ import annotations

from polyseek.config import IngestConfig
from polyseek.ingest import ExtractContext, chunk_spans, decode_text, extract_file


def _extract(path, **cfg):
    return extract_file(path, ExtractContext(config=IngestConfig(**cfg), asset_id="t"))


def test_chunk_offsets_cover_text_with_overlap_and_break_at_sentences():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    spans = chunk_spans(text, 300, 60)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert s1 < s2 <= e1  # consecutive passages overlap (or touch) and advance
        assert e1 - s1 <= 300
        assert text[e1 - 1] == "."  # broke at a sentence end
    assert all(not text[s].isspace() for s, _ in spans)


def test_markdown_passages_offsets_and_heading_paths(tmp_path):
    body = "\n\n".join(f"Paragraph {i} about {'bees' if i < 8 else 'wasps'} and pollination of flowers." for i in range(16))
    md = f"# Insects\n\nIntro line.\n\n## Bees\n\n{body[:len(body) // 2]}\n\n## Wasps\n\n{body[len(body) // 2:]}\n"
    (tmp_path / "insects.md").write_text(md, encoding="utf-8")
    ex = _extract(tmp_path / "insects.md", chunk_chars=300, chunk_overlap=50)
    assert ex.asset.title == "Insects" and len(ex.units) > 3
    for n, u in enumerate(ex.units):
        assert u.id == f"t#c{n}" and u.kind == "passage"
        assert md[u.char_start : u.char_end] == u.text
        assert u.meta["headings"][0] == "Insects"
    assert ex.units[-1].meta["headings"] == ["Insects", "Wasps"]
    assert any(u.meta["headings"] == ["Insects", "Bees"] for u in ex.units)


def test_html_drops_scripts_keeps_headings_alt_text_and_title(good_corpus):
    ex = _extract(good_corpus.root / "article.html")
    assert ex.asset.title == "Tea Brewing"
    text = "\n".join(u.text for u in ex.units)
    assert "Brew green tea at 80 degrees" in text and "[image: a cup of tea]" in text
    assert "hidden words" not in text and "color:red" not in text
    assert ex.units[0].meta["headings"] == ["Green tea"]


def test_latin1_text_is_indexed_with_a_warning(good_corpus):
    ex = _extract(good_corpus.root / "cafe.txt")
    assert "crêpes" in ex.units[0].text and "Café crème" in ex.units[0].text
    assert any("not valid UTF-8" in w for w in ex.warnings)


def test_decode_text_handles_bom_and_utf8():
    assert decode_text("é".encode("utf-8")) == ("é", None)
    assert decode_text(b"\xef\xbb\xbfhi") == ("hi", None)
    assert decode_text("hé".encode("utf-16"))[0] == "hé"
