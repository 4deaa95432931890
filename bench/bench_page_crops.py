"""Find a PDF page from a screenshot of part of it: Recall@1 by the working size of the indexed page renders.

Usage:
    python bench/bench_page_crops.py                          # 640 and 480 px, 144-dpi screenshots, seeds 0 1 2
    python bench/bench_page_crops.py --sizes 640,512,480,448 --dpi 72 --seeds 0 --queries 80

The first --pdfs PDFs of pdf-corpus (by file name) are indexed once per working size (OCR off; the size is set for
page units through polyseek.indexer.FEATURE_OPTIONS, the only thing that differs). Each query is a seeded random
window (25-50% of the page's width, 15-35% of its height) of a page rendered at --dpi, searched by instance features
alone; a hit counts when its asset and page are the query's. Windows without local features (blank margins) are
skipped and counted. Prints a table; --write puts it in docs/benchmarks.md (section page-crops).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_BENCH, emit, load_avg, machine_line, table  # noqa: E402


def make_queries(pdfs: list[Path], n: int, seed: int, dpi: float):
    import pypdfium2 as pdfium

    rng = random.Random(seed)
    pages = [(p, i) for p in pdfs for i in range(len(pdfium.PdfDocument(str(p))))]
    out = []
    for _ in range(n):
        p, i = rng.choice(pages)
        im = pdfium.PdfDocument(str(p))[i].render(scale=dpi / 72).to_pil().convert("RGB")
        w, h = im.size
        fw, fh = rng.uniform(0.25, 0.5), rng.uniform(0.15, 0.35)
        x, y = rng.uniform(0, 1 - fw) * w, rng.uniform(0, 1 - fh) * h
        out.append((p.name, i + 1, im.crop((int(x), int(y), int(x + fw * w), int(y + fh * h)))))
    return out, len(pages)


def run_size(variant: str, pdfs: list[Path], query_sets: dict, tmp: Path) -> dict:
    import polyseek
    import polyseek.indexer as indexer
    from polyseek.config import IndexConfig, IngestConfig, SearchConfig
    from polyseek.errors import QueryError

    size, _, detect = variant.partition("/")
    saved = dict(indexer.FEATURE_OPTIONS.get("page", {}))
    indexer.FEATURE_OPTIONS["page"] = {**saved, "max_side": int(size)}
    if detect:
        indexer.FEATURE_OPTIONS["page"]["detect"] = int(detect)
    try:
        idx = polyseek.open(tmp / f"idx-{size}-{detect}", IndexConfig(ingest=IngestConfig(ocr=False)))
        t = time.perf_counter()
        idx.add(pdfs)
        build = time.perf_counter() - t
    finally:
        indexer.FEATURE_OPTIONS["page"] = saved
    res = {"build": build}
    cfg = SearchConfig(signals=("instance",))
    for key, queries in query_sets.items():
        ok = blank = 0
        for name, page, crop in queries:
            try:
                hits = idx.search(image=crop, k=1, config=cfg)
            except QueryError:
                blank += 1
                continue
            ok += bool(hits and Path(hits[0].asset.path).name == name and hits[0].unit.page == page)
        res[key] = (ok, len(queries) - blank, blank)
    idx.close()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="640,480", help="comma list of working sizes (long side, px) for page renders; "
                                                       "SIZE/N also caps the keypoints SIFT describes at N")
    ap.add_argument("--dpi", default="144", help="comma list of screenshot resolutions")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--queries", type=int, default=100, help="queries per seed")
    ap.add_argument("--pdfs", type=int, default=12)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    corpus = SHARED_BENCH / "pdf-corpus" / "corpus"
    if not corpus.is_dir():
        print(f"needs {corpus}", file=sys.stderr)
        return 2
    pdfs = sorted(corpus.glob("*.pdf"))[: args.pdfs]
    start = load_avg()
    query_sets, n_pages = {}, 0
    for dpi in [float(d) for d in args.dpi.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            query_sets[(dpi, seed)], n_pages = make_queries(pdfs, args.queries, seed, dpi)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            r = run_size(size, pdfs, query_sets, Path(tmp))
            tot_ok = sum(r[k][0] for k in query_sets)
            tot_n = sum(r[k][1] for k in query_sets)
            cells = [f"{r[k][0] / max(r[k][1], 1):.3f} ({r[k][0]}/{r[k][1]})" for k in query_sets]
            rows.append([size, *cells, f"{tot_ok / max(tot_n, 1):.3f} ({tot_ok}/{tot_n})", f"{r['build']:.1f}"])
            print(rows[-1], flush=True)
    headers = ["page working size (px)[/keypoints described]", *[f"{d:g} dpi, seed {s}" for d, s in query_sets], "all", "index s"]
    body = (f"`python bench/bench_page_crops.py --sizes {args.sizes} --dpi {args.dpi} --seeds {args.seeds} "
            f"--queries {args.queries}`: {len(pdfs)} PDFs ({n_pages} pages) of pdf-corpus, OCR off; Recall@1 of the "
            f"page (asset and page number) over instance search alone; windows without features skipped.  \n"
            f"{machine_line(['opencv-python', 'pypdfium2'])}  \nLoad average: {start} at start, "
            f"{load_avg()} at end.\n\n" + table(headers, rows))
    emit("page-crops", "Page from a screenshot of part of it (page render working size)", [body], write=args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
