"""Text extractor: plain text, Markdown, reStructuredText and HTML, chunked into overlapping passages.

Passages break at paragraph, then sentence, then word boundaries; `char_start`/`char_end` index the extracted text,
so `text[char_start:char_end] == unit.text` always holds. Markdown passages carry their heading path.
"""

from __future__ import annotations

import bisect
import re
from html.parser import HTMLParser
from pathlib import Path

from ..errors import IngestError
from ..types import Extraction, Unit
from .base import ExtractContext, Extractor, extractors
from .common import file_asset


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-8 (BOMs honoured); fall back to cp1252, then latin-1, with a warning."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace"), None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace"), None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    # cp1252 is what legacy Western text almost always is; latin-1 decodes any byte, for the rest.
    # (Statistical detectors guess badly on short texts: "Café crème" came back as cp1250.)
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    return text, f"not valid UTF-8; decoded as {encoding}"


# ---------------------------------------------------------------- chunking

_SENT_END = re.compile(r"[.!?。！？][\"')\]]*\s+")


def chunk_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans of ~`size` chars covering `text`, consecutive spans overlapping by up to `overlap` chars.

    An end is placed at the last paragraph break, else sentence end, else space, in the back half of the window.
    """
    size = max(size, 50)
    overlap = max(0, min(overlap, size // 2))
    n = len(text)
    spans: list[tuple[int, int]] = []
    start = _skip_ws(text, 0)
    while start < n:
        end = min(n, start + size)
        if end < n:
            end = _break_before(text, start, end)
        s, e = start, end
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        if overlap:
            # start the overlap at a word (or sentence) boundary
            sp = text.find(" ", nxt, end)
            nxt = sp + 1 if sp != -1 else end
        start = _skip_ws(text, nxt)
    return spans


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _break_before(text: str, start: int, end: int) -> int:
    lo = start + (end - start) // 2
    para = text.rfind("\n\n", lo, end)
    if para != -1:
        return para + 2
    last = None
    for m in _SENT_END.finditer(text, lo, end):
        last = m.end()
    if last is not None:
        return last
    nl = text.rfind("\n", lo, end)
    if nl != -1:
        return nl + 1
    sp = text.rfind(" ", lo, end)
    return sp + 1 if sp != -1 else end


# ---------------------------------------------------------------- markdown

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_SETEXT = re.compile(r"^(\S.*)\n(=+|-+)[ \t]*$", re.M)


def markdown_headings(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) for each ATX (#) or setext (underlined) heading, in order."""
    found = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _MD_HEADING.finditer(text)]
    found += [(m.start(), 1 if m.group(2)[0] == "=" else 2, m.group(1).strip()) for m in _SETEXT.finditer(text)]
    return sorted(found)


def heading_path_at(headings: list[tuple[int, int, str]], offsets: list[int], pos: int) -> list[str]:
    """The heading path (h1 > h2 > ...) in force at character `pos`."""
    idx = bisect.bisect_right(offsets, pos)
    path: list[tuple[int, str]] = []
    for _, level, title in headings[:idx]:
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
    return [t for _, t in path]


# ---------------------------------------------------------------- html


