"""Search by image and by crop through the engine (instance signal, no model weights), CLI included."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import ImageOps

import polyseek
from polyseek.errors import QueryError
from tests.fixtures import iou, textured_image


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i in range(5):
        textured_image(i).save(root / f"photo{i}.jpg", quality=92)
    (root / "readme.md").write_text("# Photos\n\nFive textured test scenes.\n")
    idx = polyseek.open(tmp_path_factory.mktemp("pidx") / "idx")
    rep = idx.add([root])
    assert not rep.failed
    return idx, root


def test_crop_finds_its_source_with_the_matched_box(photo_index, tmp_path):
    idx, root = photo_index
    assert "instance" in idx.signals()
    box = (110, 60, 160, 130)
    hits = idx.search(image=str(root / "photo3.jpg"), bbox=box, k=3)
    assert hits[0].asset.id == "photo3" and hits[0].unit.kind == "image"
    match = hits[0].extra["match"]
    assert iou(match["box"], box) > 0.5, match
    assert hits[0].signals["instance"] >= 8


def test_transformed_query_still_matches(photo_index, tmp_path):
    idx, root = photo_index
    from PIL import Image

    im = Image.open(root / "photo1.jpg").crop((60, 40, 300, 220))
    im = ImageOps.mirror(im.resize((180, 135)))
    q = tmp_path / "q.jpg"
    im.save(q, quality=70)
    hits = idx.search(image=str(q), k=3)
    assert hits[0].asset.id == "photo1"
    assert hits[0].extra["match"]["mirrored"] is True


def test_image_search_respects_filters(photo_index):
    idx, root = photo_index
    from polyseek.types import Filters

    assert not idx.search(image=str(root / "photo2.jpg"), filters=Filters(type=("pdf",)))


def test_removed_images_are_not_found(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    for i in range(3):
        textured_image(10 + i).save(root / f"s{i}.png")
    idx = polyseek.open(tmp_path / "idx")
    idx.add([root])
    assert idx.search(image=str(root / "s1.png"))[0].asset.id == "s1"
    idx.remove(["s1"])
    assert all(h.asset.id != "s1" for h in idx.search(image=str(root / "s1.png")))


def test_bad_query_images(photo_index, tmp_path):
    idx, root = photo_index
    tiny = tmp_path / "tiny.png"
    textured_image(1).resize((1, 1)).save(tiny)
    with pytest.raises(QueryError, match="too small"):
        idx.search(image=str(tiny))
    with pytest.raises(QueryError, match="outside"):
        idx.search(image=str(root / "photo0.jpg"), bbox=(3000, 2000, 50, 50))
    # A crop reaching past the image's edge is clipped to it, not refused: the kept part is searched.
    whole = idx.search(image=str(root / "photo0.jpg"), k=1)
    clipped = idx.search(image=str(root / "photo0.jpg"), bbox=(-20, -20, 5000, 5000), k=1)
    assert clipped[0].asset.id == whole[0].asset.id == "photo0"


def test_cli_image_and_crop(photo_index):
    idx, root = photo_index
    p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "search", "--image", str(root / "photo4.jpg"),
                        "--crop", "50,50,150,120", "--index", str(idx.path), "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    hits = json.loads(p.stdout)["hits"]
    assert hits[0]["asset"]["id"] == "photo4" and "match" in hits[0]["extra"]
