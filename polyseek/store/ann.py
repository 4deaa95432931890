"""Vector index settings for LanceDB, chosen by table size and dimension.

`ann_params(n_rows, dim)` is a pure function: `LanceStore.maintain` passes the build keys to
`create_index`, `LanceStore.vector_search` passes `nprobes` and `refine_factor` to the query.

Measured with `bench/bench_scale.py` (clustered synthetic unit vectors, cosine, top-10, recall against exact
numpy search; 2-core shared machine, see docs/benchmarks.md for the tables and load averages):
MEASUREMENTS_PLACEHOLDER
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
    # IVF: about sqrt(n) lists keeps both the centroid scan and each probed list short.
    parts = int(min(4096, max(16, round(math.sqrt(n_rows)))))
    # PQ: one byte per 8 dimensions (64 bytes for 512-d); the exact re-rank (refine) restores the order.
    sub = dim // 8 if dim % 8 == 0 and dim >= 64 else _divisor_near(dim, max(1, dim // 8))
    return {
        "index_type": "IVF_PQ",
        "metric": "cosine",
        "num_partitions": parts,
        "num_sub_vectors": sub,
        "nprobes": 20,
        "refine_factor": 10,
    }


def build_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of `ann_params` that `LanceTable.create_index` takes."""
    keys = ("index_type", "metric", "num_partitions", "num_sub_vectors", "m", "ef_construction")
    return {k: params[k] for k in keys if k in params}


def _divisor_near(dim: int, target: int) -> int:
    """The divisor of `dim` closest to `target` (PQ needs dim % num_sub_vectors == 0)."""
    divs = [d for d in range(1, dim + 1) if dim % d == 0]
    return min(divs, key=lambda d: (abs(d - target), -d))
