"""Adaptive ranking (issue 11): the default against the default before and each method's gain or loss on vaswani
(ablation, same run, significance, two halves of the queries as a generalisation check), unique-word known items on
vaswani, page-level retrieval on docqa-dev (the second set), no loss on coco-crops, and the dynamic cutoff's set
precision/recall against a fixed top-10. Indexes are built on first use and reused.

    python bench/bench_ranking.py                       # all sets; indexes cached under /tmp/polyseek-ranking
    python bench/bench_ranking.py --sets vaswani --index-root /tmp/rk --no-write
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from common import bench_dir, emit, fmt, load_avg, machine_line, quiet_logs, table  # noqa: E402

METRICS = ["ndcg_cut_10", "recall_100", "map_cut_100"]


BEFORE = {"fusion": "rrf", "bm25_k1": 1.5, "bm25_b": 0.75}  # the defaults before: RRF, bm25s's BM25 parameters


def vaswani_configs():
    from polyseek.config import SearchConfig

    new = SearchConfig()
    return {
        "default before (rrf, bm25 1.5/0.75)": SearchConfig(**BEFORE),
        "default (new: dbsf, bm25 0.9/0.4)": new,
        "rrf, bm25 0.9/0.4": SearchConfig(fusion="rrf"),
        "dbsf, bm25 1.5/0.75": SearchConfig(bm25_k1=1.5, bm25_b=0.75),
        "dbsf, bm25 1.2/0.75 (Lucene)": SearchConfig(bm25_k1=1.2, bm25_b=0.75),
        "bm25 alone, 1.5/0.75": SearchConfig(signals=("bm25",), bm25_k1=1.5, bm25_b=0.75),
        "bm25 alone, 0.9/0.4": SearchConfig(signals=("bm25",)),
        "dense alone": SearchConfig(signals=("dense",)),
        "new + rm3 (own feedback)": dataclasses.replace(new, refine=("rm3",), fb_source="own"),
        "new + rocchio (fused feedback, 5)": dataclasses.replace(new, refine=("rocchio",), fb_docs=5),
        "new + rm3 + rocchio (fused, 10)": dataclasses.replace(new, refine=("rm3", "rocchio")),
        "new + gqr": dataclasses.replace(new, refine=("gqr",)),
        "new + cpn": dataclasses.replace(new, prior="cpn"),
        "new + adaptive weights": dataclasses.replace(new, adaptive=True),
    }


def id_number(qid: str) -> int | None:
    """The number a query id ends with ("17", "docqa-017" -> 17), or None."""
    import re

    m = re.search(r"(\d+)$", qid)
    return int(m.group(1)) if m else None


def halves(per_query: dict, metric: str = "ndcg_cut_10") -> tuple[float, float]:
    """Mean of `metric` over the queries with odd and with even ids (alternate queries in sorted order when ids
    carry no number): a setting that only fits one half of the queries shows it here."""
    ids = sorted(per_query)
    nums = {q: id_number(q) for q in ids}
    if all(n is not None for n in nums.values()):
        odd = [q for q in ids if nums[q] % 2 == 1]
        even = [q for q in ids if nums[q] % 2 == 0]
    else:
        odd, even = ids[0::2], ids[1::2]
    return (float(np.mean([per_query[q][metric] for q in odd])), float(np.mean([per_query[q][metric] for q in even])))


def run_vaswani(index_root: Path, queries: int | None) -> tuple[str, dict]:
    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.runner import run_benchmark

    bench = load_benchmark(bench_dir("vaswani"), k=100)
    if queries:
        bench = dataclasses.replace(bench, queries=bench.judged_queries[:queries])
    configs = vaswani_configs()
    res = run_benchmark(bench, index_dir=index_root / "vaswani", search_configs=configs,
                        out_dir=index_root / "runs" / f"vaswani-{time.strftime('%H%M%S')}", k=100, metrics=METRICS)
    pq = json.loads((Path(res["run_dir"]) / "per_query.json").read_text())
    base_ms = res["results"][0]["timing"]["query_ms_p50"]
    rows = []
    for r in res["results"]:
        sig = res["significance"].get(r["name"], {}).get("ndcg_cut_10", {})
        h1, h2 = halves(pq[r["name"]])
        mark = "" if not sig else (" *" if sig["significant"] else "")
        rows.append([r["name"], f"{r['metrics']['ndcg_cut_10']:.4f}{mark}",
                     "" if not sig else f"{sig['delta']:+.4f} (p={sig['p_randomization']:.3f})",
                     f"{h1:.4f} / {h2:.4f}", f"{r['metrics']['recall_100']:.4f}", f"{r['metrics']['map_cut_100']:.4f}",
                     fmt(r["timing"]["query_ms_p50"], 1), f"{r['timing']['query_ms_p50'] / base_ms:.2f}x"])
    text = table(["config", "nDCG@10", "Δ vs before (p)", "odd / even ids", "R@100", "MAP@100", "p50 ms",
                  "p50 / before"], rows)
    return text, {"results": res["results"], "significance": res["significance"], "run_dir": res["run_dir"]}


def run_cutoff(index_root: Path, queries: int | None) -> str:
    """Mean hits kept by each cutoff and set precision/recall of the kept set against the top 10. One retrieval per
    query; every cutoff is applied by the pipeline's own `Searcher.cut` to the same top 10."""
    import copy

    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.eval.datasets import load_benchmark

    bench = load_benchmark(bench_dir("vaswani"), k=10)
    qs = bench.judged_queries[:queries] if queries else bench.judged_queries
    idx = polyseek.open(index_root / "vaswani", create=False)
    s = idx.searcher()
    modes = ["none", "auto", "0.9", "0.8", "0.5"]
    stats = {m: ([], [], [], []) for m in modes}
    base = SearchConfig(route="off")
    for q in qs:
        q = dataclasses.replace(q, k=10)
        runs = [s.retrievers[name].with_config(base).retrieve(q, base.depth) for name in ("bm25", "dense")]
        top = s.assemble(q, runs, base)
        rel = {d for d, v in bench.qrels.get(q.id, {}).items() if v > 0}
        for m in modes:
            hits = s.cut(copy.deepcopy(top), runs, dataclasses.replace(base, cutoff=m))
            got = {h.asset.id for h in hits}
            tp = len(got & rel)
            p = tp / len(got) if got else 0.0
            r = tp / len(rel) if rel else 0.0
            for lst, v in zip(stats[m], (len(got), p, r, 2 * p * r / (p + r) if tp else 0.0)):
                lst.append(v)
    idx.close()
    rows = [[("top-10 (none)" if m == "none" else m), f"{np.mean(v[0]):.2f}", f"{np.mean(v[1]):.4f}",
             f"{np.mean(v[2]):.4f}", f"{np.mean(v[3]):.4f}"] for m, v in stats.items()]
    return table(["cutoff", "mean hits", "set precision", "set recall", "set F1"], rows)


