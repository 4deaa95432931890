"""Crop search on hard crops: Recall@1 per perturbation kind and crop-size band, ours against brute force.

Usage:
    python bench/bench_hard_crops.py   # dev, described seeds 3 and 4, extreme seeds 1 and 2 (made in bench/out/)
    python bench/bench_hard_crops.py --set described-s5=bench/out/described-s5 --peer-queries 0 --no-write

One InstanceIndex over the 239 corpus images (features from --feature-cache when present) answers every set; the
brute-force peer (SIFT + FLANN ratio test + RANSAC against every image, bench_instance.brute_force_peer) answers an
evenly spaced subset of each set, and our figures are also given on that subset. The peer's per-query results are
cached by query file content in --peer-cache (they do not depend on Polyseek's code), so a rerun only pays for new
queries. Wall and CPU time per query are both reported: the machine is shared, wall time includes waiting for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_instance import _features, _open, brute_force_peer, load_bench  # noqa: E402
from common import REPO, bench_dir, emit, load_avg, machine_line  # noqa: E402
from make_hard_crops import band_name, make  # noqa: E402

from polyseek.errors import QueryError  # noqa: E402
from polyseek.store.instance import InstanceIndex  # noqa: E402


def kind_of(q: dict) -> str:
    return "combo" if "+" in q["perturbation"] else q["perturbation"]


def band_of(q: dict, sizes: dict[str, tuple[int, int]], doc: str) -> str:
    if "area_frac" in q and "size_band" in q:  # a hard set: the region cut, before any sub-window
        return band_name(q["area_frac"])
    w, h = sizes[doc]
    return band_name(q["bbox"][2] * q["bbox"][3] / (w * h))  # dev: the crop window's share of the photo


def subset(queries: list[dict], n: int) -> list[dict]:
    if n <= 0 or n >= len(queries):
        return list(queries)
    idx = np.linspace(0, len(queries) - 1, n).round().astype(int)
    return [queries[i] for i in sorted(set(idx.tolist()))]


def peer_results(corpus, queries, bench: Path, cache: Path | None) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Brute-force ranked lists and latencies, from the cache when this query file was answered before."""
    ranked, lat, todo, keys = {}, {}, [], {}
    for q in queries:
        key = hashlib.sha1((bench / q["image"]).read_bytes()).hexdigest()[:16]
        keys[q["id"]] = key
        f = cache / f"{key}.json" if cache else None
        if f is not None and f.exists():
            d = json.loads(f.read_text())
            ranked[q["id"]], lat[q["id"]] = d["ranked"], d["s"]
        else:
            todo.append(q)
    if todo:
        r, l, _ = brute_force_peer(corpus, todo, bench, len(todo))
        for q, s in zip(todo, l):
            ranked[q["id"]], lat[q["id"]] = r[q["id"]], s
            if cache is not None:
                cache.mkdir(parents=True, exist_ok=True)
                (cache / f"{keys[q['id']]}.json").write_text(json.dumps({"ranked": r[q["id"]], "s": s}))
    return ranked, lat


def _table(title: str, groups: dict[str, list[bool]], peer: dict[str, list[bool]] | None) -> str:
    rows = [f"{title}\n", "| group | queries | Recall@1 ours | Recall@1 brute force (peer subset) |", "|---|---|---|---|"]
    for k in sorted(groups):
        p = peer.get(k, []) if peer else []
        ps = f"{np.mean(p):.3f} ({len(p)})" if p else "-"
        rows.append(f"| {k} | {len(groups[k])} | {np.mean(groups[k]):.3f} | {ps} |")
    return "\n".join(rows)


