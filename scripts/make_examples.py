"""Generate the sample corpus in examples/ (images, PDFs, Markdown, HTML). All content is made up here.

Run from the repository root: `python scripts/make_examples.py [folder]` (default: examples/). Needs Pillow and
fpdf2; matplotlib is used for the bar chart when installed.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures import font, shapes_image  # noqa: E402  (shared drawing helpers)


def street_sign(path: Path) -> None:
    im = Image.new("RGB", (480, 320), (150, 190, 230))
    d = ImageDraw.Draw(im)
    d.rectangle((230, 170, 250, 320), fill=(90, 90, 90))
    d.rounded_rectangle((40, 40, 440, 180), radius=14, fill=(20, 110, 60), outline="white", width=6)
    d.text((70, 70), "MAPLE AVENUE", fill="white", font=font(44))
    d.text((70, 125), "City Centre 2 km", fill="white", font=font(28))
    im.save(path, quality=85)


def bar_chart(path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        im = Image.new("RGB", (480, 320), "white")
        d = ImageDraw.Draw(im)
        for i, h in enumerate((120, 180, 90, 220)):
            d.rectangle((60 + i * 100, 280 - h, 120 + i * 100, 280), fill=(60, 110, 190))
        d.text((120, 20), "Quarterly sales", fill="black", font=font(24))
        im.save(path)
        return
    fig, ax = plt.subplots(figsize=(4.8, 3.2), dpi=100)
    ax.bar(["Q1", "Q2", "Q3", "Q4"], [120, 180, 90, 220], color="#3c6ebe")
    ax.set_title("Quarterly sales")
    ax.set_ylabel("units sold")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def product_label(path: Path) -> None:
    im = Image.new("RGB", (400, 260), (250, 245, 230))
    d = ImageDraw.Draw(im)
    d.rectangle((10, 10, 390, 250), outline=(120, 60, 20), width=4)
    d.text((30, 30), "WILDFLOWER HONEY", fill=(120, 60, 20), font=font(32))
    d.text((30, 90), "Net weight 500 g", fill="black", font=font(24))
    d.text((30, 130), "Best before 2026-05", fill="black", font=font(24))
    d.text((30, 180), "Produced in Vermont", fill="black", font=font(22))
    im.save(path, quality=85)


def technical_note(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_title("Solar Panel Efficiency in Cold Climates")
    pdf.set_author("Polyseek Examples")
    pdf.set_margins(56, 56)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 26, "Solar Panel Efficiency in Cold Climates", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.ln(6)
    pdf.multi_cell(0, 15, "Photovoltaic cells lose output as they heat up, so cold sunny days can give the best "
                          "solar panel efficiency of the year. This note compares the measured efficiency of a "
                          "small rooftop array in January and July and explains the temperature coefficient.")
    pdf.ln(10)
    buf = io.BytesIO()
    chart = Image.new("RGB", (360, 180), "white")
    d = ImageDraw.Draw(chart)
    for i, h in enumerate((150, 140, 120, 95, 80, 70)):
        d.rectangle((20 + i * 56, 170 - h, 60 + i * 56, 170), fill=(230, 150, 30))
    chart.save(buf, format="PNG")
    y = pdf.get_y()
    pdf.image(io.BytesIO(buf.getvalue()), x=56, y=y, w=270, h=135)
    pdf.set_y(y + 141)
    pdf.set_font("helvetica", "I", 10)
    pdf.multi_cell(0, 13, "Figure 1: Panel efficiency falls as cell temperature rises from -10 to 60 degrees C.")
    pdf.ln(12)
    pdf.set_font("helvetica", "B", 13)
    pdf.cell(0, 18, "Temperature coefficient", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Typical crystalline silicon modules lose about 0.4 percent of their rated power for "
                          "every degree above 25 degrees C. Snow cover, not cold, is the main winter loss.")
    pdf.output(str(path))


def invoice(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_title("Invoice 2024-117")
    pdf.set_margins(56, 56)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 22)
    pdf.cell(0, 30, "INVOICE 2024-117", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 15, "Northwind Garden Supplies, 12 Orchard Lane\nBilled to: Harbor Street Cafe\n"
                          "Date: 3 March 2024")
    pdf.ln(12)
    for item, qty, price in (("Terracotta pots (large)", 12, 9.50), ("Potting soil 40 l", 6, 7.25),
                             ("Herb seedlings tray", 4, 18.00)):
        pdf.cell(300, 16, item)
        pdf.cell(60, 16, str(qty))
        pdf.cell(0, 16, f"{qty * price:.2f} EUR", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 18, "Invoice total: 229.50 EUR (due within 30 days)", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


MARKDOWN = {
    "sourdough.md": """# Baking sourdough bread

A sourdough starter is a culture of wild yeast and lactic acid bacteria.

## Feeding the starter

Feed the starter equal weights of flour and water every day. It is ready when it doubles within six hours.

## Baking

Bake the loaf in a preheated cast iron pot at 250 degrees C, lid on for the first twenty minutes.
""",
    "bicycle-maintenance.md": """# Bicycle chain maintenance

A clean, lubricated chain shifts smoothly and lasts thousands of kilometres longer.

## Cleaning

Wipe the chain with a rag, scrub the cassette with a brush and degreaser, then rinse and dry.

## Measuring wear

Replace the chain when a wear gauge shows 0.5 percent elongation, before it damages the cassette.
""",
}

HTML = {
    "coral-reefs.html": """<!doctype html><html><head><title>Coral reefs under heat stress</title>
<style>body{font-family:sans-serif}</style></head><body>
<h1>Coral reefs under heat stress</h1>
<p>When ocean water stays too warm for weeks, corals expel the algae that feed them and turn white.
This coral bleaching can kill a reef if the heat lasts.</p>
<img src="reef.jpg" alt="bleached coral on a shallow reef">
<h2>Recovery</h2>
<p>Reefs recover in ten to fifteen years when heat waves are rare and the water is clean.</p>
<script>console.log("not indexed")</script>
</body></html>
""",
    "night-sky.html": """<!doctype html><html><head><title>Watching meteor showers</title></head><body>
<h1>Watching meteor showers</h1>
<p>The Perseids peak in mid August. Find a dark site away from city lights and let your eyes adapt for
twenty minutes; no telescope is needed.</p>
</body></html>
""",
}


def main(folder: str = "examples") -> None:
    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "pdfs").mkdir(exist_ok=True)
    (root / "articles").mkdir(exist_ok=True)
    street_sign(root / "images" / "street-sign.jpg")
    bar_chart(root / "images" / "sales-chart.png")
    product_label(root / "images" / "honey-label.jpg")
    shapes_image((320, 240)).save(root / "images" / "red-circle-blue-square.png")
    technical_note(root / "pdfs" / "solar-efficiency-note.pdf")
    invoice(root / "pdfs" / "invoice-2024-117.pdf")
    for name, text in {**MARKDOWN, **HTML}.items():
        (root / "articles" / name).write_text(text, encoding="utf-8")
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"wrote {root}/ ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