def run_docqa(index_root: Path) -> str:
    """Page-level Recall@5 and nDCG@10 on docqa-dev (qrels-pages.tsv): a hit names the page of its unit."""
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.compare import randomization_test
    from polyseek.eval.metrics import aggregate, evaluate, read_qrels
    from polyseek.retrieve.route import page_key

    root = bench_dir("docqa-dev")
    bench = load_benchmark(root, k=20)
    qrels = read_qrels(root / "qrels-pages.tsv")
    qs = [q for q in bench.queries if qrels.get(q.id)]
    idx = polyseek.open(index_root / "docqa")
    idx.add([bench_dir("pdf-corpus") / "corpus"])  # a hash check per file once built
    rows = []
    metrics = ["recall_5", "ndcg_cut_10"]
    base_pq = None
    for name, cfg in [("bm25 (1.5/0.75)", SearchConfig(signals=("bm25",), bm25_k1=1.5, bm25_b=0.75)),
                      ("bm25 (0.9/0.4)", SearchConfig(signals=("bm25",))),
                      ("dense", SearchConfig(signals=("dense",))),
                      ("route off (rrf, bm25 1.5/0.75)", SearchConfig(route="off", **BEFORE)),
                      ("default before (rrf, bm25 1.5/0.75)", SearchConfig(**BEFORE)),
                      ("default (new: dbsf, bm25 0.9/0.4)", SearchConfig()),
                      ("rrf, bm25 0.9/0.4", SearchConfig(fusion="rrf")),
                      ("new + adaptive weights", SearchConfig(adaptive=True)),
                      ("new + cpn", SearchConfig(prior="cpn"))]:
        run, ms = {}, []
        for q in qs:
            t0 = time.perf_counter()
            hits = idx.search_query(dataclasses.replace(q, k=20), cfg)
            ms.append((time.perf_counter() - t0) * 1000)
            r, prev = {}, 1e9
            for h in hits:
                pid = page_key(h.unit.id, h.asset.id) if h.unit.page else h.asset.id
                if pid not in r:
                    prev = min(prev - 1e-6, h.score) if r else h.score
                    r[pid] = prev
            run[q.id] = r
        pq = evaluate(qrels, run, metrics)
        agg = aggregate(pq, metrics)
        if name.startswith("default before"):
            base_pq = pq
        delta = {m: "" for m in metrics}
        if base_pq is not None and pq is not base_pq:
            for m in metrics:
                a, b = [base_pq[q][m] for q in sorted(pq)], [pq[q][m] for q in sorted(pq)]
                delta[m] = f" ({np.mean(b) - np.mean(a):+.4f}, p={randomization_test(a, b):.3f})"
        h1, h2 = halves(pq)
        rows.append([name, f"{agg['recall_5']:.4f}{delta['recall_5']}",
                     f"{agg['ndcg_cut_10']:.4f}{delta['ndcg_cut_10']}", f"{h1:.4f} / {h2:.4f}", fmt(float(np.median(ms)), 1)])
    idx.close()
    return (table(["config", "page R@5 (Δ vs default before, p)", "page nDCG@10 (Δ, p)", "nDCG@10 odd / even ids",
                   "p50 ms"], rows) + f"\n\n{len(qs)} answerable questions.")


