"""Query suggestions from result clusters (CroQS, "Cross-modal Query Suggestion", 2024: "maybe you are looking
for"): cluster the top results by their stored vectors and propose, per cluster, the query plus the words that
set that cluster apart (class-based TF-IDF, as BERTopic labels topics), so each suggestion isolates one group.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)


def kmeans(x: np.ndarray, k: int, *, iters: int = 20, seed: int = 0) -> np.ndarray:
    """Cluster labels of the rows of `x` (k-means++ seeding, Arthur & Vassilvitskii 2007; Lloyd iterations).
    Deterministic for a seed."""
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centers = [x[0]]  # the best hit seeds the first cluster
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        if d.sum() <= 0:
            break
        centers.append(x[rng.choice(n, p=d / d.sum())])
    c = np.asarray(centers, np.float64)
    labels = np.zeros(n, np.int64)
    for _ in range(iters):
        d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        new = d.argmin(axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for j in range(len(c)):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(axis=0)
    return labels


def distinctive_words(texts_by_cluster: Sequence[Sequence[str]], skip: Callable[[str], bool], top: int = 3
                      ) -> list[list[str]]:
    """Per cluster, the words most particular to it: class-based TF-IDF (a cluster's texts as one document),
    tf(w, c) / |c| * log(1 + mean words per cluster / total count of w)."""
    counts = []
    for texts in texts_by_cluster:
        c: Counter = Counter()
        for t in texts:
            c.update(w.lower() for w in _WORD.findall(t or "") if not skip(w.lower()))
        counts.append(c)
    total: Counter = Counter()
    for c in counts:
        total.update(c)
    avg = sum(sum(c.values()) for c in counts) / max(len(counts), 1)
    out = []
    for c in counts:
        n = max(sum(c.values()), 1)
        scored = sorted(((cnt / n * math.log(1 + avg / total[w]), w) for w, cnt in c.items() if cnt >= 1),
                        key=lambda t: (-t[0], t[1]))
        out.append([w for _, w in scored[:top]])
    return out


def suggest_queries(query: str, docs: Sequence[tuple[str, str, np.ndarray]], *, k_min: int = 3, k_max: int = 5,
                    skip: Callable[[str], bool] | None = None, seed: int = 0) -> list[dict]:
    """Up to `k_max` refined queries for `query`, one per cluster of `docs` ((id, text, vector) of the top
    results, best first). Each is {"query", "add", "ids", "size"}: the added words and the results of that
    cluster. Fewer than `k_min` clusters of distinct words give fewer suggestions; none when docs are < 4."""
    docs = [d for d in docs if d[2] is not None and np.any(d[2])]
    if len(docs) < 4:
        return []
    x = np.asarray([d[2] for d in docs], np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    k = int(min(k_max, max(k_min, round(math.sqrt(len(docs) / 2)))))
    labels = kmeans(x, k, seed=seed)
    skip = skip or (lambda w: False)
    qwords = {w.lower() for w in _WORD.findall(query or "")}
    clusters = [j for j in dict.fromkeys(labels.tolist())]  # in order of their best hit
    words = distinctive_words([[docs[i][1] for i in range(len(docs)) if labels[i] == j] for j in clusters],
                              lambda w: skip(w) or w in qwords)
    out, used = [], set()
    for j, ws in zip(clusters, words):
        pick = [w for w in ws if w not in used][:2]
        if not pick:
            continue
        used.update(pick)
        ids = [docs[i][0] for i in range(len(docs)) if labels[i] == j]
        out.append({"query": " ".join([query.strip(), *pick]).strip(), "add": pick, "ids": ids, "size": len(ids)})
    return out[:k_max]


def suggest_for_hits(searcher, query, hits, *, top: int = 20) -> list[dict]:
    """Suggestions for a query's hits from the index: vectors of the hits' units (text vectors, else visual)
    and their text; stopwords and the query's own words are never suggested."""
    from bm25s.tokenization import STOPWORDS_EN

    hits = hits[:top]
    if not hits:
        return []
    uids = [h.unit.id for h in hits]
    ret = searcher.retrievers.get("dense")
    vecs = ret.vectors_of(uids) if ret is not None else None
    if (vecs is None or not np.any(vecs)) and "visual" in searcher.retrievers:
        vecs = searcher.retrievers["visual"].vectors_of(uids)
    if vecs is None:
        return []
    rows = searcher.lookup(uids, ["id", "text"])
    stop = set(STOPWORDS_EN)
    docs = [(h.asset.id, (rows.get(h.unit.id) or {}).get("text") or h.snippet, vecs[i]) for i, h in enumerate(hits)]
    return suggest_queries(query.text or "", docs, skip=lambda w: w in stop)
