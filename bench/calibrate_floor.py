"""Calibrate the dense-only relevance floor (polyseek.retrieve.honesty.DENSE_FLOORS) for a text encoder.

Usage:
    python bench/calibrate_floor.py [--encoder minilm] [--random 3000]

On vaswani: the cosine between each query and (a) its judged-relevant documents, (b) random documents (almost all
non-relevant: 2,083 relevant pairs of 93 x 11,429). The floor is set near the 1st percentile of (a): a hit found
only by the dense signal with a lower cosine is far more likely noise than an answer.
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

from common import SHARED_BENCH, table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--random", type=int, default=3000, help="random documents per query sample")
    args = ap.parse_args(argv)
    from polyseek.encode import load_encoder

    d = SHARED_BENCH / "vaswani"
    docs = {}
    for line in (d / "corpus.jsonl").open():
        r = json.loads(line)
        docs[r["id"]] = "\n".join(p for p in (r.get("title") or "", r.get("text") or "") if p)
    queries = {json.loads(l)["id"]: json.loads(l)["text"] for l in (d / "queries.jsonl").open()}
    rel: dict[str, set[str]] = {}
    for line in (d / "qrels.tsv").open():
        q, _, doc, r = line.split()
        if int(r) > 0:
            rel.setdefault(q, set()).add(doc)
    rng = random.Random(0)
    sample = rng.sample(sorted(docs), args.random)
    need = sorted(set(sample) | {x for s in rel.values() for x in s})
    enc = load_encoder(args.encoder, device="cpu")
    dv = dict(zip(need, enc.encode_documents([docs[x] for x in need])))
    qids = sorted(rel)
    qv = dict(zip(qids, enc.encode_queries([queries[q] for q in qids])))
    pos = np.array([float(qv[q] @ dv[x]) for q in qids for x in rel[q]])
    neg = np.array([float(qv[q] @ dv[x]) for q in qids for x in sample if x not in rel[q]])
    pcts = [1, 5, 10, 50, 90, 99]
    rows = [["relevant pairs", len(pos), *np.percentile(pos, pcts)],
            ["random pairs (non-relevant)", len(neg), *np.percentile(neg, pcts)]]
    print(table(["pairs", "n", *[f"p{p}" for p in pcts]], rows))
    for floor in (0.1, 0.15, 0.2, 0.25, 0.3):
        print(f"floor {floor:.2f}: drops {np.mean(pos < floor):.1%} of relevant, {np.mean(neg < floor):.1%} of random")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
