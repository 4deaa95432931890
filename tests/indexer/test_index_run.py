"""The engine end to end on generated files: bad input, incremental runs, filters, records, encoders."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

import polyseek
from polyseek.config import IndexConfig, SearchConfig
from polyseek.errors import IndexMismatchError, NotFoundError, QueryError
from polyseek.types import Filters


def _ids(hits):
    return [h.asset.id for h in hits]


def test_good_files_searchable_and_bad_files_reported(mixed_corpus, mixed_index):
    root, good, bad = mixed_corpus
    idx, report = mixed_index
    failed = {os.path.relpath(p, bad.root): r for p, r in report.failed if p.startswith(str(bad.root))}
    for rel, reason in {**bad.bad, **bad.links}.items():
        if rel == "folder.pdf":  # a folder named like a file is walked (it is empty), not reported
            continue
        if reason == "unsupported file type":  # skipped (by type), not failed: never retried
            assert rel not in failed and str(bad.root / rel) in {p for p, _ in report.unsupported}
            continue
        assert rel in failed, f"{rel} was not reported; failures: {failed}"
        assert reason.lower() in failed[rel].lower(), (rel, failed[rel])
    assert not [p for p, _ in report.failed if p.startswith(str(good.root))]
    for rel, phrase in good.good.items():
        stem = os.path.splitext(os.path.basename(rel))[0]  # ids are file stems where unique
        if not phrase:
            assert idx.asset(stem)["path"].endswith(rel)
            continue
        hits = idx.search(phrase, k=5)
        assert stem in _ids(hits), (rel, phrase, _ids(hits))
    st = idx.status()
    assert {f["path"] for f in st["failed"]} >= {str(bad.root / r) for r in bad.bad
                                                 if r != "folder.pdf" and not r.endswith(".xyz")}


def test_hit_shape_and_snippet_highlights(mixed_index):
    idx, _ = mixed_index
    hits = idx.search("aphids water", k=3)
    top = hits[0]
    assert top.asset.id == "notes" and top.asset.type == "text" and top.unit.kind == "passage"
    d = top.to_dict()
    assert set(d) >= {"rank", "score", "asset", "unit", "snippet", "signals"}
    assert set(d["unit"]) == {"id", "kind", "page", "bbox", "time"}
    assert {"bm25", "dense"} <= set(top.signals)
    marked = {top.snippet[s:e].lower() for s, e in top.highlights}
    assert "aphids" in marked and "water" in marked


def test_pdf_hits_carry_page_and_box(mixed_index):
    idx, _ = mixed_index
    hits = idx.search("polycrystalline", k=3)
    h = hits[0]
    assert h.asset.id == "report" and h.unit.page is not None
    assert h.unit.bbox is not None and len(h.unit.bbox) == 4


def test_filters_run_in_the_store(mixed_index):
    idx, _ = mixed_index
    assert all(h.asset.type == "pdf" for h in idx.search("report receipt invoice", k=10, filters=Filters(type=("pdf",))))
    assert _ids(idx.search("invoice", filters=Filters(type=("image",))))[0] == "invoice"
    only_md = idx.search("water tea sun", filters=Filters(path="*.md"))
    assert only_md and all(h.asset.path.endswith(".md") for h in only_md)
    sub = idx.search("receipt polycrystalline", filters=Filters(path="docs/*"))
    assert sub and all("/docs/" in h.asset.path for h in sub)
    # photo_exif.jpg has an EXIF date in 2021; everything else is dated now.
    old = idx.search("photo", k=50, filters=Filters(before=dt.datetime(2022, 1, 1)))
    assert all(h.asset.id == "photo_exif" for h in old)
    assert not idx.search("aphids", filters=Filters(after=dt.datetime(2100, 1, 1)))
    with pytest.raises(QueryError):
        idx.search("x", filters=Filters(after=dt.datetime(2024, 1, 1), before=dt.datetime(2023, 1, 1)))


def test_signals_can_be_chosen(mixed_index):
    idx, _ = mixed_index
    bm = idx.search("aphids", config=SearchConfig(signals=("bm25",)))
    assert bm and set(bm[0].signals) == {"bm25"}
    # A paraphrase with no shared keyword is found by the dense signal alone.
    dense = idx.search("insects on garden plants", config=SearchConfig(signals=("dense",)), k=3)
    assert "notes" in _ids(dense)
    with pytest.raises(QueryError, match="choose from"):
        idx.search("x", config=SearchConfig(signals=("nope",)))


def test_incremental_runs(corpus_copy, tmp_path):
    root, good = corpus_copy
    idx = polyseek.open(tmp_path / "inc")
    first = idx.add([root])
    assert first.indexed == len(good.good) and not first.failed
    units = idx.status()["units"]
    again = idx.add([root])
    assert again.indexed == 0 and again.skipped == len(good.good)
    time.sleep(0.01)
    (root / "notes.md").write_text("# Garden notes\n\nSlugs love lettuce.\n", encoding="utf-8")
    (root / "cafe.txt").unlink()
    third = idx.add([root])
    assert third.indexed == 1 and third.removed == 1
    assert _ids(idx.search("slugs lettuce", k=1)) == ["notes"]
    assert "notes" not in _ids(idx.search("aphids", config=SearchConfig(signals=("bm25",))))
    assert "cafe" not in _ids(idx.search("crêpes brasserie", k=20))
    st = idx.status()
    assert st["assets"] == len(good.good) - 1
    # No duplicate units after re-indexing a changed file.
    ids = idx.store.scan_units(["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) and len(ids) <= units


def test_remove_by_id_path_and_folder(corpus_copy, tmp_path):
    root, good = corpus_copy
    idx = polyseek.open(tmp_path / "rm")
    idx.add([root])
    assert idx.remove(["notes"]) == 1
    assert idx.remove([str(root / "docs")]) == 2
    with pytest.raises(NotFoundError):
        idx.remove(["no-such-thing"])
    assert idx.status()["assets"] == len(good.good) - 3
    assert "notes" not in _ids(idx.search("aphids"))


def test_records_jsonl_csv_parquet(tmp_path):
    from tests.fixtures import write_records

    files = write_records(tmp_path / "rec")
    for kind, path in files.items():
        idx = polyseek.open(tmp_path / f"idx-{kind}")
        rep = idx.add([path], records=True, id_field="id", text_fields=("title", "text"), image_field="image",
                      meta_fields=("lang",))
        assert rep.indexed == 3, (kind, rep.to_dict())
        assert _ids(idx.search("sourdough starter", k=1)) == ["1"]
        assert _ids(idx.search("LABEL", k=1, config=SearchConfig(signals=("bm25",)))) == ["r2"], kind  # OCR of the row image
        again = idx.add([path], records=True, id_field="id", text_fields=("title", "text"), image_field="image",
                        meta_fields=("lang",))
        assert again.indexed == 0
    failed = polyseek.open(tmp_path / "idx-jsonl").status()["failed"]
    assert any(":4" in f["path"] for f in failed)


def test_records_rows_change_and_vanish(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": "a", "text": "alpha particles"}\n{"id": "b", "text": "beta decay"}\n')
    idx = polyseek.open(tmp_path / "idx")
    assert idx.add([p], records=True).indexed == 2
    p.write_text('{"id": "a", "text": "alpha particles"}\n{"id": "c", "text": "gamma rays"}\n')
    rep = idx.add([p], records=True)
    assert (rep.indexed, rep.skipped, rep.removed) == (1, 1, 1)
    assert _ids(idx.search("gamma", k=1)) == ["c"]
    assert idx.status()["assets"] == 2


def test_reopen_uses_stored_encoders_and_mismatch_is_an_error(corpus_copy, tmp_path):
    root, _ = corpus_copy
    path = tmp_path / "enc"
    polyseek.open(path).add([root / "notes.md"])
    again = polyseek.open(path)
    assert again.manifest["encoders"]["text"]["dim"] == 384
    assert _ids(again.search("aphids"))[0] == "notes"
    with pytest.raises(IndexMismatchError, match="minilm"):
        polyseek.open(path, IndexConfig(text_encoder="sentence-transformers:/nonexistent"))


def test_bad_queries_are_clear_errors(mixed_index, tmp_path):
    idx, _ = mixed_index
    with pytest.raises(QueryError, match="empty query"):
        idx.search("   ")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(QueryError):
        idx.search(image=str(bad))
    with pytest.raises(QueryError, match="does not exist"):
        idx.search(image=str(tmp_path / "missing.png"))


def test_pdf_page_vector_is_the_mean_of_its_blocks(mixed_index):
    import numpy as np

    idx, _ = mixed_index
    rows = idx.store.units_of_asset("report", ["id", "kind", "page", "vec_text"])
    page = next(r for r in rows if r["kind"] == "page" and r["page"] == 1)
    # Page 1's text (title, a paragraph, a caption, a heading, a paragraph: ~90 words) is one passage now, page 2
    # likewise; the page vector is still the mean over its passages (pdf_passage_words caps them).
    blocks = np.array([r["vec_text"] for r in rows if r["kind"] == "block" and r["page"] == 1])
    assert len(blocks) >= 1
    mean = blocks.mean(axis=0)
    assert np.allclose(page["vec_text"], mean / np.linalg.norm(mean), atol=1e-5)
