"""Generators of tiny real test corpora: images drawn with Pillow, PDFs written with fpdf2, text and HTML.

`make_good_corpus(folder)` and `make_bad_corpus(folder)` write files and return a manifest saying what each file
must yield (a findable phrase) or why it must fail (a substring of the IngestError reason). Other stages' tests
import these: `from tests.fixtures import make_good_corpus`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def font_path() -> str | None:
    """A TTF that exists here: matplotlib's bundled DejaVu Sans, else a system DejaVu, else None."""
    try:
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if p.is_file():
            return str(p)
    except ImportError:
        pass
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if os.path.isfile(p):
            return p
    return None


def font(size: int):
    """A scalable font at `size` px (DejaVu when available, Pillow's built-in otherwise)."""
    path = font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def text_image(text: str, size=(360, 120), font_size: int = 44, bg="white", fg="black") -> Image.Image:
    """A small image with `text` drawn large enough to OCR."""
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    d.text((16, (size[1] - font_size) // 2 - 4), text, fill=fg, font=font(font_size))
    return im


def shapes_image(size=(200, 150)) -> Image.Image:
    """A simple scene: a red circle and a blue square on a light background (no text)."""
    im = Image.new("RGB", size, (235, 240, 230))
    d = ImageDraw.Draw(im)
    d.ellipse((20, 30, 100, 110), fill=(220, 30, 30))
    d.rectangle((120, 40, 180, 100), fill=(30, 60, 200))
    return im


def exif_jpeg(path: Path, *, orientation: int = 6, date: str = "2021:06:15 14:30:00", make: str = "PolyCam",
              model: str = "PC-1", lat=(48, 51, 30.0), lon=(2, 17, 40.0)) -> None:
    """A 120x60 JPEG (wider than tall, left half red) with EXIF orientation, date, camera and GPS (Paris)."""
    im = Image.new("RGB", (120, 60), "white")
    ImageDraw.Draw(im).rectangle((0, 0, 59, 59), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0132] = date
    exif.get_ifd(0x8769)[0x9003] = date
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", lat, "E", lon
    im.save(path, format="JPEG", exif=exif, quality=90)


def bar_chart() -> Image.Image:
    """A small four-bar chart (the figure of the generated PDFs)."""
    chart = Image.new("RGB", (300, 160), "white")
    d = ImageDraw.Draw(chart)
    for i, h in enumerate((60, 110, 90, 140)):
        d.rectangle((30 + i * 65, 150 - h, 70 + i * 65, 150), fill=(40 + i * 50, 90, 200 - i * 40))
    return chart


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def report_pdf(path: Path, *, title: str = "Solar Panel Efficiency Report", encrypt_password: str | None = None) -> None:
    """A 2-page PDF with a text layer: headings, paragraphs, and on page 1 an image with a "Figure 1:" caption."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_title(title)
    pdf.set_author("Polyseek Tests")
    pdf.set_creation_date(__import__("datetime").datetime(2023, 3, 14, 9, 26, 53,
                                                           tzinfo=__import__("datetime").timezone.utc))
    if encrypt_password:
        pdf.set_encryption(owner_password="owner-" + encrypt_password, user_password=encrypt_password)
    pdf.set_margins(56, 56)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.cell(0, 28, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Photovoltaic modules convert sunlight into electricity. This report compares the "
                          "efficiency of monocrystalline and polycrystalline panels measured on a rooftop array "
                          "during one summer. Monocrystalline panels reached the highest efficiency.")
    pdf.ln(14)
    y = pdf.get_y()
    pdf.image(io.BytesIO(png_bytes(bar_chart())), x=56, y=y, w=240, h=128)
    pdf.set_y(y + 128 + 6)
    pdf.set_font("helvetica", "I", 10)
    pdf.multi_cell(0, 13, "Figure 1: Monthly energy yield of the rooftop array in kilowatt hours.")
    pdf.ln(18)
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(0, 20, "Method", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Irradiance was logged every minute with a calibrated pyranometer, and inverter output "
                          "was recorded alongside it so that losses could be attributed to temperature.")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(0, 20, "Results", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Average conversion efficiency was 21.4 percent for monocrystalline cells and 17.9 "
                          "percent for polycrystalline cells. Cleaning the panels every month improved yield "
                          "by three percent.")
    pdf.output(str(path))


def scanned_pdf(path: Path, text: str = "SCANNED RECEIPT 4417") -> None:
    """A one-page PDF whose only content is an image of text (no text layer): the OCR path."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(420, 200))
    pdf.add_page()
    im = text_image(text, size=(840, 160), font_size=56)
    pdf.image(io.BytesIO(png_bytes(im)), x=0, y=20, w=420, h=80)
    pdf.output(str(path))


@dataclass
class Manifest:
    """What a generated corpus must produce: good files with a phrase each, bad files with a reason substring."""

    root: Path
    good: dict[str, str] = field(default_factory=dict)  # relative path -> phrase that must be findable
    bad: dict[str, str] = field(default_factory=dict)  # relative path -> substring of the expected reason
    links: dict[str, str] = field(default_factory=dict)  # relative path -> reason discover() reports


def make_good_corpus(folder: str | Path) -> Manifest:
    """Write a mixed corpus of good files into `folder`; each file has a phrase it must be findable by."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    m = Manifest(root)
    text_image("INVOICE 2024").save(root / "invoice.png")
    m.good["invoice.png"] = "INVOICE"
    shapes_image().save(root / "shapes.jpg", quality=90)
    m.good["shapes.jpg"] = ""  # no text: findable visually only
    exif_jpeg(root / "photo_exif.jpg")
    m.good["photo_exif.jpg"] = ""
    (root / "docs").mkdir(exist_ok=True)
    report_pdf(root / "docs" / "report.pdf")
    m.good["docs/report.pdf"] = "polycrystalline"
    scanned_pdf(root / "docs" / "scan.pdf")
    m.good["docs/scan.pdf"] = "RECEIPT"
    (root / "notes.md").write_text(
        "# Garden notes\n\nTomatoes need full sun and regular watering.\n\n## Pests\n\n"
        "Aphids can be washed off with a strong jet of water.\n", encoding="utf-8")
    m.good["notes.md"] = "Aphids"
    (root / "article.html").write_text(
        "<html><head><title>Tea Brewing</title><style>p{color:red}</style></head><body>"
        "<h1>Green tea</h1><p>Brew green tea at 80 degrees for two minutes.</p>"
        "<img src='cup.png' alt='a cup of tea'><script>console.log('hidden words')</script></body></html>",
        encoding="utf-8")
    m.good["article.html"] = "Brew green tea"
    (root / "cafe.txt").write_bytes("Café crème and crêpes at the brasserie.\n".encode("latin-1"))
    m.good["cafe.txt"] = "crêpes"
    return m


def make_bad_corpus(folder: str | Path, *, max_image_pixels: int = 50_000) -> Manifest:
    """Write files that must fail with a clear reason; pass the returned limit as ingest.max_image_pixels.

    The unreadable case is a named pipe (reported as "not a regular file" without blocking) since root can read
    chmod 000 files; a symlink loop and a dangling link are included for discover().
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    m = Manifest(root)
    good = io.BytesIO()
    shapes_image().save(good, format="JPEG")
    data = bytearray(good.getvalue())
    data[20:400] = os.urandom(380)  # header intact enough to be sniffed, markers broken
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(data[4:40]) + b"\x00" * 30)
    m.bad["corrupt.jpg"] = "JPEG"
    png = png_bytes(text_image("TRUNCATED", size=(200, 80)))
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    m.bad["truncated.png"] = "truncated PNG"
    (root / "empty.txt").write_bytes(b"")
    m.bad["empty.txt"] = "empty file (0 bytes)"
    (root / "notreally.jpg").write_text("this is just some text, not a picture\n")
    m.bad["notreally.jpg"] = "is not a JPEG image (looks like text)"
    report_pdf(root / "locked.pdf", encrypt_password="secret")
    m.bad["locked.pdf"] = "encrypted PDF (password required)"
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage garbage\n%%EOF\n")
    m.bad["broken.pdf"] = "broken PDF"
    Image.new("RGB", (300, 300), "gray").save(root / "huge.png")  # 90,000 px: over the limit, the others are under
    assert 300 * 300 > max_image_pixels > 200 * 80
    m.bad["huge.png"] = "over the limit of"
    os.mkfifo(root / "pipe.txt")
    m.bad["pipe.txt"] = "not a regular file"
    (root / "folder.pdf").mkdir()
    m.bad["folder.pdf"] = "is a folder"
    (root / "data.xyz").write_text("unknown type")
    m.bad["data.xyz"] = "unsupported file type"
    os.symlink("loop_b.txt", root / "loop_a.txt")
    os.symlink("loop_a.txt", root / "loop_b.txt")
    m.links["loop_a.txt"] = m.links["loop_b.txt"] = "symlink loop"
    os.symlink("does_not_exist.png", root / "dangling.png")
    m.links["dangling.png"] = "dangling symlink"
    return m


def write_records(folder: str | Path, images_from: Path | None = None) -> dict[str, Path]:
    """JSONL, CSV and Parquet records files with the same rows plus bad rows (JSONL: invalid line, missing id,
    missing image). Returns {"jsonl": path, "csv": path, "parquet": path}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    text_image("LABEL 77", size=(240, 90), font_size=40).save(root / "img" / "label.png")
    rows = [
        {"id": 1, "title": "Bread", "text": "Sourdough needs a ripe starter.", "lang": "en", "image": None},
        {"id": "r2", "title": "Cheese", "text": "Comté ages for months in caves.", "lang": "fr", "image": "img/label.png"},
        {"id": 3, "title": "", "text": "Plain row without title.", "lang": "en", "image": None},
    ]
    paths = {}
    with open(root / "rows.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.write("{not json\n")  # line 4
        fh.write(json.dumps({"title": "no id", "text": "x"}) + "\n")  # line 5
        fh.write(json.dumps({"id": 9, "text": "y", "image": "img/missing.png"}) + "\n")  # line 6
    paths["jsonl"] = root / "rows.jsonl"
    import csv

    with open(root / "rows.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "title", "text", "lang", "image"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        w.writerow({"id": "", "title": "no id", "text": "z", "lang": "en", "image": ""})
    paths["csv"] = root / "rows.csv"
    table = pa.Table.from_pylist([{**r, "id": str(r["id"])} for r in rows])
    pq.write_table(table, root / "rows.parquet")
    paths["parquet"] = root / "rows.parquet"
    return paths


def textured_image(seed: int, size=(360, 270)) -> Image.Image:
    """A textured scene: noise background, shapes, and text, different for every seed."""
    W, H = size
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    base = nrng.integers(0, 256, (H // 6, W // 6, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((W, H), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rng.randrange(W), rng.randrange(H)
        s = rng.randint(6, 40)
        color = tuple(rng.randrange(256) for _ in range(3))
        kind = rng.randrange(3)
        if kind == 0:
            d.rectangle((x, y, x + s, y + rng.randint(6, 40)), fill=color, outline=(0, 0, 0))
        elif kind == 1:
            d.ellipse((x, y, x + s, y + s), fill=color)
        else:
            d.polygon([(x, y), (x + s, y + rng.randint(-s, s)), (x + rng.randint(-s, s), y + s)], fill=color)
    for _ in range(6):
        d.text((rng.randrange(W - 60), rng.randrange(H - 12)), "".join(rng.choices("ABCDEFGHJKLMNPQR0123456789", k=6)),
               fill=tuple(rng.randrange(256) for _ in range(3)))
    return im


def iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