def run_set(name: str, bench: Path, ii: InstanceIndex, args, sizes) -> dict:
    queries, qrels, corpus = load_bench(bench)
    if args.queries:
        queries = queries[: args.queries]
    ok, lat, cpu, kinds, bands, misses, rows = {}, [], [], {}, {}, [], []
    for q in queries:
        im = _open(str(bench / q["image"]))
        t, c = time.perf_counter(), time.process_time()
        try:
            res = ii.search(im, k=10)
        except QueryError:  # too small or flat to search: a miss, as the engine reports it
            res = []
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        rel = qrels[q["id"]]
        hit = bool(res) and res[0].unit_id in rel
        ok[q["id"]] = hit
        if not hit:
            misses.append(f"{q['id']}({kind_of(q)},{'none' if not res else 'wrong'})")
        doc = next(iter(rel))
        rows.append({**q, "doc": doc, "hit": hit, "top": res[0].unit_id if res else None,
                     "inliers": res[0].inliers if res else 0, "cpu_ms": round(cpu[-1] * 1000, 1),
                     "query_size": list(im.size)})
        kinds.setdefault(kind_of(q), []).append(hit)
        bands.setdefault(band_of(q, sizes, doc), []).append(hit)
    out = {"name": name, "n": len(queries), "r1": float(np.mean(list(ok.values()))), "lat": lat, "cpu": cpu}
    peer_k, peer_b = {}, {}
    if args.peer_queries and (not args.peer_sets or name in args.peer_sets.split(",")):
        sub = subset(queries, args.peer_queries)
        pr, pl = peer_results(corpus, sub, bench, args.peer_cache)
        phit = {q["id"]: bool(pr[q["id"]]) and pr[q["id"]][0] in qrels[q["id"]] for q in sub}
        for q in sub:
            doc = next(iter(qrels[q["id"]]))
            peer_k.setdefault(kind_of(q), []).append(phit[q["id"]])
            peer_b.setdefault(band_of(q, sizes, doc), []).append(phit[q["id"]])
        out["peer"] = {"n": len(sub), "r1": float(np.mean(list(phit.values()))),
                       "ours_r1": float(np.mean([ok[q["id"]] for q in sub])), "lat": list(pl.values())}
    out["kinds"], out["bands"], out["peer_kinds"], out["peer_bands"] = kinds, bands, peer_k, peer_b
    out["misses"], out["rows"] = misses, rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=None,
                    help="NAME=FOLDER (coco-crops layout); repeatable. Default: dev (shared coco-crops) and the hard "
                         "variants of --seeds (make_hard_crops.py styles), generated into bench/out/ when missing")
    ap.add_argument("--seeds", default="described:3,described:4,extreme:1,extreme:2",
                    help="STYLE:SEED hard variants for the default sets")
    ap.add_argument("--feature-cache", type=Path, default=Path("/tmp/bench-instance-cache"))
    ap.add_argument("--peer-queries", type=int, default=100, help="per set, evenly spaced (0: skip the peer)")
    ap.add_argument("--peer-sets", default="", help="comma-separated set names the peer answers (default: all)")
    ap.add_argument("--peer-cache", type=Path, default=Path("/tmp/bench-hard-crops-peer"))
    ap.add_argument("--queries", type=int, default=0, help="first N queries of each set (0: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--index-dir", type=Path, default=None, help="reuse this built index (built when missing)")
    ap.add_argument("--config", default="{}", help="JSON InstanceConfig overrides for the query side")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--dump", type=Path, default=None,
                    help="write every query's outcome (kind, size, top answer, inliers, CPU ms) here as JSONL")
    args = ap.parse_args()
    if args.set:
        sets = [(s.split("=", 1)[0], Path(s.split("=", 1)[1])) for s in args.set]
    else:
        dev = bench_dir("coco-crops")
        sets = [("dev", dev)]
        for style, seed in (v.split(":") for v in args.seeds.split(",") if v):
            out = REPO / "bench" / "out" / f"{style}-s{seed}"
            if not (out / "qrels.tsv").exists():
                make(dev, out, int(seed), 300, style)
            sets.append((f"{style}-s{seed}", out))

    _, _, corpus = load_bench(sets[0][1])
    sizes = {}
    for p in corpus:
        with Image.open(p) as im:
            sizes[p.stem] = im.size
    start = f"{machine_line()}; load average at start {load_avg()}"
    print(start, flush=True)
    folder = args.index_dir or Path(f"/tmp/bench-hard-index-{os.getpid()}")
    if not (folder / "manifest.json").exists():
        args.distractors = 0
        ii = InstanceIndex.open(folder)
        for uid, f, _ in _features(args, corpus, []):
            ii.add(uid, f)
        ii.commit()
    ii = InstanceIndex.open(folder)
    overrides = json.loads(args.config)
    if overrides:
        ii.config = dataclasses.replace(ii.config, **overrides)
    ii.search(_open(str(sets[0][1] / load_bench(sets[0][1])[0][0]["image"])))  # warm (inverted file build)

    results = [run_set(name, path, ii, args, sizes) for name, path in sets]
    pc = lambda v, p: np.percentile(v, p) * 1000  # noqa: E731
    rows = ["| set | system | queries | Recall@1 | p50 / p95 wall ms | p50 / p95 CPU ms |", "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['name']} | Polyseek | {r['n']} | **{r['r1']:.3f}** | {pc(r['lat'], 50):.0f} / "
                    f"{pc(r['lat'], 95):.0f} | {pc(r['cpu'], 50):.0f} / {pc(r['cpu'], 95):.0f} |")
        if "peer" in r:
            p = r["peer"]
            rows.append(f"| {r['name']} | Polyseek on the peer's {p['n']} queries | {p['n']} | {p['ours_r1']:.3f} | | |")
            rows.append(f"| {r['name']} | brute-force SIFT+ratio+RANSAC | {p['n']} | {p['r1']:.3f} | "
                        f"{pc(p['lat'], 50):.0f} / {pc(p['lat'], 95):.0f} | - |")
    parts = [f"`python bench/bench_hard_crops.py` ({ii.stats()['images']} images, {ii.stats()['codebook_size']} "
             f"words; query config overrides: {overrides or 'none'}). {start}; load average at end {load_avg()}. "
             "Wall time includes waiting for the shared CPU; CPU time is this process's, per query.",
             "\n".join(rows)]
    for r in results:
        parts.append(_table(f"{r['name']}: Recall@1 by perturbation kind", r["kinds"], r["peer_kinds"]))
        parts.append(_table(f"{r['name']}: Recall@1 by crop size (share of the photo's area)", r["bands"],
                            r["peer_bands"]))
    emit("hard-crops", "Instance search on hard crops (small regions, strong perturbations)", parts,
         write=not args.no_write)
    if args.dump is not None:
        with open(args.dump, "w") as f:
            for r in results:
                for row in r["rows"]:
                    f.write(json.dumps({"set": r["name"], **row}) + "\n")
    for r in results:
        print(f"{r['name']} misses ({len(r['misses'])}): {' '.join(r['misses'])}")
    if args.index_dir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
