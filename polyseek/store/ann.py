"""Vector index settings for LanceDB, chosen by table size and dimension.

`ann_params(n_rows, dim)` is a pure function: `LanceStore.maintain` passes the build keys to
`create_index`, `LanceStore.vector_search` passes `nprobes` and `refine_factor` to the query.

Measured with `bench/bench_scale.py` (clustered synthetic unit vectors, cosine, top-10, recall against exact
numpy search; 2-core shared machine, see docs/benchmarks.md for the tables and load averages):

- 100k x 512, IVF_PQ, 64 sub-vectors (one byte per 8 dims):
  316 lists, nprobes 20, refine 10: recall@10 0.972, raw query p50 11.9 ms (load ~6); build 533 s.
  316 lists, nprobes 20, refine 20: recall@10 1.00, raw query p50 12.8 ms, through LanceStore 24.9 ms
  (load ~3); build 209 s.
  24 lists, refine 5 / 10 / 20: recall@10 0.61 / 0.85 / 0.9995 whatever nprobes (8 or 16), p50 14-23 ms at
  load 9-11; build 470 s. Recall is set by PQ accuracy: finer lists (smaller residuals) and a larger refine
  factor raise it, nprobes beyond ~20 barely matters on clustered data.
- Chosen: ~sqrt(n) lists (capped at 1024), nprobes max(20, lists/20), refine 20 (re-ranks 200 exact vectors
  for top-10; cheap next to the PQ scan). Not yet measured at 1M: the build did not fit a session on the busy
  shared machine; `python bench/bench_scale.py --scale 1m` on a quiet one checks the 10 ms / 0.95 target.
- Build time on 2 cores is minutes per 100k rows under load, and 13x fewer lists did not shorten it much
  (470 s vs 533 s), so the list count is chosen for recall, not build time.
"""

from __future__ import annotations

import math
from typing import Any


def ann_params(n_rows: int, dim: int) -> dict[str, Any]:
    """LanceDB vector index settings for a column of `n_rows` vectors of `dim` dimensions.

    Build keys: index_type, num_partitions, num_sub_vectors, metric. Query keys: nprobes, refine_factor.
    """
    if n_rows < 1 or dim < 1:
        raise ValueError(f"need n_rows >= 1 and dim >= 1, got n_rows={n_rows}, dim={dim}")
    # IVF: ~sqrt(n) lists. Finer lists leave smaller residuals for PQ to encode, so recall at a given refine
    # factor is higher (100k, refine 10: 0.97 with 316 lists vs 0.85 with 24); build time was about the same
    # either way (470-530 s at load 6-11 on the shared 2 cores).
    parts = int(min(1024, max(16, round(math.sqrt(n_rows)))))
    nprobes = int(min(parts, max(20, parts // 20)))
    # PQ: one byte per 8 dimensions (64 bytes for 512-d); the exact re-rank (refine) restores the order.
    sub = dim // 8 if dim % 8 == 0 and dim >= 64 else _divisor_near(dim, max(1, dim // 8))
    return {
        "index_type": "IVF_PQ",
        "metric": "cosine",
        "num_partitions": parts,
        "num_sub_vectors": sub,
        "nprobes": nprobes,
        "refine_factor": 20,
    }


def build_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of `ann_params` that `LanceTable.create_index` takes."""
    keys = ("index_type", "metric", "num_partitions", "num_sub_vectors", "m", "ef_construction")
    return {k: params[k] for k in keys if k in params}


def index_config(params: dict[str, Any]):
    """The LanceDB index config object for `ann_params` output (the keyword form of create_index is deprecated)."""
    from lancedb.index import IvfPq

    if params["index_type"] != "IVF_PQ":
        raise ValueError(f"unsupported index_type {params['index_type']!r}; ann_params chooses IVF_PQ")
    return IvfPq(distance_type=params["metric"], num_partitions=params["num_partitions"],
                 num_sub_vectors=params["num_sub_vectors"])


def _divisor_near(dim: int, target: int) -> int:
    """The divisor of `dim` closest to `target` (PQ needs dim % num_sub_vectors == 0)."""
    divs = [d for d in range(1, dim + 1) if dim % d == 0]
    return min(divs, key=lambda d: (abs(d - target), -d))