def run_latency(index_root: Path, rounds: int = 3) -> str:
    """Query latency of the new default against the default before, interleaved query by query (the order of the
    two alternates) so load on a shared machine falls on both alike; one warm-up query each."""
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.eval.datasets import load_benchmark

    bench = load_benchmark(bench_dir("vaswani"), k=100)
    idx = polyseek.open(index_root / "vaswani", create=False)
    cfgs = {"default before (rrf, bm25 1.5/0.75)": SearchConfig(**BEFORE),
            "default (new: dbsf, bm25 0.9/0.4)": SearchConfig()}
    ms: dict[str, list[float]] = {n: [] for n in cfgs}
    qs = bench.judged_queries
    for c in cfgs.values():
        idx.search_query(qs[0], c)
    for r in range(rounds):
        for i, q in enumerate(qs):
            order = list(cfgs.items()) if (i + r) % 2 == 0 else list(cfgs.items())[::-1]
            for name, c in order:
                t0 = time.perf_counter()
                idx.search_query(q, c)
                ms[name].append((time.perf_counter() - t0) * 1000)
    idx.close()
    base = float(np.median(ms[next(iter(cfgs))]))
    rows = [[n, fmt(float(np.median(v)), 1), fmt(float(np.percentile(v, 95)), 1), f"{np.median(v) / base:.2f}x"]
            for n, v in ms.items()]
    return table(["config", "p50 ms", "p95 ms", "p50 / before"], rows) + \
        f"\n\n{len(qs)} queries x {rounds} rounds, k = 100, interleaved."


