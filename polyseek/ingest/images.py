"""Image extractor (Pillow): JPEG, PNG, WebP, GIF (first frame), BMP, TIFF.

The pixel count is checked from the header before decoding (decompression bombs), EXIF orientation is applied so
boxes match what people see, and the whole image is decoded here so truncated files fail at ingest, not later.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import IngestError
from ..types import Asset, Extraction, Unit
from .base import ExtractContext, Extractor, extractors
from .common import file_asset, fit_long_side, parse_exif_date, thumbnail_jpeg

PIXELS_LONG_SIDE = 1024  # unit.image for visual encoders

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_TAG_DATE_ORIGINAL = 0x9003
_TAG_DATE = 0x0132
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110


def open_image(path: Path, max_pixels: int):
    """Open, size-check, fully decode and EXIF-orient an image; returns (oriented image, raw exif, format, mode).

    Raises IngestError with a readable reason for oversized, corrupt or truncated images.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns/raises at its own limit; ours is the configured one, checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            if w * h > max_pixels:
                img.close()
                raise IngestError(
                    f"image is {w}x{h} = {_mp(w * h)}, over the limit of {_mp(max_pixels)} (set ingest.max_image_pixels)"
                )
            fmt, mode = img.format or "", img.mode
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # first frame of GIF/WebP/TIFF animations
            img.load()
            exif = img.getexif()
            oriented = ImageOps.exif_transpose(img)
    except IngestError:
        raise
    except Image.DecompressionBombError as exc:
        raise IngestError(f"image too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise IngestError(f"corrupt {_fmt_name(path)}: not a readable image") from exc
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "end of file" in msg.lower():
            raise IngestError(f"truncated {_fmt_name(path)}: {msg}") from exc
        raise IngestError(f"corrupt {_fmt_name(path)}: {msg}") from exc
    except (ValueError, SyntaxError, EOFError) as exc:  # Pillow raises these from some plugins on bad headers
        raise IngestError(f"corrupt {_fmt_name(path)}: {exc}") from exc
    return oriented, exif, fmt, mode


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 100_000 else f"{pixels:,} pixels"


def _fmt_name(path: Path) -> str:
    from .detect import suffix_kind

    kind = suffix_kind().get(path.suffix.lower(), "")
    return {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF"}.get(kind, "image")


def exif_meta(exif) -> dict[str, Any]:
    """Camera make/model, capture date (string) and GPS lat/lon (decimal degrees) from an Exif object."""
    meta: dict[str, Any] = {}
    if not exif:
        return meta
    for tag, key in ((_TAG_MAKE, "camera_make"), (_TAG_MODEL, "camera_model")):
        val = exif.get(tag)
        if isinstance(val, str) and val.strip("\x00 "):
            meta[key] = val.strip("\x00 ")
    sub = exif.get_ifd(_EXIF_IFD)
    date = sub.get(_TAG_DATE_ORIGINAL) or exif.get(_TAG_DATE)
    if isinstance(date, str) and parse_exif_date(date):
        meta["exif_date"] = date.strip("\x00 ")
    gps = exif.get_ifd(_GPS_IFD)
    lat = _gps_degrees(gps.get(2), gps.get(1))
    lon = _gps_degrees(gps.get(4), gps.get(3))
    if lat is not None and lon is not None:
        meta["gps_lat"], meta["gps_lon"] = round(lat, 7), round(lon, 7)
    return meta


def _gps_degrees(dms, ref) -> float | None:
    """(degrees, minutes, seconds) rationals and an N/S/E/W ref to signed decimal degrees."""
    try:
        d, m, s = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    return -value if str(ref).strip().upper() in ("S", "W") else value


def image_unit(unit_id: str, image, ctx: ExtractContext, warnings_out: list[str]) -> Unit:
    """One unit covering the whole image, with OCR text/lines (when enabled) and pixels (when wanted)."""
    w, h = image.size
    unit = Unit(id=unit_id, kind="image", bbox=(0.0, 0.0, float(w), float(h)))
    if ctx.config.ocr:
        from .ocr import get_engine

        lines = get_engine(ctx.config.ocr_engine).read(image)
        unit.text = "\n".join(l.text for l in lines)
        unit.meta["ocr"] = [l.to_dict() for l in lines]
    if ctx.want_pixels:
        unit.image = fit_long_side(image if image.mode == "RGB" else image.convert("RGB"), PIXELS_LONG_SIDE)
    return unit


def fill_image_asset(asset: Asset, image, exif, fmt: str, mode: str, thumbnail_size: int) -> None:
    """Image metadata, EXIF date (as `created`) and a JPEG thumbnail onto `asset`."""
    w, h = image.size
    asset.meta.update({"width": w, "height": h, "format": fmt, "mode": mode})
    asset.meta.update(exif_meta(exif))
    created = parse_exif_date(asset.meta.get("exif_date"))
    if created is not None:
        asset.created = created
    asset.thumbnail = thumbnail_jpeg(image, thumbnail_size)


@extractors.register("image")
class ImageExtractor(Extractor):
    """A whole image as one unit, with OCR text and EXIF metadata."""

    asset_type = "image"
    formats = {"jpeg": ("a JPEG image", (".jpg", ".jpeg", ".jpe")), "png": ("a PNG image", (".png",)),
               "webp": ("a WebP image", (".webp",)), "gif": ("a GIF image", (".gif",)),
               "bmp": ("a BMP image", (".bmp",)), "tiff": ("a TIFF image", (".tif", ".tiff"))}
    unit_kinds = ("image", "region")
    instance_kinds = ("image",)

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:
        path = Path(path)
        image, exif, fmt, mode = open_image(path, ctx.config.max_image_pixels)
        asset = file_asset(path, ctx.asset_id, "image", ctx.file_hash)
        asset.title = path.stem
        fill_image_asset(asset, image, exif, fmt, mode, ctx.config.thumbnail_size)
        warns: list[str] = []
        unit = image_unit(f"{ctx.asset_id}#img", image, ctx, warns)
        units = [unit] + (region_tiles(unit) if ctx.region_tiles else [])
        return Extraction(asset=asset, units=units, warnings=warns)


def region_tiles(unit: Unit, min_side: int = 160) -> list[Unit]:
    """Multi-scale tiles of a whole-image unit (2x2, and a 3x3 grid for large images, both overlapping), as
    `region` units with only visual vectors, so a small object can be found semantically."""
    img = unit.image
    if img is None or unit.bbox is None:
        return []
    out = []
    sx, sy = unit.bbox[2] / img.width, unit.bbox[3] / img.height  # tile pixels -> unit frame
    n = 0
    for g in (2, 3):
        tw, th = img.width * 2 / (g + 1), img.height * 2 / (g + 1)  # 50% overlap between neighbours
        if min(tw, th) < min_side:
            continue
        for gy in range(g):
            for gx in range(g):
                x0, y0 = gx * tw / 2, gy * th / 2
                box = (int(x0), int(y0), int(round(x0 + tw)), int(round(y0 + th)))
                n += 1
                out.append(Unit(id=f"{unit.id.rsplit('#', 1)[0]}#r{n}", kind="region", text="",
                                bbox=(box[0] * sx, box[1] * sy, (box[2] - box[0]) * sx, (box[3] - box[1]) * sy),
                                meta={"grid": g}, image=img.crop(box)))
    return out
