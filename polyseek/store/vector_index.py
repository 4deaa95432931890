"""Approximate nearest-neighbour index for one vector field of a large index (faiss IVF + scalar quantisation).

Derived data, like the keyword index: built from the store's vectors, stamped with the store version it
reflects, saved under `<index>/vectors/<field>/` with a rename so readers never see half of it. Below
`IndexConfig.ann_min_rows` the dense signals search an exact in-memory matrix instead (`VectorMatrix`).

Why faiss and not the store's own IVF_PQ: on the 2-core target machine LanceDB's IVF_PQ took 209-533 s to
build at 100k x 512 and ~13-15 ms a query (docs/benchmarks.md), so 1M rows would miss the 10 ms target and
take most of an hour to index; faiss IVF-SQ trains its coarse quantiser with BLAS k-means in about a minute at
1M and answers in 1-3 ms. Settings and their measurements: `ann_params` below.

Updates are incremental by asset content hash (the assets table's `hash`): units of new or changed assets
are added, units of changed or removed assets are removed; the quantiser is retrained (a full rebuild) when
the live rows have doubled since training or half the rows are dead, as the instance vocabulary is.
Faiss ids are positions in the append-only `unit_ids` / `asset_ids` arrays; removed positions stay there
but are gone from faiss (`alive` is False).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .files import replaced_folder

log = logging.getLogger(__name__)

FORMAT = 1


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """IVF-SQ over unit vectors of one field; `search` has the `VectorMatrix` interface."""

    def __init__(self, field: str, dim: int, params: dict[str, Any], index, unit_ids: np.ndarray,
                 asset_ids: np.ndarray, alive: np.ndarray, asset_hash: dict[str, str | None], version: int,
                 trained_rows: int):
        self.field = field
        self.dim = dim
        self.params = dict(params)
        self.index = index
        self.unit_ids = unit_ids
        self.asset_ids = asset_ids
        self.alive = alive
        self.asset_hash = asset_hash
        self.version = version
        self.trained_rows = trained_rows
        self._lookup = None  # pandas Index over the alive unit ids, built on the first filtered query
        self._mutex = threading.Lock()  # an in-place sync must not run under a concurrent search

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(cls, store, field: str, version: int, quantizer: str = "fp16", seed: int = 0) -> "VectorIndex":
        """Train on a sample of the field's vectors and add all of them, streaming from the store."""
        faiss = _faiss()
        dim = store.dims[field]
        n = store.count_units()
        params = ann_params(n, dim, quantizer)
        t0 = time.perf_counter()
        sample = store.sample_vectors(field, params["train_rows"], seed=seed)
        sample = sample[np.abs(sample).sum(axis=1) > 0]
        nlist = int(min(params["nlist"], max(1, len(sample) // 39)))  # faiss wants >= 39 points per list
        params["nlist"] = nlist
        params["nprobe"] = int(min(params["nprobe"], nlist))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, _qtype(params["quantizer"]),
                                              faiss.METRIC_INNER_PRODUCT)
        if len(sample):
            index.train(np.ascontiguousarray(sample, np.float32))
        else:  # no vectors at all for this field (e.g. no pixels anywhere): an empty, trained index
            index.train(np.eye(nlist, dim, dtype=np.float32))
        self = cls(field, dim, params, index, np.empty(0, object), np.empty(0, object), np.empty(0, bool), {},
                   version, int(n))
        self._add_batches(store.iter_vectors(field))
        self.asset_hash = store.asset_hashes()
        log.info("vector index %s: %d rows, %d lists, built in %.1f s", field, self.size, nlist,
                 time.perf_counter() - t0)
        return self

    def _add_batches(self, batches) -> int:
        """Append (unit_ids, asset_ids, vectors) batches; zero vectors (units without this signal) are skipped."""
        added = 0
        ids_parts, aid_parts = [self.unit_ids], [self.asset_ids]
        start = len(self.unit_ids)
        for uids, aids, vecs in batches:
            keep = np.abs(vecs).sum(axis=1) > 0
            if not keep.any():
                continue
            uids, aids, vecs = uids[keep], aids[keep], np.ascontiguousarray(vecs[keep], np.float32)
            pos = np.arange(start, start + len(uids), dtype=np.int64)
            self.index.add_with_ids(vecs, pos)
            ids_parts.append(uids)
            aid_parts.append(aids)
            start += len(uids)
            added += len(uids)
        if added:
            self.unit_ids = np.concatenate(ids_parts).astype(object)
            self.asset_ids = np.concatenate(aid_parts).astype(object)
            self.alive = np.concatenate([self.alive, np.ones(added, bool)])
            self._lookup = None
        return added

    def sync(self, store, version: int, allow_rebuild: bool = True) -> "VectorIndex":
        """Bring the index up to the store's `version`: incremental by asset hash, or (with `allow_rebuild`) a
        full rebuild when the quantiser would otherwise serve data too unlike what it was trained on. Returns
        the index to use (self, updated in place, or a new one). Readers pass allow_rebuild=False: a server
        beside an index run must not retrain for minutes; the writer rebuilds at the end of its run."""
        if version == self.version:
            return self
        with self._mutex:
            return self._sync(store, version, allow_rebuild)

    def _sync(self, store, version: int, allow_rebuild: bool) -> "VectorIndex":
        cur = store.asset_hashes()
        prev = self.asset_hash
        changed = [a for a, h in cur.items() if prev.get(a, "\0missing") != h]
        gone = [a for a in prev if a not in cur]
        drop = set(changed) | set(gone)
        where = np.flatnonzero(self.alive & np.isin(self.asset_ids, list(drop))) if drop else np.zeros(0, np.int64)
        live = int(self.alive.sum())
        dead_after = len(self.alive) - live + len(where)
        if allow_rebuild and (len(changed) + len(gone) > 0.3 * max(len(cur), 1)
                              or store.count_units() > 2 * self.trained_rows or dead_after > max(live, 1)):
            return VectorIndex.build(store, self.field, version, self.params["quantizer"])
        if len(where):
            self.index.remove_ids(_faiss().IDSelectorBatch(where.astype(np.int64)))
            self.alive[where] = False
            self._lookup = None
        if changed:
            self._add_batches(store.iter_vectors(self.field, asset_ids=changed))
        self.asset_hash = cur
        self.version = version
        return self

    # -- searching ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, q: np.ndarray, depth: int, mask: np.ndarray | None):
        """Top `depth` (unit ids, asset ids, inner products) for query vector `q`; `mask` is an array of the unit
        ids allowed (a filter), or None."""
        faiss = _faiss()
        q = np.ascontiguousarray(np.asarray(q, np.float32).reshape(1, -1))
        nlist = self.params["nlist"]
        nprobe = self.params["nprobe"]
        sel = None
        if mask is not None:
            pos = self._positions(mask)
            if len(pos) == 0:
                return [], [], np.zeros(0, np.float32)
            sel = faiss.IDSelectorBatch(pos)
            # A selective filter leaves few allowed rows in the probed lists: probe more lists (all of them when
            # under 5% of rows pass), so a filtered query still finds its `depth` best allowed units.
            frac = len(pos) / max(self.size, 1)
            nprobe = nlist if frac < 0.05 else int(min(nlist, np.ceil(nprobe / frac)))
        params = faiss.SearchParametersIVF(nprobe=int(nprobe))
        if sel is not None:
            params.sel = sel
        with self._mutex:
            k = int(min(depth, max(self.size, 1)))
            d, i = self.index.search(q, k, params=params)
            ok = i[0] >= 0
            pos = i[0][ok]
            return self.unit_ids[pos].tolist(), self.asset_ids[pos].tolist(), d[0][ok].astype(np.float32)

    def _positions(self, mask: np.ndarray) -> np.ndarray:
        import pandas as pd

        if self._lookup is None:
            live = np.flatnonzero(self.alive)
            self._lookup = (pd.Index(self.unit_ids[live]), live)
        idx, live = self._lookup
        got = idx.get_indexer(pd.Index(np.asarray(mask, dtype=object)))
        return live[got[got >= 0]].astype(np.int64)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write beside `folder` and swap in with a rename."""
        import pyarrow as pa
        import pyarrow.feather as feather

        with replaced_folder(folder) as tmp:
            _faiss().write_index(self.index, str(tmp / "ivf.faiss"))
            feather.write_feather(pa.table({"unit_id": pa.array(self.unit_ids.tolist(), pa.string()),
                                            "asset_id": pa.array(self.asset_ids.tolist(), pa.string()),
                                            "alive": pa.array(self.alive)}), str(tmp / "rows.arrow"))
            feather.write_feather(pa.table({"asset_id": pa.array(list(self.asset_hash), pa.string()),
                                            "hash": pa.array(list(self.asset_hash.values()), pa.string())}),
                                  str(tmp / "assets.arrow"))
            (tmp / "meta.json").write_text(json.dumps({
                "format": FORMAT, "field": self.field, "dim": self.dim, "version": self.version,
                "params": self.params, "trained_rows": self.trained_rows, "size": self.size}))

    @classmethod
    def load(cls, folder: Path, field: str, dim: int) -> "VectorIndex | None":
        """The saved index, or None when it is missing, unreadable or for another field/dimension."""
        import pyarrow.feather as feather

        folder = Path(folder)
        if not (folder / "meta.json").is_file():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("format") != FORMAT or meta.get("field") != field or meta.get("dim") != dim:
                return None
            index = _faiss().read_index(str(folder / "ivf.faiss"))
            rows = feather.read_table(str(folder / "rows.arrow"))
            assets = feather.read_table(str(folder / "assets.arrow")).to_pydict()
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            log.warning("vector index in %s unreadable (%s); it will be rebuilt", folder, e)
            return None
        if index.ntotal != meta.get("size"):
            return None
        return cls(field, dim, meta["params"], index,
                   rows.column("unit_id").to_numpy(zero_copy_only=False).astype(object),
                   rows.column("asset_id").to_numpy(zero_copy_only=False).astype(object),
                   rows.column("alive").to_numpy(zero_copy_only=False).astype(bool),
                   dict(zip(assets["asset_id"], assets["hash"])), int(meta["version"]), int(meta["trained_rows"]))

    def describe(self) -> dict[str, Any]:
        return _describe(self.params, self.size, self.version)


def _describe(params: dict[str, Any], rows: int, version: int) -> dict[str, Any]:
    return {"type": f"IVF{params['nlist']},SQ{params['quantizer']}", "rows": rows, "nprobe": params["nprobe"],
            "store_version": version}


def saved_description(folder: Path) -> dict[str, Any] | None:
    """`describe()` of the index saved in `folder`, plus its field, from its meta.json alone (None if absent)."""
    try:
        m = json.loads((Path(folder) / "meta.json").read_text())
        return {"field": m["field"], **_describe(m["params"], m["size"], m["version"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ann_params(n_rows: int, dim: int, quantizer: str = "fp16") -> dict[str, Any]:
    """IVF-SQ settings for `n_rows` vectors of `dim` dimensions.

    Measured with faiss 1.15 on 1M x 512-d clustered unit vectors (the generator of bench/bench_scale.py), one
    query at a time, 2 cores, quiet machine; 4096 lists trained in ~80 s:
    - fp16 codes (1 GB at 1M x 512): add 66 s; 0.9 / 1.3 / 1.6 / 2.0 ms at nprobe 8 / 16 / 32 / 64,
      recall@10 0.9995 at all four;
    - sq8 codes (512 MB): add 32 s; 0.6 / 0.9 / 1.3 / 1.9 ms, recall@10 0.9675 at all four: the 8-bit codes,
      not the probes, cap the recall there. fp16 is the default; sq8 halves the memory.
    Chosen: ~4 sqrt(n) lists (4000 at 1M) trained on 40 rows a list (faiss asks for >= 39); nprobe nlist/64,
    at least 32 (1.6% of the rows scanned at 1M): margin for real embeddings, less clustered than these.
    """
    if n_rows < 1 or dim < 1:
        raise ValueError(f"need n_rows >= 1 and dim >= 1, got n_rows={n_rows}, dim={dim}")
    if quantizer not in QUANTIZERS:
        from ..errors import ConfigError

        raise ConfigError(f"unknown ann_quantizer {quantizer!r}; choose from {', '.join(QUANTIZERS)}")
    nlist = int(min(16_384, max(16, round(4 * np.sqrt(n_rows)))))
    return {"nlist": nlist, "nprobe": int(min(nlist, max(32, nlist // 64))), "quantizer": quantizer,
            "train_rows": int(min(n_rows, 40 * nlist))}


QUANTIZERS = ("fp16", "sq8")


def _qtype(name: str):
    sq = _faiss().ScalarQuantizer
    return {"sq8": sq.QT_8bit, "fp16": sq.QT_fp16}[name]
