"""PDF extractor (pypdfium2): one unit per page, text blocks grouped by layout, figures with their captions.

Speed matters (100+ pages/s on the text-layer path), so the page text is read once as UTF-16 and split at the
line breaks pdfium inserts; each line's box comes from pdfium's text rectangles for that char range. Lines are
then grouped into blocks by vertical gaps, font height and column changes. Coordinates are converted from PDF
user space (origin bottom-left) to the displayed page (rotation applied, origin top-left), in points.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import IngestError
from ..types import Extraction, Unit
from .base import ExtractContext, Extractor, extractors
from .common import clean_line, file_asset, join_lines, parse_pdf_date, thumbnail_jpeg
from .passages import is_label, merge_blocks

OCR_DPI = 150
_CAPTION = re.compile(r"^\s*(figure|fig\.?|table|chart|plate|exhibit)\s*[\dIVX]", re.I)
_MIN_FIGURE_PT = 24.0  # image objects smaller than this (icons, bullets, rules) are not figures
_MAX_FIGURES = 24


@dataclass
class Line:
    """A line of text with its box in displayed page points (top-left origin)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float = 0.0  # font size of the first char (0 when unknown, e.g. OCR lines)

    @property
    def h(self) -> float:
        return self.y1 - self.y0


class _Transform:
    """PDF user space → displayed page space (points, top-left origin, page /Rotate applied)."""

    def __init__(self, page) -> None:
        import pypdfium2.raw as raw

        # FPDF_GetPageBoundingBox resolves inherited boxes (crop ∩ media); pypdfium2's get_cropbox() does not
        # and falls back to US Letter when the box lives on the /Pages node.
        rect = raw.FS_RECTF()
        if raw.FPDF_GetPageBoundingBox(page.raw, rect):
            left, bottom, right, top = rect.left, min(rect.bottom, rect.top), rect.right, max(rect.bottom, rect.top)
        else:
            left, bottom, right, top = page.get_cropbox()
        self.l, self.b, self.r, self.t = left, bottom, right, top
        self.rot = page.get_rotation() % 360

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """A PDF-space rectangle as (x0, y0, x1, y1) in the UPRIGHT page (rotation not applied, top-left origin).

        Layout (lines, blocks, captions) is done upright so "below" means below in reading direction;
        `display` converts the final boxes to the displayed page."""
        return x0 - self.l, self.t - max(y0, y1), x1 - self.l, self.t - min(y0, y1)

    def display(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """An upright box (x0, y0, x1, y1) as (x0, y0, x1, y1) on the displayed page (/Rotate applied)."""
        w, h = self.r - self.l, self.t - self.b
        (ax, ay), (bx, by) = self._rot(box[0], box[1], w, h), self._rot(box[2], box[3], w, h)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def _rot(self, x: float, y: float, w: float, h: float) -> tuple[float, float]:
        # clockwise display rotation of an upright point; w, h are the upright page size
        if self.rot == 90:
            return h - y, x
        if self.rot == 180:
            return w - x, h - y
        if self.rot == 270:
            return y, w - x
        return x, y


def _page_lines(textpage, tf: _Transform) -> list[Line]:
    """Text lines of a page in pdfium's char order, each with the union box of its text rectangles."""
    import numpy as np
    import pypdfium2.raw as raw

    n_chars = raw.FPDFText_CountChars(textpage)
    if n_chars <= 0:
        return []
    buf = (ctypes.c_ushort * (n_chars + 1))()
    n_units = raw.FPDFText_GetText(textpage, 0, n_chars, buf) - 1  # includes the NUL terminator
    if n_units <= 0:
        return []
    units = np.frombuffer(buf, dtype=np.uint16, count=n_units)
    raw_bytes = units.tobytes()
    breaks = np.flatnonzero((units[:-1] == 13) & (units[1:] == 10)).tolist()
    l, t, r, b = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    tp = textpage.raw  # the bare handle: skips pypdfium2's per-call parameter conversion
    count_rects, get_rect = raw.FPDFText_CountRects, raw.FPDFText_GetRect
    char_index = raw.FPDFText_GetCharIndexFromTextIndex
    font_size = raw.FPDFText_GetFontSize
    lines: list[Line] = []
    start = 0
    for end in breaks + [n_units]:
        if end > start:
            text = clean_line(raw_bytes[2 * start : 2 * end].decode("utf-16-le", "replace"))
            if text:
                c0 = char_index(tp, start)
                c1 = char_index(tp, end - 1)
                if c0 >= 0 and c1 >= c0:
                    # union of the line's rectangles in PDF space, transformed once
                    x0 = y0 = float("inf")
                    x1 = y1 = float("-inf")
                    for j in range(count_rects(tp, c0, c1 - c0 + 1)):
                        if get_rect(tp, j, l, t, r, b):
                            if l.value < x0:
                                x0 = l.value
                            if r.value > x1:
                                x1 = r.value
                            if b.value < y0:
                                y0 = b.value
                            if t.value > y1:
                                y1 = t.value
                    if x1 > x0 and y1 > y0:
                        lines.append(Line(text, *tf.box(x0, y0, x1, y1), size=font_size(tp, c0)))
        start = end + 2
    return lines


def group_blocks(lines: list[Line]) -> list[list[Line]]:
    """Group lines (in reading order) into blocks: a new block starts at a paragraph-sized vertical gap,
    a jump up or sideways (new column), or a change of font height (heading vs body)."""
    blocks: list[list[Line]] = []
    for line in lines:
        if blocks:
            prev = blocks[-1][-1]
            h = max(min(prev.h, line.h), 1.0)
            same_row = line.y0 < prev.y1 - 0.3 * h and line.y1 > prev.y0 + 0.3 * h
            gap = line.y0 - prev.y1
            overlaps_x = line.x0 < prev.x1 + 2 * h and line.x1 > prev.x0 - 2 * h
            if line.size and prev.size:  # glyph boxes vary with ascenders; font sizes do not
                similar = 0.9 < line.size / prev.size < 1.12
            else:
                similar = 0.8 < line.h / max(prev.h, 0.1) < 1.25
            if (same_row and line.x0 - prev.x1 < 3 * h) or (
                -0.3 * h <= gap < 0.9 * h and overlaps_x and similar
            ):
                blocks[-1].append(line)
                continue
        blocks.append([line])
    return blocks


def _images(page, tf: _Transform) -> list[tuple[float, float, float, float]]:
    """Boxes (displayed space) of image objects on the page, including those inside form XObjects."""
    import pypdfium2.raw as raw

    out: list[tuple[float, float, float, float]] = []
    l, b, r, t = ctypes.c_float(), ctypes.c_float(), ctypes.c_float(), ctypes.c_float()

    def walk(count, get, parent, depth: int) -> None:
        for i in range(count(parent)):
            obj = get(parent, i)
            kind = raw.FPDFPageObj_GetType(obj)
            if kind == raw.FPDF_PAGEOBJ_IMAGE:
                if raw.FPDFPageObj_GetBounds(obj, l, b, r, t):
                    out.append(tf.box(l.value, b.value, r.value, t.value))
            elif kind == raw.FPDF_PAGEOBJ_FORM and depth < 3:
                walk(raw.FPDFFormObj_CountObjects, raw.FPDFFormObj_GetObject, obj, depth + 1)

    walk(raw.FPDFPage_CountObjects, raw.FPDFPage_GetObject, page.raw, 0)
    return out


def _merge_boxes(boxes: list[tuple[float, float, float, float]], pad: float = 2.0):
    """Union boxes that overlap or touch (tiled images make one figure)."""
    boxes = sorted(boxes)
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        out: list[tuple[float, float, float, float]] = []
        for bx in boxes:
            for i, ob in enumerate(out):
                if bx[0] <= ob[2] + pad and bx[2] >= ob[0] - pad and bx[1] <= ob[3] + pad and bx[3] >= ob[1] - pad:
                    out[i] = (min(ob[0], bx[0]), min(ob[1], bx[1]), max(ob[2], bx[2]), max(ob[3], bx[3]))
                    merged = True
                    break
            else:
                out.append(bx)
        boxes = out
    return boxes


def find_caption(fig: tuple[float, float, float, float], blocks: list[tuple[str, tuple[float, float, float, float]]],
                 page_h: float) -> str:
    """The caption of a figure: the nearest block starting with "Figure"/"Fig."/"Table" just below or above it,
    else the nearest block directly below or above within a small distance."""
    x0, y0, x1, y1 = fig
    best: tuple[float, str] | None = None
    near: tuple[float, str] | None = None
    for text, (bx0, by0, bx1, by1) in blocks:
        if bx1 < x0 - 20 or bx0 > x1 + 20:
            continue  # not in the figure's column
        if by0 >= y1 - 2:
            dist = by0 - y1
        elif by1 <= y0 + 2:
            dist = (y0 - by1) * 1.5  # captions are more often below
        else:
            continue
        if _CAPTION.match(text) and dist < page_h * 0.25 and (best is None or dist < best[0]):
            best = (dist, text)
        if dist < 24 and (near is None or dist < near[0]):
            near = (dist, text)
    return (best or near or (0, ""))[1]


def _open(path: Path):
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if exc.err_code == raw.FPDF_ERR_PASSWORD:
            raise IngestError("encrypted PDF (password required)") from exc
        if exc.err_code == raw.FPDF_ERR_SECURITY:
            raise IngestError("encrypted PDF (unsupported security handler)") from exc
        raise IngestError(f"broken PDF: {exc}") from exc


@extractors.register("pdf")
class PdfExtractor(Extractor):
    """A PDF as page units, with block and figure units inside each page."""

    asset_type = "pdf"
    formats = {"pdf": ("a PDF", (".pdf",))}
    unit_kinds = ("page", "block", "figure")
    instance_kinds = ("page", "figure")

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:
        import pypdfium2 as pdfium

        path = Path(path)
        doc = _open(path)
        try:
            n_pages = len(doc)
            if n_pages == 0:
                raise IngestError("broken PDF: no pages")
            asset = file_asset(path, ctx.asset_id, "pdf", ctx.file_hash)
            meta = {k: v for k, v in doc.get_metadata_dict(skip_empty=True).items()}
            asset.meta["pages"] = n_pages
            for key in ("Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate"):
                if meta.get(key):
                    asset.meta[key.lower() if key != "CreationDate" else "creation_date"] = meta[key]
            created = parse_pdf_date(meta.get("CreationDate"))
            if created is not None:
                asset.created = created
            units: list[Unit] = []
            warns: list[str] = []
            for i in range(n_pages):
                try:
                    page = doc[i]
                except pdfium.PdfiumError as exc:
                    warns.append(f"page {i + 1}: cannot be loaded ({exc})")
                    continue
                try:
                    units.extend(self._page(page, i + 1, ctx, warns, thumbnail=(i == 0), asset=asset))
                finally:
                    page.close()
            first_text = next((u.text for u in units if u.kind == "block" and u.text), "")
            asset.title = asset.meta.get("title") or first_text.split("\n")[0][:200] or path.stem
            return Extraction(asset=asset, units=units, warnings=warns, pooled=pooled_pages(units))
        finally:
            doc.close()

    def _page(self, page, pno: int, ctx: ExtractContext, warns: list[str], *, thumbnail: bool, asset) -> list[Unit]:
        cfg = ctx.config
        tf = _Transform(page)
        pw, ph = page.get_size()  # displayed size (rotation applied)
        uw, uh = tf.r - tf.l, tf.t - tf.b  # upright size, the frame layout is done in
        textpage = page.get_textpage()
        try:
            lines = _page_lines(textpage, tf)
        finally:
            textpage.close()
        n_chars = sum(len(l.text) for l in lines)
        ocr_used = False
        if n_chars < cfg.pdf_min_text_chars and cfg.ocr:
            ocr_lines = self._ocr_page(page, cfg.ocr_engine, tf.rot)
            if sum(len(l.text) for l in ocr_lines) > n_chars:
                lines, ocr_used = ocr_lines, True
        render = None
        if ctx.want_pixels:
            render = page.render(scale=cfg.pdf_render_dpi / 72).to_pil().convert("RGB")
        if thumbnail:
            # render straight at thumbnail size unless a full render exists already
            small = render or page.render(scale=min(cfg.pdf_render_dpi / 72, cfg.thumbnail_size / max(pw, ph, 1))).to_pil()
            asset.thumbnail = thumbnail_jpeg(small, cfg.thumbnail_size)

        # Page text: blocks separated by blank lines, lines joined with hyphenation undone; offsets exact.
        blocks = group_blocks(lines)
        page_text_parts: list[str] = []
        pos = 0
        line_boxes: list[list[float]] = []
        block_info: list[tuple[str, tuple[float, float, float, float], int, int]] = []
        for blk in blocks:
            text = join_lines([l.text for l in blk])
            if not text:
                continue
            if page_text_parts:
                page_text_parts.append("\n\n")
                pos += 2
            start = pos
            page_text_parts.append(text)
            pos += len(text)
            box = (min(l.x0 for l in blk), min(l.y0 for l in blk), max(l.x1 for l in blk), max(l.y1 for l in blk))
            block_info.append((text, box, start, pos))
            # line-level boxes: locate each line's text inside the block text (hyphen joins shift it slightly)
            cursor = 0
            for l in blk:
                probe = l.text.rstrip("-\u00ad\u2010")
                k = text.find(probe, cursor)
                if k == -1:
                    continue
                cursor = k + len(probe)
                line_boxes.append([*(round(v, 1) for v in _xywh(tf.display((l.x0, l.y0, l.x1, l.y1)))),
                                   start + k, start + cursor])
        page_text = "".join(page_text_parts)
        page_unit = Unit(
            id=f"{ctx.asset_id}#p{pno}", kind="page", text=page_text, page=pno, bbox=(0.0, 0.0, float(pw), float(ph)),
            meta={"size": [round(pw, 2), round(ph, 2)], "chars": line_boxes, "ocr": ocr_used,
                  "rotation": tf.rot},
        )
        if ctx.want_pixels:
            page_unit.image = render
        units = [page_unit]
        for n, (text, box, s, e) in enumerate(merge_blocks(block_info, cfg.pdf_passage_words)):
            units.append(Unit(id=f"{ctx.asset_id}#p{pno}b{n}", kind="block", text=text, page=pno,
                              bbox=_xywh(tf.display(box)), char_start=s, char_end=e))
        figures = [bx for bx in _merge_boxes([_clip(bx, uw, uh) for bx in _images(page, tf)])
                   if bx[2] - bx[0] >= _MIN_FIGURE_PT and bx[3] - bx[1] >= _MIN_FIGURE_PT
                   and (bx[2] - bx[0]) * (bx[3] - bx[1]) < 0.85 * uw * uh]
        if len(figures) > _MAX_FIGURES:
            warns.append(f"page {pno}: {len(figures)} images, kept the {_MAX_FIGURES} largest")
            figures = sorted(figures, key=lambda bx: -(bx[2] - bx[0]) * (bx[3] - bx[1]))[:_MAX_FIGURES]
        figures.sort(key=lambda bx: (bx[1], bx[0]))
        caption_blocks = [(t, bx) for t, bx, _, _ in block_info]
        for n, box in enumerate(figures):
            caption = find_caption(box, caption_blocks, uh)
            fig = Unit(id=f"{ctx.asset_id}#p{pno}f{n}", kind="figure", page=pno, bbox=_xywh(tf.display(box)),
                       text="" if is_label(caption) else caption)
            if ctx.want_pixels and render is not None:
                s = cfg.pdf_render_dpi / 72
                d = tf.display(box)
                fig.image = render.crop((int(d[0] * s), int(d[1] * s), int(d[2] * s) + 1, int(d[3] * s) + 1))
            units.append(fig)
        return units

    def _ocr_page(self, page, engine: str, rotation: int) -> list[Line]:
        """OCR the upright page rendered at OCR_DPI; boxes mapped back to upright points, in reading order."""
        from .ocr import get_engine

        scale = OCR_DPI / 72
        image = page.render(scale=scale, grayscale=True, rotation=(360 - rotation) % 360).to_pil()
        found = get_engine(engine).read(image)
        lines = [Line(clean_line(o.text), o.bbox[0] / scale, o.bbox[1] / scale, (o.bbox[0] + o.bbox[2]) / scale,
                      (o.bbox[1] + o.bbox[3]) / scale) for o in found]
        lines = [l for l in lines if l.text]
        lines.sort(key=lambda l: (round(l.y0 / max(l.h, 1.0)), l.x0))
        return lines


def _clip(box, pw: float, ph: float):
    return max(0.0, box[0]), max(0.0, box[1]), min(pw, box[2]), min(ph, box[3])


def _xywh(box) -> tuple[float, float, float, float]:
    return (round(box[0], 2), round(box[1], 2), round(box[2] - box[0], 2), round(box[3] - box[1], 2))


def pooled_pages(units: list[Unit]) -> dict[str, list[str]]:
    """page unit id -> its text blocks' unit ids, for pages whose text is covered by blocks.

    The page gets the mean of its blocks' vectors instead of its own encoding: the encoder truncates long inputs
    (MiniLM: 256 tokens), so the mean covers the whole page, and PDF ingest encodes each character once, not twice."""
    blocks: dict[int, list[str]] = {}
    for u in units:
        if u.kind == "block" and u.page is not None and u.text.strip():
            blocks.setdefault(u.page, []).append(u.id)
    return {u.id: blocks[u.page] for u in units if u.kind == "page" and blocks.get(u.page)}
