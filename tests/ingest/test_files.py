"""Discovery, type sniffing and the bad corpus: every bad file fails with its expected reason, nothing else raises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polyseek.config import IngestConfig
from polyseek.errors import IngestError, UnsupportedFileError
from polyseek.ingest import ExtractContext, detect, discover, extract_file, file_hash


def test_every_bad_file_fails_with_its_reason(bad_corpus):
    cfg = IngestConfig(max_image_pixels=50_000, ocr=False)
    for rel, expected in bad_corpus.bad.items():
        with pytest.raises(IngestError) as info:
            extract_file(bad_corpus.root / rel, ExtractContext(config=cfg, asset_id=rel))
        assert expected in info.value.reason, (rel, info.value.reason)
        assert info.value.path == str(bad_corpus.root / rel)


def test_good_corpus_extracts_with_findable_phrases(good_corpus):
    cfg = IngestConfig(ocr=True)
    found = {}
    for path in discover([good_corpus.root]):
        assert isinstance(path, Path)
        if path.suffix == ".png" or path.suffix == ".jpg":
            continue  # OCR on images is covered in test_images; keep this test fast
        ex = extract_file(path, ExtractContext(config=cfg, asset_id=path.name))
        found[path.relative_to(good_corpus.root).as_posix()] = " ".join(u.text for u in ex.units)
    for rel, phrase in good_corpus.good.items():
        if rel in found:
            assert phrase.lower() in found[rel].lower(), rel
    assert len(found) == 5


def test_discover_reports_links_and_fifo_without_raising(bad_corpus):
    items = list(discover(bad_corpus.root))
    problems = {p.name: reason for p, reason in (i for i in items if isinstance(i, tuple))}
    for name, reason in bad_corpus.links.items():
        assert problems[name] == reason
    assert problems["pipe.txt"] == "not a regular file"
    files = [i for i in items if not isinstance(i, tuple)]
    assert files == sorted(files)


def test_discover_include_exclude_hidden_and_folder_loops(tmp_path):
    for rel in ("a.txt", "sub/b.md", "sub/deep/c.pdf", ".git/config.txt", ".polyseek/x.txt", "sub/.hidden.txt"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    os.symlink(tmp_path / "sub", tmp_path / "sub" / "deep" / "back")  # folder loop
    os.symlink(tmp_path / "a.txt", tmp_path / "link_to_a.txt")  # symlink to a file is followed
    rel = lambda items: [p.relative_to(tmp_path).as_posix() if not isinstance(p, tuple) else ("!", p[1]) for p in items]
    everything = rel(discover([tmp_path]))
    assert everything == ["a.txt", "link_to_a.txt", "sub/b.md", ("!", "symlink loop"), "sub/deep/c.pdf"]
    # include filters files; a folder loop is still reported (it is a problem with the tree, not a file)
    assert rel(discover([tmp_path], include=["*.md", "*.pdf"])) == ["sub/b.md", ("!", "symlink loop"), "sub/deep/c.pdf"]
    assert rel(discover([tmp_path], exclude=["sub/deep/*", "link_*"])) == ["a.txt", "sub/b.md"]
    assert rel(discover([tmp_path / "a.txt"])) == ["a.txt"]
    assert list(discover([tmp_path / "missing"])) == [(tmp_path / "missing", "no such file or folder")]


def test_detect_by_bytes_and_suffix(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # a JPEG named .png is still an image
    assert detect(tmp_path / "x.png") == "jpeg"
    (tmp_path / "y.pdf").write_text("hello")
    with pytest.raises(IngestError, match="file named .pdf is not a PDF"):
        detect(tmp_path / "y.pdf")
    (tmp_path / "z.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(IngestError, match="looks like a PNG image"):
        detect(tmp_path / "z.txt")
    (tmp_path / "w.docx").write_bytes(b"PK")
    with pytest.raises(UnsupportedFileError, match=r"supported: .*\.pdf"):
        detect(tmp_path / "w.docx")


def test_file_hash_streams_sha256(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"abc" * 1_000_000)
    import hashlib

    assert file_hash(tmp_path / "f.bin") == hashlib.sha256(b"abc" * 1_000_000).hexdigest()