class _HtmlText(HTMLParser):
    """Collects visible text of an HTML page: scripts/styles dropped, blocks on their own lines,
    `<img alt>` as "[image: alt]", headings recorded with their offsets for heading paths."""

    _BLOCK = {"p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "li", "ul", "ol", "table",
              "tr", "blockquote", "pre", "figure", "figcaption", "dl", "dt", "dd", "form", "hr", "br", "td", "th"}
    _SKIP = {"script", "style", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.title = ""
        self.headings: list[tuple[int, int, str]] = []
        self._skip = 0
        self._in_title = False
        self._heading: tuple[int, int, list[str]] | None = None

    def _emit(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def _newline(self, blank: bool = False) -> None:
        self._emit("\n\n" if blank else "\n")

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip += 1
            return
        if tag == "title":
            self._in_title = True
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._newline(True)
            self._heading = (self.length, int(tag[1]), [])
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt and not self._skip:
                self._emit(f" [image: {alt}] ")
        elif tag in self._BLOCK:
            self._newline(tag in ("p", "div", "section", "article", "table", "figure", "blockquote", "pre"))

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading:
            off, level, words = self._heading
            title = " ".join(" ".join(words).split())
            if title:
                self.headings.append((off, level, title))
            self._heading = None
            self._newline(True)
        elif tag in self._BLOCK:
            self._newline()

    def handle_data(self, data):
        if self._in_title:
            self.title += data
            return
        if self._skip:
            return
        if self._heading is not None:
            self._heading[2].append(data)
        self._emit(data)


def html_to_text(html: str) -> tuple[str, str, list[tuple[int, int, str]]]:
    """(visible text, <title>, headings as (offset, level, title)) of an HTML document."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text, remap = _collapse_ws("".join(parser.parts), sorted({h[0] for h in parser.headings}))
    headings = [(remap[o], lvl, t) for o, lvl, t in parser.headings]
    return text, " ".join(parser.title.split()), headings


def _collapse_ws(raw: str, marks: list[int]) -> tuple[str, dict[int, int]]:
    """Collapse whitespace runs to " ", "\n" or "\n\n" (paragraph); map each raw offset in `marks` to the
    offset of the first visible character at or after it in the collapsed text."""
    out: list[str] = []
    pos = 0
    pending = -1  # -1: nothing yet, 0: space, 1: newline, 2: blank line
    remap: dict[int, int] = {}
    mi = 0
    for m in re.finditer(r"\s+|\S+", raw):
        tok = m.group()
        if tok[0].isspace():
            level = 2 if tok.count("\n") >= 2 else (1 if "\n" in tok else 0)
            pending = max(pending, level)
            continue
        if out and pending >= 0:
            sep = (" ", "\n", "\n\n")[pending]
            out.append(sep)
            pos += len(sep)
        pending = -1
        while mi < len(marks) and marks[mi] <= m.start():
            remap[marks[mi]] = pos
            mi += 1
        out.append(tok)
        pos += len(tok)
    for mark in marks[mi:]:
        remap[mark] = pos
    return "".join(out), remap


# ---------------------------------------------------------------- extractor


@extractors.register("text")
class TextExtractor(Extractor):
    """Plain text, Markdown, reST and HTML files as passages."""

    asset_type = "text"
    formats = {"text": ("a text file", (".txt", ".md", ".markdown", ".rst")),
               "html": ("an HTML file", (".html", ".htm"))}
    unit_kinds = ("passage",)

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:
        path = Path(path)
        data = path.read_bytes()
        if not data:
            raise IngestError("empty file (0 bytes)")
        text, warning = decode_text(data)
        warns = [warning] if warning else []
        suffix = path.suffix.lower()
        title = ""
        headings: list[tuple[int, int, str]] = []
        if suffix in (".html", ".htm"):
            text, title, headings = html_to_text(text)
        else:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if suffix in (".md", ".markdown", ".rst"):
                headings = markdown_headings(text)
        asset = file_asset(path, ctx.asset_id, "text", ctx.file_hash)
        if not title and headings:
            title = headings[0][2]
        if not title:
            first = next((l.strip() for l in text.split("\n") if l.strip()), "")
            title = first.lstrip("#").strip()[:200]
        asset.title = title or path.stem
        asset.meta["format"] = {".htm": "html", ".md": "markdown", ".markdown": "markdown"}.get(suffix, suffix[1:])
        asset.meta["chars"] = len(text)
        offsets = [h[0] for h in headings]
        units = []
        for n, (s, e) in enumerate(chunk_spans(text, ctx.config.chunk_chars, ctx.config.chunk_overlap)):
            unit = Unit(id=f"{ctx.asset_id}#c{n}", kind="passage", text=text[s:e], char_start=s, char_end=e)
            if headings:
                unit.meta["headings"] = heading_path_at(headings, offsets, s)
            units.append(unit)
        if not units:
            warns.append("no text found")
        return Extraction(asset=asset, units=units, warnings=warns)
