"""Query latency (p50/p95/p99), recall and serving memory at 10k, 100k and 1M units.

Usage:
    python bench/bench_scale.py                 # 10k, 100k and 1M units (~13 min on 2 quiet cores, ~6 GB RAM)
    python bench/bench_scale.py --scales 10k,100k     # the quick run (~3 min)
    python bench/bench_scale.py --sweep         # also nprobe / quantizer settings of the ANN index at the largest scale
    python bench/bench_scale.py --lance-ivf     # also build LanceDB's own IVF_PQ as a peer (slow: minutes per 100k)
    python bench/bench_scale.py --keyword-upkeep 1m   # only: incremental keyword upkeep (+1,000 docs) and equality

Vectors are synthetic 512-d unit vectors drawn around a two-level hierarchy of cluster centres (so nearest
neighbours are meaningful and an IVF index faces realistic, not uniform, data); texts are vaswani abstracts
repeated and shuffled with a per-copy suffix token. The units table is written in the schema of Polyseek's store
(`LanceStore`, with its id indexes from `maintain`), the ANN index is Polyseek's own (`VectorIndex.build`, as
`Index.add` builds it at `ann_min_rows` rows and above), and the Polyseek numbers come from a separate serving
process that opens the folder with `polyseek.open` and searches through `Index.searcher()` (query vectors fed to
the dense signal); its peak RSS is the serving memory. Peers in the same run: exact numpy
search (the memory-bandwidth limit and the recall reference), bm25s's own `retrieve`, LanceDB's raw vector query
(flat scan on a few queries; with --lance-ivf, its IVF_PQ index).

Targets (issue 3) at 1M x 512-d on 2 cores: vector top-10 p50 <= 10 ms with recall@10 >= 0.95; hybrid
(BM25 + one vector field + RRF) p50 <= 30 ms; serving memory <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("LANCE_LOG", "error")

from common import (REPO, Timer, bench_dir, emit, load_avg, machine_line, p50_95_99, peak_rss_mib, quiet_logs,
                    table, time_calls, verdict)

DIM = 512
FIELD = "vec_text"
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


# ------------------------------------------------------------------------------------------- data
def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class ClusteredVectors:
    """Unit vectors around sub-centres that sit around top-level centres (cosine ~0.8 within a sub-cluster)."""

    def __init__(self, n: int, dim: int = DIM, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        top = _unit(rng.standard_normal((64, dim)))
        n_sub = max(256, n // 200)
        self.sub = _unit(top[rng.integers(64, size=n_sub)] + 0.7 * _unit(rng.standard_normal((n_sub, dim))))
        self.spread = 0.5

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        c = self.sub[rng.integers(len(self.sub), size=n)]
        return _unit(c + self.spread * _unit(rng.standard_normal((n, self.dim)))).astype(np.float32)


def make_vectors(n: int, seed: int = 0) -> np.ndarray:
    gen = ClusteredVectors(n, seed=seed)
    x = np.empty((n, DIM), np.float32)
    step = 50_000
    for i in range(0, n, step):
        x[i:i + step] = gen.sample(min(step, n - i), seed=seed + 1 + i // step)
    return x


def query_vectors(n: int, nq: int, seed: int = 0) -> np.ndarray:
    return ClusteredVectors(n, seed=seed).sample(nq, seed=99_991)


def make_texts(bench: Path, n: int, seed: int = 0) -> list[str]:
    docs = [json.loads(line) for line in (bench / "corpus.jsonl").open()]
    base = ["\n".join(p for p in (d.get("title") or "", d.get("text") or "") if p) for d in docs]
    rng = random.Random(seed)
    out: list[str] = []
    copy = 0
    while len(out) < n:
        order = list(range(len(base)))
        rng.shuffle(order)
        out.extend(f"{base[i]} zq{copy}x" for i in order[: n - len(out)])
        copy += 1
    return out


def exact_topk(x: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    out = np.empty((len(q), k), np.int64)
    for i in range(0, len(q), 50):
        s = q[i:i + 50] @ x.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
        out[i:i + 50] = np.take_along_axis(top, order, 1)
    return out


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth)]))


# ------------------------------------------------------------------------------------------ build
def write_manifest(folder: Path, config) -> None:
    """polyseek.json for an index folder whose store the bench filled itself: 512-d synthetic "text" vectors."""
    from polyseek.folder import FORMAT

    (folder / "polyseek.json").write_text(json.dumps({
        "format": FORMAT, "config": config.to_dict(), "sources": {},
        "encoders": {"text": {"spec": "synthetic-512", "dim": DIM}}}))


def build_store(folder: Path, x: np.ndarray, texts: list[str]):
    """A Polyseek-schema units table (via LanceStore) filled with pyarrow batches, then `maintain` (compaction,
    id indexes) as an index run ends."""
    import pyarrow as pa

    from polyseek.store.lance import UNIT_COLUMNS, LanceStore

    store = LanceStore(folder, {FIELD: DIM})
    schema = store.units.schema
    n = len(x)
    with Timer() as t_add:
        step = 100_000
        for i in range(0, n, step):
            j = min(n, i + step)
            cols = {
                "id": [f"u{r}" for r in range(i, j)], "asset_id": [f"a{r}" for r in range(i, j)],
                "kind": ["record"] * (j - i), "text": texts[i:j], "asset_type": ["record"] * (j - i),
                "path": ["/synthetic/records.jsonl"] * (j - i),
            }
            arrays = []
            for c in UNIT_COLUMNS:
                typ = schema.field(c).type
                arrays.append(pa.array(cols[c], type=typ) if c in cols else pa.nulls(j - i, type=typ))
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(x[i:j].ravel(), pa.float32()), DIM))
            store.units.add(pa.Table.from_arrays(arrays, schema=pa.schema([schema.field(c) for c in UNIT_COLUMNS + [FIELD]])))
        store.maintain()
    return store, t_add.s


def lance_ivf_params(n: int) -> dict:
    """LanceDB IVF_PQ settings of the peer (what Polyseek used before it moved to faiss; docs/benchmarks.md)."""
    parts = int(min(1024, max(16, round(math.sqrt(n)))))
    return {"num_partitions": parts, "num_sub_vectors": DIM // 8, "nprobes": int(min(parts, max(20, parts // 20))),
            "refine_factor": 20}


def build_lance_ivf(tbl, p: dict) -> None:
    from lancedb.index import IvfPq

    tbl.create_index(FIELD, config=IvfPq(distance_type="cosine", num_partitions=p["num_partitions"],
                                         num_sub_vectors=p["num_sub_vectors"]), replace=True)


def raw_lance_query(tbl, q: np.ndarray, k: int, params: dict | None):
    qb = tbl.search(q, vector_column_name=FIELD).distance_type("cosine")
    if params:
        qb = qb.nprobes(params["nprobes"]).refine_factor(params["refine_factor"])
    return qb.limit(k).select(["id", "_distance"]).to_arrow().column("id").to_pylist()


def _uid_to_row(uids: list[str]) -> list[int]:
    return [int(u[1:]) for u in uids]


# ------------------------------------------------------------------------------------ serve child
def serve_child(spec_path: str) -> None:
    """Open the index folder with `polyseek.open` and search through `Index.searcher()` (the serving path: exact
    matrix or ANN index, BM25, display rows), with query vectors fed to the dense signal; time queries and
    report peak RSS."""
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.retrieve.dense import VectorMatrix
    from polyseek.types import Query

    try:
        from polyseek.retrieve.hydrate import DISPLAY_COLUMNS
    except ImportError:  # a checkout from before the query pipeline (--compare-tree)
        from polyseek.retrieve.search import DISPLAY_COLUMNS

    spec = json.loads(Path(spec_path).read_text())
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    searcher = polyseek.open(spec["index"], create=False).searcher()
    dense, bm25 = searcher.retrievers["dense"], searcher.retrievers["bm25"]
    matrix = dense.matrix
    if spec.get("nprobe"):
        matrix.params["nprobe"] = spec["nprobe"]
    current: list = [None]
    dense.embed = lambda q: current[0]  # synthetic query vectors instead of the text encoder
    open_s = time.perf_counter() - t0
    qv = np.load(spec["qvecs"])
    qt = spec["qtexts"]
    items = list(range(len(qv)))
    cfg = SearchConfig()

    def vec(i):
        current[0] = qv[i]
        return dense.retrieve(Query(text="v", k=10), 10)

    found = [_uid_to_row(vec(i).unit_ids) for i in items]
    ms_vec = time_calls(vec, items)
    bm25_hits = [len(bm25.retrieve(Query(text=qt[i], k=10), 10)) for i in items]
    ms_bm25 = time_calls(lambda i: bm25.retrieve(Query(text=qt[i], k=10), 10), items)
    shown = [[f"u{r}" for r in f] for f in found]
    ms_lookup = time_calls(lambda i: searcher.lookup(shown[i], DISPLAY_COLUMNS), items)

    def hybrid(i):
        current[0] = qv[i]
        return searcher.search(Query(text=qt[i], k=10), cfg)

    n_hits = [len(hybrid(i)) for i in items]
    ms_hyb = time_calls(hybrid, items)
    ms_methods = {}
    if spec.get("methods"):  # issue 11: each adaptive-ranking method on the same queries (first calls warm up CPN)
        import dataclasses

        base = SearchConfig(route="off")
        for label, kw in [("route off (before)", {}), ("route auto", {"route": "auto"}), ("+rm3", {"refine": ("rm3",)}),
                          ("+rocchio", {"refine": ("rocchio",)}), ("+gqr", {"refine": ("gqr",)}),
                          ("+cpn", {"prior": "cpn"}), ("dbsf", {"fusion": "dbsf"}), ("+adaptive", {"adaptive": True}),
                          ("cutoff auto", {"cutoff": "auto"})]:
            mcfg = dataclasses.replace(base, **kw)

            def one(i, mcfg=mcfg):
                current[0] = qv[i]
                return searcher.search(Query(text=qt[i], k=10), mcfg)

            ms_methods[label] = time_calls(one, items[: spec["methods"]]).tolist()
    out = {"ms_methods": ms_methods, "open_s": open_s, "ms_vec": ms_vec.tolist(), "ms_bm25": ms_bm25.tolist(), "ms_hybrid": ms_hyb.tolist(),
           "ms_lookup": ms_lookup.tolist(), "hybrid_hits": float(np.mean(n_hits)),
           "found": found, "bm25_hits": float(np.mean(bm25_hits)), "peak_rss_mib": peak_rss_mib(),
           "start_rss_mib": rss0, "exact": isinstance(matrix, VectorMatrix),
           "ann": None if isinstance(matrix, VectorMatrix) else matrix.describe()}
    print("@@RESULT@@" + json.dumps(out))


def run_child(spec: dict, tmp: Path, tree: str | None = None) -> dict:
    """Run the serving process on `spec`; `tree`: the checkout whose `polyseek` package it imports (default this one)."""
    p = tmp / "spec.json"
    p.write_text(json.dumps(spec))
    env = {**os.environ, "POLYSEEK_TREE": tree} if tree else None
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--serve-child", str(p)],
                       capture_output=True, text=True, cwd=str(REPO), env=env)
    for line in r.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise SystemExit(f"serving process failed (exit {r.returncode}):\n{r.stderr[-4000:]}")


# ------------------------------------------------------------------------------------------- keyword upkeep
def _text_store(folder: Path, texts: list[str], start: int = 0):
    """A store of records units (text, an 8-d vector) with their asset rows, written in big pyarrow batches."""
    import pyarrow as pa

    from polyseek.store.lance import UNIT_COLUMNS, LanceStore

    store = LanceStore(folder, {"vec_text": 8})
    _append_texts(store, texts, start)
    store.maintain()
    return store


def _append_texts(store, texts: list[str], start: int, hash_: str = "h0") -> None:
    import pyarrow as pa

    from polyseek.store.lance import UNIT_COLUMNS

    us, as_ = store.units.schema, store.assets.schema
    step = 200_000
    for i in range(0, len(texts), step):
        j = min(len(texts), i + step)
        ids = [f"a{start + r}" for r in range(i, j)]
        cols = {"id": [f"{a}#rec" for a in ids], "asset_id": ids, "kind": ["record"] * (j - i), "text": texts[i:j],
                "asset_type": ["record"] * (j - i), "path": ["/synthetic/records.jsonl"] * (j - i)}
        arrays = [pa.array(cols[c], type=us.field(c).type) if c in cols else pa.nulls(j - i, type=us.field(c).type)
                  for c in UNIT_COLUMNS]
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(np.zeros((j - i) * 8, np.float32)), 8))
        store.units.add(pa.Table.from_arrays(arrays, schema=pa.schema([us.field(c) for c in UNIT_COLUMNS] +
                                                                       [us.field("vec_text")])))
        acols = {"id": ids, "path": ["/synthetic/records.jsonl"] * (j - i), "type": ["record"] * (j - i),
                 "hash": [hash_] * (j - i), "n_units": [1] * (j - i)}
        store.assets.add(pa.Table.from_arrays(
            [pa.array(acols[f.name], type=f.type) if f.name in acols else pa.nulls(j - i, type=f.type) for f in as_],
            schema=as_))


def keyword_upkeep(n: int, bench: Path, qtexts: list[str]) -> tuple[list, list, list]:
    """Keyword upkeep after an index run adds 1,000 documents to an n-unit index (and after one that also
    changes and deletes 100 each), each timed as a new index-run process does it (load from disk, sync by asset
    hash, save); then the synced index against a full rebuild at the same store version on vaswani queries."""
    import bm25s
    import Stemmer

    from polyseek.config import IndexConfig
    from polyseek.store.derived import DerivedIndexes
    from polyseek.store.keyword import KeywordIndex
    from polyseek.store.sql import sql_in

    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-kw-"))
    cfg = IndexConfig(instance=False)
    try:
        texts = make_texts(bench, n + 2_000)
        with Timer() as t_store, quiet_logs():
            store = _text_store(tmp / "lance", texts[:n])
        print(f"[keyword] store of {n:,} units in {t_store.s:.0f}s (load {load_avg()})", flush=True)
        with Timer() as t_full:
            kw = DerivedIndexes(tmp, store, cfg).keyword_index(store.version, save=True)
        print(f"[keyword] full build (segments) {t_full.s:.1f}s", flush=True)
        with Timer() as t_bm25s:
            tok = bm25s.tokenize(texts[:n], stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
            bm = bm25s.BM25()
            bm.index(tok, show_progress=False)
        del tok
        print(f"[keyword] bm25s build (the previous keyword index, rebuilt every run) {t_bm25s.s:.1f}s", flush=True)
        # query latency, segmented (query-time BM25) vs bm25s (precomputed scores)
        qs = qtexts[:100]
        stem = kw.stemmer

        def seg_q(i):
            sc = kw.scores(qs[i])
            return None if sc is None else np.argpartition(-sc, 10)[:10]

        def bm_q(i):
            toks = [t for t in stem.tokens(qs[i]) if t in bm.vocab_dict]
            return np.argpartition(-bm.get_scores(toks), 10)[:10] if toks else None

        ms_seg, ms_bm = time_calls(seg_q, list(range(len(qs)))), time_calls(bm_q, list(range(len(qs))))
        del bm
        rows = []
        steps = [("+1,000 new documents", 1000, 0, 0), ("+1,000 new, 100 changed, 100 deleted", 1000, 100, 100)]
        nxt = n
        for label, add, change, delete in steps:
            with quiet_logs():
                _append_texts(store, texts[nxt:nxt + add], nxt)
                nxt += add
                if change:  # a changed record: new text and hash, same ids (as merge_insert leaves it)
                    ids = [f"a{i}" for i in range(10, 10 + change)]
                    store.units.delete(sql_in("asset_id", ids))
                    store.assets.delete(sql_in("id", ids))
                    _append_texts(store, [t + " changedword" for t in texts[10:10 + change]], 10, hash_="h1")
                if delete:
                    store.delete_assets([f"a{i}" for i in range(500, 500 + delete)])
            ver = store.version
            d = DerivedIndexes(tmp, store, cfg)  # a new index run: nothing in memory
            with Timer() as t_load:
                loaded = KeywordIndex.load(tmp / "keyword")
            d._kw = loaded
            with Timer() as t_up:
                kw = d.keyword_index(ver, force=True, save=True)
            rows.append([f"{n:,} units {label}", f"{t_load.s + t_up.s:.2f}", f"{t_load.s:.2f}",
                         f"{t_up.s:.2f}", len(kw.segments)])
            print(f"[keyword] {label}: load {t_load.s:.2f}s, sync+save {t_up.s:.2f}s", flush=True)
        with Timer() as t_ref:
            ref = KeywordIndex.from_store(store, store.version)
        same, max_diff = 0, 0.0
        for q in qtexts:
            a, b = kw.scores(q), ref.scores(q)
            if a is None or b is None:
                same += a is None and b is None
                continue
            ta = kw.unit_ids[np.argsort(-a, kind="stable")[:10]]
            tb = ref.unit_ids[np.argsort(-b, kind="stable")[:10]]
            sa = dict(zip(kw.unit_ids[a > 0], a[a > 0]))
            sb = dict(zip(ref.unit_ids[b > 0], b[b > 0]))
            same += list(ta) == list(tb)
            common = sa.keys() & sb.keys()
            max_diff = max(max_diff, max((abs(float(sa[u]) - float(sb[u])) for u in common), default=0.0))
            if sa.keys() != sb.keys():
                max_diff = float("inf")
        eq = [[f"top-10 equal to a full rebuild's ({len(qtexts)} vaswani queries)", f"{same}/{len(qtexts)}",
               verdict(same == len(qtexts))],
              ["largest score difference (same matching units)", f"{max_diff:.2g}", verdict(max_diff < 1e-4)]]
        builds = [["full build, segmented index (tokenise + postings)", f"{t_full.s:.1f}"],
                  ["full build, bm25s (what every run paid before)", f"{t_bm25s.s:.1f}"],
                  ["full rebuild for the equality check", f"{t_ref.s:.1f}"],
                  ["query p50 / p95 ms, segmented (BM25 at query time)",
                   f"{np.percentile(ms_seg, 50):.1f} / {np.percentile(ms_seg, 95):.1f}"],
                  ["query p50 / p95 ms, bm25s get_scores (peer)",
                   f"{np.percentile(ms_bm, 50):.1f} / {np.percentile(ms_bm, 95):.1f}"]]
        return rows, eq, builds
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main_keyword(args) -> int:
    bench = bench_dir("vaswani", args.bench)
    qtexts = [json.loads(line)["text"] for line in (bench / "queries.jsonl").open()]
    n = SCALES[args.keyword_upkeep.lower()]
    load_start = load_avg()
    rows, eq, builds = keyword_upkeep(n, bench, qtexts)
    ok = all(float(r[1]) <= 5.0 for r in rows)
    head = (f"`python bench/bench_scale.py --keyword-upkeep {args.keyword_upkeep}`.  \n"
            f"Machine: {machine_line(['polyseek', 'bm25s', 'lancedb', 'numpy'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end.\n\n"
            "Texts are vaswani abstracts repeated with a per-copy token (as in the scale tables), written as records "
            "units with asset rows into a Polyseek store. Each upkeep is what a new index-run process does after "
            "its commits: load `keyword/` from disk, sync it with the store by asset hash (one new segment, dead "
            "rows marked), save the new generation. Target (issue 14): <= 5 s for +1,000 documents at 1M units, "
            f"and the same top-10 as a full rebuild: {verdict(ok)} for upkeep.")
    emit("scale-keyword", "Incremental keyword index",
         [head, table(["run", "upkeep s", "load s", "sync + save s", "segments"], rows),
          table(["check", "measured", "verdict"], eq), table(["build / query", "measured"], builds)],
         write=not args.no_write)
    return 0


# ------------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="10k,100k,1m", help="comma list of 10k, 100k, 1m")
    ap.add_argument("--scale", choices=["1m"], help="add the 1M scale (kept for older commands; now in the default)")
    ap.add_argument("--queries", type=int, default=200, help="queries per scale")
    ap.add_argument("--lance-queries", type=int, default=10,
                    help="queries for the LanceDB flat-scan peer (a flat scan of 1M rows takes seconds)")
    ap.add_argument("--lance-ivf", action="store_true", help="also build LanceDB's IVF_PQ and time its raw query")
    ap.add_argument("--bench", help="vaswani folder for the texts (default ../shared/bench/vaswani)")
    ap.add_argument("--sweep", action="store_true", help="also try nprobe and quantizer settings at the largest scale")
    ap.add_argument("--quantizer", default=None, help="ANN codes: fp16 or sq8 (default: IndexConfig.ann_quantizer)")
    ap.add_argument("--ann-min-rows", type=int, default=None,
                    help="rows from which Polyseek uses the ANN index (default: IndexConfig.ann_min_rows)")
    ap.add_argument("--compare-tree", help="another checkout of Polyseek (e.g. a worktree of the previous commit): "
                    "its serving process is run on the same index, alternating with this one's, and the p50s are "
                    "compared (serving paths only; the index is built by this checkout)")
    ap.add_argument("--methods", type=int, default=0, metavar="N",
                    help="also time each adaptive-ranking method (issue 11) on N queries at each scale up to 100k")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--keyword-upkeep", choices=list(SCALES), help="only the incremental keyword index at this scale")
    ap.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.keyword_upkeep:
        with quiet_logs():
            return main_keyword(args)
    if args.serve_child:
        with quiet_logs():
            serve_child(args.serve_child)
        return 0

    import bm25s

    from polyseek.config import IndexConfig
    from polyseek.store.keyword import KeywordIndex
    from polyseek.store.vector_index import VectorIndex

    ann_min_rows = args.ann_min_rows or IndexConfig().ann_min_rows
    quantizer = args.quantizer or IndexConfig().ann_quantizer
    names = [s.strip().lower() for s in args.scales.split(",") if s.strip()]
    if args.scale and args.scale not in names:
        names.append(args.scale)
    bench = bench_dir("vaswani", args.bench)
    qtexts_all = [json.loads(line)["text"] for line in (bench / "queries.jsonl").open()]
    load_start = load_avg()
    rows, build_rows, sweep_rows, mem_rows, target_rows, ratio_rows, ab_rows = [], [], [], [], [], [], []
    method_rows: list = []
    for name in names:
        n = SCALES[name]
        print(f"[{name}] generating {n:,} vectors and texts (load {load_avg()})", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"polyseek-bench-scale-{name}-"))
        try:
            x = make_vectors(n)
            qv = query_vectors(n, args.queries)
            qt = [qtexts_all[i % len(qtexts_all)] for i in range(args.queries)]
            texts = make_texts(bench, n)
            truth = exact_topk(x, qv, 10)
            with quiet_logs():
                store, add_s = build_store(tmp / "lance", x, texts)
            write_manifest(tmp, IndexConfig(ann_min_rows=ann_min_rows, ann_quantizer=quantizer, instance=False))
            lp = lance_ivf_params(n) if args.lance_ivf else None
            if lp:  # the peer's index first: Polyseek's derived indexes are then stamped with the final version
                with Timer() as t_livf, quiet_logs():
                    build_lance_ivf(store.units, lp)
                print(f"[{name}] LanceDB IVF_PQ build {t_livf.s:.1f}s", flush=True)
            ann_s, ann_desc = None, "– (exact in memory)"
            if n >= ann_min_rows:
                with Timer() as t_ann, quiet_logs():
                    vi = VectorIndex.build(store, FIELD, store.version, quantizer)
                    vi.save(tmp / "vectors" / FIELD)
                ann_s, ann_desc = t_ann.s, vi.describe()["type"]
            print(f"[{name}] table {add_s:.1f}s, ANN index {ann_s and round(ann_s, 1)}s ({ann_desc})", flush=True)
            with Timer() as t_kw:
                kw = KeywordIndex.build([f"u{i}" for i in range(n)], [f"a{i}" for i in range(n)], texts, store.version)
            kw.save(tmp / "keyword")
            print(f"[{name}] BM25 index {t_kw.s:.1f}s", flush=True)
            del texts

            # Peers, in this process: numpy exact, bm25s retrieve, LanceDB raw query.
            items = list(range(len(qv)))

            def np_exact(i):
                s = x @ qv[i]
                top = np.argpartition(-s, 10)[:10]
                return top[np.argsort(-s[top])]

            ms_np = time_calls(np_exact, items)
            import Stemmer

            stemmer = Stemmer.Stemmer("english")  # the peer tokenises as bm25s's docs show
            bm = bm25s.BM25()  # the peer: bm25s's own index of the same texts
            bm.index(bm25s.tokenize(make_texts(bench, n), stopwords="en", stemmer=stemmer, show_progress=False),
                     show_progress=False)

            def bm25s_q(i):
                toks = bm25s.tokenize([qt[i]], stopwords="en", stemmer=stemmer, show_progress=False)
                return bm.retrieve(toks, k=10, show_progress=False, n_threads=1)

            ms_bm25s = time_calls(bm25s_q, items)
            tbl = store.units
            few = items[: args.lance_queries]
            found_flat = [_uid_to_row(raw_lance_query(tbl, qv[i], 10, None)) for i in few]
            ms_flat = time_calls(lambda i: raw_lance_query(tbl, qv[i], 10, None), few)
            lance_rows = [[name, f"LanceDB raw query, no index ({len(few)} queries)", *p50_95_99(ms_flat),
                           recall(found_flat, truth[: len(few)])]]
            if lp:
                f = [_uid_to_row(raw_lance_query(tbl, qv[i], 10, lp)) for i in items]
                ms = time_calls(lambda i: raw_lance_query(tbl, qv[i], 10, lp), items)
                lance_rows.append([name, f"LanceDB raw query, IVF_PQ p={lp['num_partitions']} sub={lp['num_sub_vectors']} "
                                   f"nprobes={lp['nprobes']} refine={lp['refine_factor']} (build {t_livf.s:.0f} s)",
                                   *p50_95_99(ms), recall(f, truth)])

            if args.sweep and name == names[-1] and n >= ann_min_rows:
                for qz in ("fp16", "sq8"):
                    with Timer() as tb, quiet_logs():
                        sv = vi if qz == quantizer else VectorIndex.build(store, FIELD, store.version, qz)
                    for nprobe in (8, 16, 32, 64, 128):
                        sv.params["nprobe"] = nprobe
                        f = [_uid_to_row(sv.search(qv[i], 10, None)[0]) for i in items]
                        ms = time_calls(lambda i: sv.search(qv[i], 10, None), items)
                        sweep_rows.append([name, sv.describe()["type"], nprobe,
                                           tb.s if qz != quantizer else ann_s, recall(f, truth), *p50_95_99(ms)])
                        print(f"  {sweep_rows[-1]}", flush=True)
                    del sv
            vi = None
            del x

            spec = {"index": str(tmp), "qvecs": str(tmp / "qv.npy"), "qtexts": qt,
                    "methods": args.methods if n <= 100_000 else 0}
            np.save(tmp / "qv.npy", qv)
            del kw, bm, store, tbl
            child = run_child(spec, tmp)
            if args.compare_tree:  # alternate this tree and the other, 3 serving processes each
                runs = {"this": [child], "other": []}
                for _ in range(3):
                    runs["other"].append(run_child(spec, tmp, args.compare_tree))
                    if len(runs["this"]) < 3:
                        runs["this"].append(run_child(spec, tmp))
                med = lambda v: float(np.median(v))  # noqa: E731
                for key, label in (("ms_bm25", "BM25Retriever"), ("ms_vec", "dense"), ("ms_hybrid", "hybrid search")):
                    a = med([med(c[key]) for c in runs["this"]])
                    b = med([med(c[key]) for c in runs["other"]])
                    ab_rows.append([name, label, a, b, f"{a / b:.2f}x"])
            rec_poly = recall(child["found"], truth)
            print(f"[{name}] Polyseek BM25 returned {child['bm25_hits']:.1f} hits per query on average, "
                  f"hybrid {child['hybrid_hits']:.1f}", flush=True)
            vec_label = "Polyseek dense (in-memory exact, below ann_min_rows)" if child["exact"] else \
                f"Polyseek dense (VectorIndex {child['ann']['type']}, nprobe {child['ann']['nprobe']})"
            rows += [
                [name, "numpy exact (peer, memory-bandwidth limit)", *p50_95_99(ms_np), 1.0],
                *lance_rows,
                [name, vec_label, *p50_95_99(child["ms_vec"]), rec_poly],
                [name, "bm25s retrieve (peer)", *p50_95_99(ms_bm25s), "–"],
                [name, "Polyseek BM25Retriever", *p50_95_99(child["ms_bm25"]), "–"],
                [name, "Polyseek display rows of 10 hits (store lookup; in-memory below 50k)",
                 *p50_95_99(child["ms_lookup"]), "–"],
                [name, "Polyseek hybrid (BM25 + dense, RRF, depth 100, k 10, snippets)", *p50_95_99(child["ms_hybrid"]), "–"],
            ]
            med = lambda v: float(np.median(v))  # noqa: E731
            ratio_rows.append([name, f"{med(child['ms_vec']) / med(ms_np):.3f}x", f"{med(child['ms_vec']) / med(ms_flat):.4f}x",
                               f"{med(child['ms_bm25']) / med(ms_bm25s):.2f}x",
                               f"{med(child['ms_hybrid']) / (med(ms_np) + med(ms_bm25s)):.2f}x"])
            for label, ms in child["ms_methods"].items():
                method_rows.append([name, label, *p50_95_99(ms),
                                    f"{np.median(ms) / np.median(child['ms_methods']['route off (before)']):.2f}x"])
            build_rows.append([name, add_s, f"{ann_s:.1f} ({ann_desc})" if ann_s else ann_desc, t_kw.s])
            mem_rows.append([name, child["peak_rss_mib"], n * DIM * 4 / 2**20, child["open_s"]])
            if n >= 1_000_000:
                v50, h50, mem = float(np.median(child["ms_vec"])), float(np.median(child["ms_hybrid"])), child["peak_rss_mib"]
                target_rows += [
                    ["vector top-10 p50 <= 10 ms", f"{v50:.1f} ms", verdict(v50 <= 10)],
                    ["recall@10 >= 0.95 vs exact", f"{rec_poly:.3f}", verdict(rec_poly >= 0.95)],
                    ["hybrid p50 <= 30 ms", f"{h50:.1f} ms", verdict(h50 <= 30)],
                    ["serving memory <= 4 GB", f"{mem / 1024:.2f} GiB", verdict(mem <= 4096)],
                ]
            print(f"[{name}] done (load {load_avg()})", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    load_end = load_avg()

    head = (f"`python bench/bench_scale.py --scales {','.join(names)}{' --lance-ivf' if args.lance_ivf else ''}`; "
            f"{args.queries} queries per scale, one at a time, 512-d clustered unit vectors, texts from vaswani; "
            f"Polyseek switches from exact search to its ANN index (faiss IVF-SQ{quantizer}) at {ann_min_rows:,} rows "
            f"(IndexConfig.ann_min_rows).  \n"
            f"Machine: {machine_line(['lancedb', 'pylance', 'faiss-cpu', 'bm25s', 'numpy'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_end} at end.")
    parts = [head, table(["units", "query path", "p50 ms", "p95 ms", "p99 ms", "recall@10 vs exact"], rows),
             "Ratios of p50 latencies to the peers in the same run (below 1 is faster than the peer; the hybrid peer is "
             "numpy exact + bm25s, run one after the other, without fusion or display rows):\n\n" +
             table(["units", "dense / numpy exact", "dense / LanceDB raw (no index)", "BM25 / bm25s",
                    "hybrid / (numpy + bm25s)"], ratio_rows),
             "Build times (seconds):\n\n" + table(["units", "table write + maintain (Polyseek schema)",
                                                   "Polyseek ANN index (train + add + save)", "BM25 index (bm25s)"],
                                                  build_rows),
             "Serving memory: peak RSS of a fresh process that opens the store, keyword index and ANN index and runs "
             "all queries (MiB); the numpy peer needs the whole float32 matrix in RAM:\n\n" +
             table(["units", "Polyseek serving peak RSS", "numpy matrix size", "open s"], mem_rows)]
    if target_rows:
        parts.insert(1, table(["target at 1M (issue 3)", "measured", "verdict"], target_rows))
    else:
        parts.insert(1, "The 1M targets were not run here (`--scale 1m`).")
    emit("scale", "Query latency and memory at scale", parts, write=not args.no_write)
    if ab_rows:
        emit("scale-ab", "Serving path against another checkout, same index, same run",
             [f"`python bench/bench_scale.py --scales {','.join(names)} --compare-tree {args.compare_tree}`: the serving "
              f"process of each checkout alternated (3 runs each, median of per-run p50s) on the index this checkout "
              f"built. Load average (1/5/15 min): {load_start} at start, {load_end} at end.",
              table(["units", "path", "this p50 ms", "other p50 ms", "this / other"], ab_rows)],
             write=not args.no_write)
    if method_rows:
        emit("scale-methods", "Adaptive ranking methods at scale (issue 11)",
             [f"`python bench/bench_scale.py --scales {','.join(names)} --methods {args.methods}`; hybrid search "
              f"(BM25 + dense, depth 100, k 10) with each method alone, synthetic query vectors, texts from vaswani. "
              f"Load average (1/5/15 min): {load_start} at start, {load_end} at end.",
              table(["units", "config", "p50 ms", "p95 ms", "p99 ms", "p50 / route off"], method_rows)],
             write=not args.no_write)
    if sweep_rows:
        sweep = table(["units", "index", "nprobe", "build s", "recall@10", "p50 ms", "p95 ms", "p99 ms"], sweep_rows)
        emit("scale-sweep", "ANN settings sweep (Polyseek VectorIndex, clustered 512-d vectors)",
             [f"`python bench/bench_scale.py --scales {names[-1]} --sweep`; {args.queries} queries, one at a time, "
              f"recall@10 against exact numpy search. Load average (1/5/15 min): {load_start} at start, "
              f"{load_end} at end.", sweep],
             write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
