"""Image decoding for queries and uploads, in one leaf module: paths, bytes or PIL images → oriented RGB pixels."""

from __future__ import annotations

import io
import math
import os
from typing import Any

from .errors import ImageTooLargeError, PolyseekError, QueryError


def decode_image(source, what: str = "query image", max_pixels: int | None = None):
    """A path or bytes decoded to an EXIF-oriented RGB PIL image. Unreadable: QueryError; more than `max_pixels`
    (checked from the header, before the pixels are decoded): ImageTooLargeError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageTooLargeError(f"{what} is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}; "
                                         f"send a smaller image")
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except FileNotFoundError:
        raise QueryError(f"{what} does not exist") from None
    except UnidentifiedImageError:  # its message names the BytesIO object, which says nothing to a person
        raise QueryError(f"{what} is not an image file (unrecognised format); use PNG, JPEG or WebP") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, PolyseekError):
            raise
        raise QueryError(f"{what} cannot be read ({e}); use PNG, JPEG or WebP") from None


def load_query_image(image: Any, bbox=None, *, min_side: int = 8):
    """A query image from a path, bytes or PIL image, EXIF-oriented, RGB, cropped to bbox (x, y, w, h; clipped to
    the image). Unreadable or smaller than `min_side` pixels: QueryError."""
    if isinstance(image, (bytes, bytearray)):
        img = decode_image(image)
    elif isinstance(image, (str, os.PathLike)):
        img = decode_image(image, f"query image {image}")
    elif hasattr(image, "convert"):
        img = image.convert("RGB")
    else:
        raise QueryError(f"the query image must be a path, bytes or a PIL image, got {type(image).__name__}")
    if bbox is not None:
        box = clip_box(img.size, bbox)
        if box != (0, 0, img.width, img.height):
            img = img.crop(box)
    if img.width < min_side or img.height < min_side:
        raise QueryError(f"query image is too small ({img.width}x{img.height}); give at least {min_side}x{min_side} pixels")
    return img


def clip_box(size: tuple[int, int], bbox) -> tuple[int, int, int, int]:
    """A crop box [x, y, w, h] as pixel corners (x0, y0, x1, y1) clipped to an image of `size`; a box with no
    positive area, with non-numbers, or wholly outside the image is a QueryError."""
    w, h = size
    try:
        x, y, bw, bh = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise QueryError(f"crop box must be [x, y, w, h] numbers, got {bbox!r}") from None
    if not all(math.isfinite(v) for v in (x, y, bw, bh)) or bw <= 0 or bh <= 0:
        raise QueryError(f"crop box {x:g},{y:g},{bw:g},{bh:g} must have a positive width and height")
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(w, math.ceil(x + bw)), min(h, math.ceil(y + bh))
    if x1 <= x0 or y1 <= y0:
        raise QueryError(f"crop {x:g},{y:g},{bw:g},{bh:g} is outside the {w}x{h} query image")
    return x0, y0, x1, y1
