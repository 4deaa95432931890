"""Multi-scale crop search: a collage query finds each of its sources and says which crop matched which;
OCR text in the query image is searched as text; the CLI prints the evidence."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

import polyseek
from polyseek.config import IndexConfig, IngestConfig
from polyseek.retrieve.crops import grid_crops, nms, propose_crops, search_crops
from polyseek.types import Query
from tests.fixtures import iou, text_image, textured_image

LEFT_SRC = (40, 30, 240, 230)  # region of scene20 pasted at x 0..200 of the collage
RIGHT_SRC = (120, 40, 320, 240)  # region of scene21 pasted at x 200..400


@pytest.fixture(scope="module")
def crop_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for i in range(20, 24):
        textured_image(i).save(root / f"scene{i}.jpg", quality=92)
    (root / "notes.md").write_text("# Coast\n\nThe harbour lighthouse keeper wrote in his logbook every night.\n")
    # Without OCR at ingest: indexing stays fast; the OCR test asks for query OCR explicitly.
    idx = polyseek.open(tmp_path_factory.mktemp("cidx") / "idx", IndexConfig(ingest=IngestConfig(ocr=False)))
    assert not idx.add([root]).failed
    collage = Image.new("RGB", (400, 200))
    collage.paste(textured_image(20).crop(LEFT_SRC), (0, 0))
    collage.paste(textured_image(21).crop(RIGHT_SRC), (200, 0))
    q = root.parent / "collage.jpg"
    collage.save(q, quality=88)
    return idx, q


def test_proposals_are_bounded_and_distinct():
    im = textured_image(5, size=(480, 300))
    crops = propose_crops(im, max_crops=12)
    assert crops[0].source == "whole" and crops[0].box == (0, 0, 480, 300)
    assert len(crops) == 12 and {"salient", "grid2"} <= {c.source for c in crops}
    for c in crops:
        x, y, w, h = c.box
        assert x >= 0 and y >= 0 and x + w <= 480 and y + h <= 300 and min(w, h) >= 32
    assert all(iou(a.box, b.box) <= 0.7 for i, a in enumerate(crops) for b in crops[i + 1:])
    assert len(grid_crops(480, 300, 3)) == 9
    assert nms([(0, 0, 10, 10), (1, 1, 10, 10), (50, 50, 10, 10)], [0.5, 0.9, 0.1]) == [1, 2]


def test_collage_finds_both_sources_and_says_which_crop(crop_index):
    idx, q = crop_index
    hits = idx.search_crops(Query(image=str(q), k=4))
    assert {h.asset.id for h in hits[:2]} == {"scene20", "scene21"}
    by_id = {h.asset.id: h for h in hits}
    for aid, src, (lo, hi) in (("scene20", LEFT_SRC, (0, 200)), ("scene21", RIGHT_SRC, (200, 400))):
        ev = by_id[aid].extra["crops"]
        assert by_id[aid].extra["n_crops"] >= 2
        # Crops lying within one half of the collage found that half's source first, with a box inside it.
        inside = [e for e in ev if e["crop"] is not None and e["source"] != "whole"
                  and lo - 10 <= e["box"][0] and e["box"][0] + e["box"][2] <= hi + 10]
        assert inside and all(e["signal"] == "instance" and e["rank"] == 1 for e in inside), ev
        for e in inside:
            x, y, w, h = e["box"]
            # where the crop's pixels came from in the source scene
            expect = (src[0] + x - lo, src[1] + y, w, h)
            assert iou(e["match"], expect) > 0.6, (e, expect)
    # A crop of one half never ranks the other half's source first.
    for aid, (lo, hi) in (("scene21", (0, 200)), ("scene20", (200, 400))):
        assert not [e for e in by_id[aid].extra["crops"] if e["crop"] is not None and e["rank"] == 1
                    and lo - 10 <= e["box"][0] and e["box"][0] + e["box"][2] <= hi + 10]


def test_ocr_text_in_the_query_image_finds_the_document(crop_index, tmp_path):
    idx, _ = crop_index
    q = tmp_path / "sign.png"
    text_image("Lighthouse Keeper", size=(560, 120)).save(q)
    res = search_crops(idx, Query(image=str(q), k=3), ocr=True)
    assert "Lighthouse" in res.text
    assert res.hits[0].asset.id == "notes"
    ev = [e for e in res.hits[0].extra["crops"] if e["source"] == "ocr"]
    assert ev and ev[0]["signal"] in ("bm25", "dense") and "Lighthouse" in ev[0]["text"]
    assert any(c.source == "text" and c.text == res.text for c in res.crops)


def test_cli_crops_auto(crop_index):
    idx, q = crop_index
    p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "search", "--image", str(q), "--crops", "auto",
                        "-k", "2", "--index", str(idx.path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "scene20" in out and "scene21" in out, out
    assert "<- crop 0 (whole) at 0,0,400,200: instance score" in out
    assert "(grid2)" in out and "-> box " in out
