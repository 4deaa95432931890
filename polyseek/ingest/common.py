"""Small helpers shared by the extractors: text cleaning, thumbnails, dates, file stats."""

from __future__ import annotations

import datetime as _dt
import io
import re
from pathlib import Path

from ..types import Asset

_HYPHENS = "-\u00ad\u2010\ufffe\x02"
_WS = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u3000]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\ufffe\uffff]")


def clean_line(text: str) -> str:
    """One line of text with control characters dropped and runs of whitespace collapsed."""
    return _WS.sub(" ", _CONTROL.sub("", text.replace("\ufffe", "-").replace("\x02", "-"))).strip()


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines into one paragraph, undoing end-of-line hyphenation ("infor-" + "mation")."""
    out = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if out and out[-1] in _HYPHENS and len(out) > 1 and out[-2].isalpha() and line[:1].islower():
            out = out[:-1] + line
        elif out:
            out += " " + line
        else:
            out = line
    return out


def clean_text(text: str) -> str:
    """Normalise whitespace and join hyphenated line breaks; paragraphs (blank lines) are kept."""
    paras = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n\n".join(p for p in (join_lines([clean_line(l) for l in para.split("\n")]) for para in paras) if p)


def thumbnail_jpeg(image, size: int) -> bytes:
    """JPEG bytes of `image` with its long side at most `size` pixels (RGB, quality 80)."""
    from PIL import Image

    im = image.copy() if image.mode == "RGB" else image.convert("RGB")
    im.thumbnail((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def fit_long_side(image, limit: int):
    """`image` downscaled so its long side is at most `limit` (returned unchanged when already small)."""
    w, h = image.size
    if max(w, h) <= limit:
        return image
    s = limit / max(w, h)
    return image.resize((max(1, round(w * s)), max(1, round(h * s))))


def file_asset(path: Path, asset_id: str, asset_type: str, file_hash: str = "") -> Asset:
    """An Asset for a file with size, mtime and created (= mtime until an extractor knows better) filled in."""
    st = path.stat()
    return Asset(
        id=asset_id,
        path=str(path.absolute()),
        type=asset_type,
        hash=file_hash,
        size=st.st_size,
        mtime=st.st_mtime,
        created=_dt.datetime.fromtimestamp(st.st_mtime, tz=_dt.timezone.utc),
        source=str(path.absolute()),
    )


_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*([Zz+\-])?(\d{2})?'?(\d{2})?'?")


def parse_pdf_date(value: str | None) -> _dt.datetime | None:
    """Parse a PDF date string ("D:20240131120000+01'00'") into an aware datetime; None when unparseable."""
    if not value:
        return None
    m = _PDF_DATE.match(value.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss, sign, oh, om = m.groups()
    tz = _dt.timezone.utc
    if sign in ("+", "-") and oh:
        off = _dt.timedelta(hours=int(oh), minutes=int(om or 0))
        tz = _dt.timezone(off if sign == "+" else -off)
    try:
        return _dt.datetime(int(y), int(mo or 1), int(d or 1), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz)
    except ValueError:
        return None


def parse_exif_date(value: str | None) -> _dt.datetime | None:
    """Parse an EXIF date ("2023:07:14 09:30:00") into a datetime; EXIF has no zone, so it is read as UTC to
    stay comparable with the other (aware) dates. None when invalid."""
    if not value:
        return None
    try:
        return _dt.datetime.strptime(str(value).strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
