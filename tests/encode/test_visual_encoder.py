"""A configured CLIP-family visual encoder end to end, with a tiny random CLIP built and saved by the test and
loaded through the same `clip:FOLDER` path as a real model. Random weights: only plumbing is asserted, not quality."""

from __future__ import annotations

import pytest

import polyseek
from polyseek.config import IndexConfig, SearchConfig
from polyseek.errors import IndexMismatchError
from tests.fixtures import shapes_image, text_image
from tests.tiny_clip import build_tiny_clip


@pytest.fixture(scope="module")
def clip_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("clipcorpus")
    model = build_tiny_clip(tmp_path_factory.mktemp("tinyclip"))
    shapes_image().save(root / "shapes.png")
    text_image("HELLO", size=(160, 80)).save(root / "hello.png")
    from tests.fixtures import report_pdf

    report_pdf(root / "report.pdf")
    (root / "plain.md").write_text("# Plain\n\nJust text here.\n")
    path = tmp_path_factory.mktemp("clipidx") / "idx"
    idx = polyseek.open(path, IndexConfig(visual_encoder=f"clip:{model}"))
    rep = idx.add([root])
    return idx, root, model, rep


def test_images_pages_and_figures_get_visual_vectors(clip_index):
    idx, root, model, rep = clip_index
    assert not rep.failed
    assert "visual" in idx.signals()
    t = idx.store.scan_units(["id", "kind", "vec_visual"])
    has = {r["id"]: any(abs(v) > 0 for v in r["vec_visual"]) for r in t.to_pylist()}
    kinds = {r["id"]: r["kind"] for r in t.to_pylist()}
    assert has["shapes#img"] and has["hello#img"]
    assert any(has[u] for u, k in kinds.items() if k == "page")
    assert any(has[u] for u, k in kinds.items() if k == "figure")
    assert not any(has[u] for u, k in kinds.items() if k == "passage")  # text has no pixels
    assert [u for u, k in kinds.items() if k == "region" and u.startswith("shapes#")] == []  # 200x150: too small


def test_large_images_get_region_tiles_that_answer_crop_queries(tmp_path, clip_index):
    from tests.fixtures import textured_image

    idx, root, model, _ = clip_index
    big = tmp_path / "big"
    big.mkdir()
    textured_image(7, size=(480, 360)).save(big / "scene.png")
    idx.add([big])
    regions = idx.store.units_of_asset("scene")
    tiles = {r["id"]: tuple(r["bbox"]) for r in regions if r["kind"] == "region"}
    assert len(tiles) == 4 + 9  # 2x2 tiles of 320x240 and 3x3 tiles of 240x180, each overlapping by half
    uid = "scene#r7"
    x, y, w, h = tiles[uid]
    hits = idx.search(image=str(big / "scene.png"), bbox=(x, y, w, h), k=1, config=SearchConfig(signals=("visual",)))
    assert hits[0].asset.id == "scene" and hits[0].unit.id == uid  # identical pixels: the tile wins


def test_text_query_searches_visual_vectors_and_image_query_works(clip_index):
    idx, root, _, _ = clip_index
    hits = idx.search("a red circle", k=10, config=SearchConfig(signals=("visual",)))
    assert hits and all(set(h.signals) == {"visual"} for h in hits)
    img_hits = idx.search(image=str(root / "shapes.png"), k=3, config=SearchConfig(signals=("visual",)))
    assert img_hits[0].asset.id == "shapes"  # identical pixels: cosine 1 even with random weights
    assert img_hits[0].signals["visual"] == pytest.approx(1.0, abs=1e-4)
    fused = idx.search("plain text here", k=5)
    assert "plain" in [h.asset.id for h in fused]


def test_reopen_records_visual_encoder(clip_index):
    idx, _, model, _ = clip_index
    again = polyseek.open(idx.path)
    assert again.config.visual_encoder == f"clip:{model}"
    assert again.manifest["encoders"]["visual"]["dim"] == 16
    with pytest.raises(IndexMismatchError):
        polyseek.open(idx.path, IndexConfig(visual_encoder=None))
