"""Instance search benchmark on coco-crops: our InstanceIndex against brute-force SIFT + ratio test + RANSAC.

Usage:
    python bench/bench_instance.py --bench ../shared/bench/coco-crops [--distractors 2000] [--peer-queries 40]

Distractors are made at run time from the corpus images that no query is cut from (collages of resized,
recompressed, flipped, rotated crops of them), so they add load and confusable texture but never hold an answer.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polyseek.encode.local import extract_local_features  # noqa: E402
from polyseek.store.instance import InstanceIndex  # noqa: E402

_SOURCES: list[str] = []


def _open(path: str) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _extract_file(path: str):
    t = time.perf_counter()
    im = _open(path)
    f = extract_local_features(im)
    return Path(path).stem, f, time.perf_counter() - t


def _distractor(i: int) -> Image.Image:
    rng = random.Random(1000 + i)
    w, h = rng.choice([(640, 480), (480, 640), (640, 427), (500, 500)])
    canvas = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(rng.randint(1, 4)):
        src = _open(rng.choice(_SOURCES))
        sw, sh = src.size
        cw, ch = int(sw * rng.uniform(0.3, 1.0)), int(sh * rng.uniform(0.3, 1.0))
        x, y = rng.randrange(sw - cw + 1), rng.randrange(sh - ch + 1)
        piece = src.crop((x, y, x + cw, y + ch))
        s = rng.uniform(0.4, 1.2)
        piece = piece.resize((max(16, int(cw * s)), max(16, int(ch * s))), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if rng.random() < 0.3:
            piece = piece.rotate(rng.uniform(-15, 15), Image.Resampling.BICUBIC, expand=False)
        piece = ImageEnhance.Brightness(piece).enhance(rng.uniform(0.7, 1.3))
        canvas.paste(piece, (rng.randrange(max(1, w - piece.size[0] // 2)), rng.randrange(max(1, h - piece.size[1] // 2))))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=rng.randint(40, 90))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _extract_distractor(i: int):
    im = _distractor(i)
    t = time.perf_counter()
    f = extract_local_features(im)
    return f"distractor-{i:06d}", f, time.perf_counter() - t


def _init(sources):
    import cv2

    cv2.setNumThreads(1)
    _SOURCES[:] = sources


def load_bench(bench: Path):
    queries = [json.loads(line) for line in (bench / "queries.jsonl").read_text().splitlines() if line.strip()]
    qrels = {}
    for line in (bench / "qrels.tsv").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and int(parts[3]) > 0:
            qrels.setdefault(parts[0], set()).add(parts[2])
    corpus = sorted((bench / "corpus").glob("*.jpg"))
    return queries, qrels, corpus


def metrics(ranked: dict[str, list[str]], qrels: dict[str, set[str]]) -> tuple[float, float]:
    r1 = mrr = 0.0
    for qid, rel in qrels.items():
        docs = ranked.get(qid, [])[:10]
        r1 += bool(docs) and docs[0] in rel
        for i, d in enumerate(docs):
            if d in rel:
                mrr += 1.0 / (i + 1)
                break
    return r1 / len(qrels), mrr / len(qrels)


def brute_force_peer(corpus, queries, bench, n_queries):
    """SIFT (1,500, long side 640) + FLANN ratio test + RANSAC homography against every corpus image."""
    import cv2

    sift = cv2.SIFT_create(1500)

    def feats(im):
        g = np.asarray(im.convert("L"))
        f = 640 / max(g.shape)
        if f < 1:
            g = cv2.resize(g, (round(g.shape[1] * f), round(g.shape[0] * f)), interpolation=cv2.INTER_AREA)
        return sift.detectAndCompute(g, None)

    t0 = time.perf_counter()
    db = [(p.stem, *feats(_open(str(p)))) for p in corpus]
    ext_ms = (time.perf_counter() - t0) / len(corpus) * 1000
    flann = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 5}, {"checks": 50})
    ranked, lat = {}, []
    for q in queries[:n_queries]:
        t = time.perf_counter()
        qk, qd = feats(_open(str(bench / q["image"])))
        scores = []
        for stem, k, d in db:
            n = 0
            if qd is not None and d is not None and len(qd) >= 2 and len(d) >= 2:
                good = [m for m, s in (p for p in flann.knnMatch(qd, d, k=2) if len(p) == 2) if m.distance < 0.75 * s.distance]
                if len(good) >= 4:
                    src = np.float32([qk[m.queryIdx].pt for m in good])
                    dst = np.float32([k[m.trainIdx].pt for m in good])
                    _, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
                    n = int(mask.sum()) if mask is not None else 0
            scores.append((n, stem))
        scores.sort(reverse=True)
        ranked[q["id"]] = [s for n, s in scores[:10] if n > 0]
        lat.append(time.perf_counter() - t)
    return ranked, lat, ext_ms


def _extract_all(args, corpus, sources, n_distractors, first_distractor=0):
    out = []
    with mp.get_context("fork").Pool(args.workers, initializer=_init, initargs=(sources,)) as pool:
        if corpus:
            out += pool.map(_extract_file, [str(p) for p in corpus], chunksize=4)
        out += pool.map(_extract_distractor, range(first_distractor, n_distractors), chunksize=8)
    return out


def _features(args, corpus, sources):
    """(uid, features, seconds) of the corpus and the distractors, from --feature-cache when it has them."""
    if args.feature_cache is None:
        return _extract_all(args, corpus, sources, args.distractors)
    import hashlib
    import pickle

    import polyseek.encode.local as local

    key = hashlib.sha1(Path(local.__file__).read_bytes()).hexdigest()[:12]
    path = args.feature_cache / f"features-{key}.pkl"
    have = []
    if path.exists():
        with open(path, "rb") as f:
            have = pickle.load(f)
    n_have = sum(uid.startswith("distractor-") for uid, _, _ in have)
    if not have or n_have < args.distractors:
        # A cache of the corpus alone (a run without distractors) is extended with distractors only.
        have = (have or []) + _extract_all(args, [] if have else corpus, sources, args.distractors, n_have)
        args.feature_cache.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.tmp", "wb") as f:
            pickle.dump(have, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(f"{path}.tmp", path)
    n_corpus = len(corpus)
    return have[: n_corpus + args.distractors]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--distractors", type=int, default=0)
    ap.add_argument("--peer-queries", type=int, default=40, help="queries for the slow brute-force peer (0: skip)")
    ap.add_argument("--queries", type=int, default=0, help="limit the number of queries (0: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--index-dir", type=Path, default=None, help="keep the index here (default: a temp folder)")
    ap.add_argument("--feature-cache", type=Path, default=None,
                    help="keep extracted features here (e.g. /tmp/bench-instance-cache) so reruns skip extraction; "
                         "keyed by the source of polyseek/encode/local.py")
    args = ap.parse_args()

    queries, qrels, corpus = load_bench(args.bench)
    if args.queries:
        queries = queries[: args.queries]
    qrels = {q["id"]: qrels[q["id"]] for q in queries}
    relevant = set().union(*qrels.values())
    sources = [str(p) for p in corpus if p.stem not in relevant]
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, cpus={os.cpu_count()}, "
          f"python {platform.python_version()}")
    print(f"corpus {len(corpus)} images, {len(queries)} queries, {args.distractors} distractors "
          f"(from {len(sources)} non-relevant images)")

    folder = args.index_dir or Path(tempfile.mkdtemp(prefix="bench-instance-"))
    if folder.exists() and args.index_dir:
        shutil.rmtree(folder)
    ii = InstanceIndex.open(folder)
    t0 = time.perf_counter()
    ext = []
    for uid, f, dt in _features(args, corpus, sources):
        ii.add(uid, f)
        ext.append(dt)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    ii.commit()
    t_commit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ii = InstanceIndex.open(folder)
    t_open = time.perf_counter() - t0
    st = ii.stats()
    print(f"extract: {t_extract:.1f} s wall on {args.workers} workers; commit (vocabulary {st['codebook_size']} "
          f"words + assignment + write) {t_commit:.1f} s; reopen {t_open:.2f} s; {st['features'] / st['images']:.0f} "
          f"features/image")

    ranked, lat, cpu, by_pert = {}, [], [], {}
    ii.search(_open(str(args.bench / queries[0]["image"])))  # warm caches (inverted file build)
    for q in queries:
        im = _open(str(args.bench / q["image"]))
        t, c = time.perf_counter(), time.process_time()
        res = ii.search(im, k=10)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        ranked[q["id"]] = [m.unit_id for m in res]
        ok = bool(res) and res[0].unit_id in qrels[q["id"]]
        by_pert.setdefault(q["perturbation"], []).append(ok)
    r1, mrr = metrics(ranked, qrels)
    rows = [("polyseek InstanceIndex", len(queries), r1, mrr, lat, st["bytes_per_image"], float(np.mean(ext)) * 1000)]

    if args.peer_queries:
        sub = queries[: args.peer_queries]
        pranked, plat, pext = brute_force_peer(corpus, sub, args.bench, args.peer_queries)
        subq = {q["id"]: qrels[q["id"]] for q in sub}
        pr1, pmrr = metrics(pranked, subq)
        our1, ourm = metrics({k: ranked[k] for k in subq}, subq)
        rows.append((f"ours, same {len(sub)} queries", len(sub), our1, ourm, lat[: len(sub)], st["bytes_per_image"],
                     float(np.mean(ext)) * 1000))
        rows.append((f"brute-force SIFT+ratio+RANSAC (239 imgs)", len(sub), pr1, pmrr, plat, float("nan"), pext))

    print()
    print(f"| system | images | queries | Recall@1 | MRR@10 | p50 ms | p95 ms | index bytes/image | extract ms/image |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, nq, a, b, l, bpi, ems in rows:
        n_img = len(corpus) if "brute" in name else st["images"]
        bpi_s = "-" if bpi != bpi else f"{bpi / 1024:.0f} KiB"
        print(f"| {name} | {n_img} | {nq} | {a:.3f} | {b:.3f} | {np.percentile(l, 50) * 1000:.0f} | "
              f"{np.percentile(l, 95) * 1000:.0f} | {bpi_s} | {ems:.0f} |")
    print()
    print(f"ours: CPU time per query p50 {np.percentile(cpu, 50) * 1000:.0f} ms, p95 {np.percentile(cpu, 95) * 1000:.0f} ms "
          f"(all threads; wall times above include waiting for a shared CPU: load average {os.getloadavg()[0]:.1f})")
    print("Recall@1 by perturbation: " + ", ".join(f"{k} {np.mean(v):.3f} ({len(v)})" for k, v in sorted(by_pert.items())))
    misses = [q["id"] for q in queries if not ranked[q["id"]] or ranked[q["id"]][0] not in qrels[q["id"]]]
    print(f"misses ({len(misses)}): {' '.join(misses[:40])}")
    if args.index_dir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