def unique_words(idx, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (word, asset id) pairs: a word of a random unit whose stemmed term occurs in that unit alone."""
    import random
    import re

    kw = idx.searcher().retrievers["bm25"].index
    stem = kw.stemmer.word
    rng = random.Random(seed)
    rows = list(range(len(kw.unit_ids)))
    rng.shuffle(rows)
    pat = re.compile(r"(?u)\b\w\w+\b")
    out: list[tuple[str, str]] = []
    for i in rows:
        if len(out) >= n:
            break
        if not kw.live[i]:
            continue
        text = idx.searcher().lookup([kw.unit_ids[i]], ["id", "text"]).get(kw.unit_ids[i], {}).get("text") or ""
        words = [w for w in pat.findall(text) if not w.isdigit()]
        rng.shuffle(words)
        for w in words:
            t = stem(w)
            if t and kw.document_frequency(t) == 1:
                out.append((w, str(kw.asset_ids[i])))
                break
    return out


def run_unique(index_root: Path, n: int = 600) -> str:
    """Known-item check: a one-word query whose word occurs in one vaswani record must find that record first (the
    case RRF ties made hard in issue 16, and plain DBSF breaks: the match is alone in the BM25 run)."""
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.types import Query

    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.runner import build_index

    idx, _ = build_index(load_benchmark(bench_dir("vaswani"), k=10), index_root / "vaswani")
    items = unique_words(idx, n)
    rows = []
    for name, cfg in [("default before (rrf, bm25 1.5/0.75)", SearchConfig(**BEFORE)),
                      ("default (new: dbsf, bm25 0.9/0.4)", SearchConfig()),
                      ("bm25 alone", SearchConfig(signals=("bm25",)))]:
        ok = sum(1 for w, aid in items
                 if [h.asset.id for h in idx.search_query(Query(text=w, k=1), cfg)][:1] == [aid])
        rows.append([name, f"{ok}/{len(items)}"])
    idx.close()
    return table(["config", "unique word's record first"], rows)


def run_coco(index_root: Path) -> str:
    from polyseek.config import SearchConfig
    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.runner import run_benchmark

    bench = load_benchmark(bench_dir("coco-crops"), k=10)
    res = run_benchmark(bench, index_dir=index_root / "coco", k=10, metrics=["recall_1", "recip_rank"],
                        search_configs={"before (route off)": SearchConfig(route="off"),
                                        "default (new)": SearchConfig()},
                        out_dir=index_root / "runs" / f"coco-{time.strftime('%H%M%S')}")
    rows = [[r["name"], f"{r['metrics']['recall_1']:.4f}", f"{r['metrics']['recip_rank']:.4f}",
             fmt(r["timing"]["query_ms_p50"], 1)] for r in res["results"]]
    return table(["config", "Recall@1", "MRR", "p50 ms"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="vaswani,latency,unique,cutoff,docqa,coco")
    ap.add_argument("--index-root", default="/tmp/polyseek-ranking")
    ap.add_argument("--queries", type=int, default=None, help="only the first N vaswani queries (smoke runs)")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    root = Path(a.index_root)
    root.mkdir(parents=True, exist_ok=True)
    sets = a.sets.split(",")
    parts = [machine_line(["bm25s", "sentence-transformers", "torch"]) + f"; load at start {load_avg()}"]
    with quiet_logs():
        if "vaswani" in sets:
            text, _ = run_vaswani(root, a.queries)
            parts += ["### vaswani: ablation (93 queries; * = p < 0.05, paired randomization test vs default before)",
                      text]
        if "latency" in sets:
            parts += ["### vaswani: query latency, new default vs default before (same process, interleaved)",
                      run_latency(root)]
        if "unique" in sets:
            parts += ["### Unique-word known items on vaswani (600 one-word queries, seed 0)", run_unique(root)]
        if "cutoff" in sets:
            parts += ["### Dynamic cutoff on vaswani (k = 10; set metrics over the hits returned)",
                      run_cutoff(root, a.queries)]
        if "docqa" in sets:
            parts += ["### docqa-dev: page-level retrieval", run_docqa(root)]
        if "coco" in sets:
            parts += ["### coco-crops through the engine", run_coco(root)]
    parts.append(f"load at end {load_avg()}")
    emit("ranking", "Adaptive ranking", parts, write=not a.no_write)


if __name__ == "__main__":
    main()
