"""Sniff a file's real type from its first bytes (magic numbers), so a mislabelled file fails with a clear reason.

The suffix says what the user thinks the file is; the bytes say what it is. Both are checked: a text file
named `.jpg` is refused as "file named .jpg is not a JPEG image (looks like text)".
"""

from __future__ import annotations

from pathlib import Path

from ..errors import IngestError, UnsupportedFileError

IMAGE_KINDS = frozenset({"jpeg", "png", "webp", "gif", "bmp", "tiff"})  # byte formats Pillow reads alike
MEDIA_KINDS = frozenset({"mp4", "matroska", "avi", "wav", "mp3", "m4a", "flac", "ogg"})  # FFmpeg reads alike


def kinds() -> dict[str, tuple[str, tuple[str, ...], str]]:
    """format -> (human name, suffixes, extractor name): the extractors' declarations (ingest/base.py)."""
    from .base import formats

    return formats()


def suffix_kind() -> dict[str, str]:
    return {suffix: kind for kind, (_, suffixes, _) in kinds().items() for suffix in suffixes}


def supported_suffixes() -> tuple[str, ...]:
    return tuple(sorted(suffix_kind()))


_HEAD = 2048


def sniff_bytes(head: bytes) -> str | None:
    """The binary kind these leading bytes belong to ("jpeg", "pdf", ...), "text" for likely text, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    media = _sniff_media(head)
    if media:
        return media
    # PDF readers accept the header anywhere in the first 1024 bytes.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if _looks_like_text(head):
        return "text"
    return None


def _sniff_media(head: bytes) -> str | None:
    """Audio/video containers by their magic: ISO-BMFF `ftyp` boxes (M4A brand or MP4/MOV), EBML, RIFF, ID3/MPEG
    audio frame sync, fLaC, OggS, ADTS."""
    if head[4:8] == b"ftyp":
        return "m4a" if head[8:12] in (b"M4A ", b"M4B ", b"M4P ") else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 in (0xE2, 0xE4, 0xE6)):
        return "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "m4a"  # ADTS AAC
    return None


def _looks_like_text(head: bytes) -> bool:
    """Text has no NUL bytes (outside UTF-16) and few control characters; legacy 8-bit encodings count as text."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls <= max(1, len(head) // 100)


def detect(path: Path) -> str:
    """The kind of `path` ("jpeg", "png", ..., "pdf", "text", "html"); raises IngestError when bytes and name disagree.

    Raises IngestError("empty file (0 bytes)") for an empty file, UnsupportedFileError for unknown suffixes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    expected = suffix_kind().get(suffix)
    if expected is None:
        raise UnsupportedFileError(
            f"unsupported file type {suffix or '(no suffix)'!r}; supported: {', '.join(supported_suffixes())}",
            path=str(path),
        )
    KINDS = kinds()
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    if not head:
        raise IngestError("empty file (0 bytes)", path=str(path))
    found = sniff_bytes(head)
    if expected in ("text", "html"):
        if found != "text":
            looks = KINDS[found][0] if found else "binary data"
            raise IngestError(f"file named {suffix} is not {KINDS[expected][0]} (looks like {looks})", path=str(path))
        return expected
    if found == expected:
        return expected
    if found in IMAGE_KINDS and expected in IMAGE_KINDS:
        # A PNG saved as .jpg is still an image we can read; trust the bytes.
        return found
    if found in MEDIA_KINDS and expected in MEDIA_KINDS:
        # FFmpeg reads by content: an M4A named .mp4 or an MP3 named .wav still plays; trust the bytes.
        return found
    looks = "text" if found == "text" else (KINDS[found][0] if found else "unknown binary data")
    if found == "text" and head.lstrip()[:1] == b"<":
        looks = "text (HTML/XML)"
    raise IngestError(f"file named {suffix} is not {KINDS[expected][0]} (looks like {looks})", path=str(path))
