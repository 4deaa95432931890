"""Image extraction on drawn images: OCR, EXIF orientation and metadata, thumbnails, pixels."""

from __future__ import annotations

import io

from PIL import Image

from polyseek.config import IngestConfig
from polyseek.ingest import ExtractContext, extract_file
from polyseek.ingest.ocr import get_engine
from tests.fixtures import text_image


def _ctx(asset_id="a", **cfg):
    return ExtractContext(config=IngestConfig(**cfg), asset_id=asset_id)


def test_ocr_reads_invoice_text_with_boxes_inside_image(good_corpus):
    ex = extract_file(good_corpus.root / "invoice.png", _ctx("inv"))
    (unit,) = ex.units
    assert unit.id == "inv#img" and unit.kind == "image"
    assert unit.bbox == (0.0, 0.0, 360.0, 120.0)
    assert "INVOICE" in unit.text.upper()
    assert unit.meta["ocr"], "OCR lines with boxes expected"
    for line in unit.meta["ocr"]:
        x, y, w, h = line["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 361 and y + h <= 121
        assert 0 < line["score"] <= 1
    assert ex.asset.meta["width"] == 360 and ex.asset.meta["format"] == "PNG"


def test_exif_orientation_applied_and_metadata_kept(good_corpus):
    ex = extract_file(good_corpus.root / "photo_exif.jpg", _ctx("ph", ocr=False))
    meta = ex.asset.meta
    # stored 120x60 with orientation 6 (rotate 90 clockwise): displayed 60 wide, 120 tall
    assert (meta["width"], meta["height"]) == (60, 120)
    assert ex.units[0].bbox == (0.0, 0.0, 60.0, 120.0)
    assert meta["camera_make"] == "PolyCam" and meta["camera_model"] == "PC-1"
    assert ex.asset.created.year == 2021 and ex.asset.created.month == 6
    assert abs(meta["gps_lat"] - 48.858333) < 1e-4 and abs(meta["gps_lon"] - 2.294444) < 1e-4
    thumb = Image.open(io.BytesIO(ex.asset.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (60, 120)
    # the red left half of the stored image is the top half once rotated clockwise
    assert thumb.getpixel((30, 20))[0] > 200 and thumb.getpixel((30, 100))[1] > 200


def test_pixels_downscaled_to_1024_when_wanted(tmp_path):
    Image.new("RGB", (2048, 512), "blue").save(tmp_path / "wide.png")
    ctx = ExtractContext(config=IngestConfig(ocr=False, thumbnail_size=100), asset_id="w", want_pixels=True)
    ex = extract_file(tmp_path / "wide.png", ctx)
    assert ex.units[0].image.size == (1024, 256) and ex.units[0].image.mode == "RGB"
    assert max(Image.open(io.BytesIO(ex.asset.thumbnail)).size) == 100
    assert ex.asset.hash and len(ex.asset.hash) == 64


def test_gif_first_frame_and_webp_bmp_tiff(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    for fmt in ("webp", "bmp", "tiff"):
        Image.new("RGB", (50, 30), "white").save(tmp_path / f"x.{fmt}")
    ex = extract_file(tmp_path / "anim.gif", _ctx(ocr=False))
    assert ex.asset.meta["format"] == "GIF"
    for fmt in ("webp", "bmp", "tiff"):
        ex = extract_file(tmp_path / f"x.{fmt}", _ctx(ocr=False))
        assert (ex.asset.meta["width"], ex.asset.meta["height"]) == (50, 30)


def test_ocr_engine_skips_tiny_images_and_maps_boxes_back_from_downscale():
    engine = get_engine("rapidocr")
    assert engine is get_engine("rapidocr")  # created once, shared
    assert engine.read(Image.new("RGB", (20, 300), "white")) == []
    big = text_image("INVOICE", size=(3200, 400), font_size=300)
    lines = engine.read(big)
    assert any("INVOICE" in l.text.upper() for l in lines)
    x, y, w, h = next(l.bbox for l in lines if "INVOICE" in l.text.upper())
    assert w > 1000 and x + w <= 3201  # boxes are in the original 3200 px wide image


def test_one_thread_ocr_engine_is_shared_apart_and_reads_the_same_lines():
    one = get_engine("rapidocr", threads=1)
    assert one is get_engine("rapidocr", threads=1) and one is not get_engine("rapidocr")
    im = text_image("Ferry leaves 7:15", size=(480, 120), font_size=40)
    want = [l.text for l in get_engine("rapidocr").read(im)]
    assert "7:15" in " ".join(want)
    assert [l.text for l in one.read(im, upright=True)] == want


def test_unknown_ocr_engine_lists_known_names():
    import pytest

    from polyseek.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="rapidocr"):
        get_engine("tessaract")
