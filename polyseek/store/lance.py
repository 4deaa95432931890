"""LanceDB store: embedded tables `units`, `assets` and `failures` in `<index>/lance`.

Atomicity: a batch of assets is written in one commit on `units`: an append when none of its assets has
units yet, else a `merge_insert` that inserts the new units and deletes the assets' old ones in the same
commit, so a file's units appear together or not at all.
The `assets` row (content hash, thumbnail) is committed after its units; if the process dies between
the two commits the file has no asset row, so the next run re-extracts it and the merge replaces its
units by id: no duplicates, nothing committed earlier lost.

Removal runs the other way round (asset rows first, then units), so at every commit boundary an asset row
means its units are there: a file the index says is done is always searchable. The ids being removed are
journalled in `removing.json` first; a kill between the two deletes leaves units without an asset row, which
the next writer deletes from the journal (`finish_removal`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from .base import EncodedAsset, Store
from .fsio import fault_point
from ..types import Filters
from .sql import _sql_str, filters_to_sql, sql_in

log = logging.getLogger(__name__)

UNIT_COLUMNS = ["id", "asset_id", "kind", "text", "page", "bbox", "t0", "t1", "char_start", "char_end",
                "meta", "asset_type", "path", "created"]


def _and(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return " AND ".join(f"({p})" for p in kept) if kept else None


def _naive_utc(d: _dt.datetime | None) -> _dt.datetime | None:
    if d is None:
        return None
    if d.tzinfo is not None:
        d = d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return d


class LanceStore(Store):
    """Units with vectors and text, assets with thumbnails, and per-file failures, in LanceDB."""

    def __init__(self, folder: Path, dims: dict[str, int]):
        import lancedb

        self.folder = Path(folder)
        self.dims = dict(dims)  # vector field name -> dimension, e.g. {"vec_text": 384}
        self.db = lancedb.connect(str(self.folder))
        self.units = self._open_or_create("units", self._units_schema())
        self.assets = self._open_or_create("assets", self._assets_schema())
        self.failures = self._open_or_create("failures", self._failures_schema())
        missing = [f for f in self.dims if f not in self.units.schema.names]
        if missing:
            from ..errors import IndexMismatchError

            raise IndexMismatchError(f"index has no vector column(s) {missing}; rebuild it with the new encoders")

    # -- schema ---------------------------------------------------------------------------------
    def _units_schema(self) -> pa.Schema:
        fields = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("asset_id", pa.string(), nullable=False),
            pa.field("kind", pa.string()),
            pa.field("text", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("bbox", pa.list_(pa.float32())),
            pa.field("t0", pa.float64()),
            pa.field("t1", pa.float64()),
            pa.field("char_start", pa.int64()),
            pa.field("char_end", pa.int64()),
            pa.field("meta", pa.string()),
            pa.field("asset_type", pa.string()),
            pa.field("path", pa.string()),
            pa.field("created", pa.timestamp("us")),
        ]
        for name, dim in self.dims.items():
            fields.append(pa.field(name, pa.list_(pa.float32(), dim)))
        return pa.schema(fields)

    @staticmethod
    def _assets_schema() -> pa.Schema:
        return pa.schema([
            pa.field("id", pa.string(), nullable=False),
            pa.field("path", pa.string()),
            pa.field("source", pa.string()),
            pa.field("type", pa.string()),
            pa.field("hash", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("mtime", pa.float64()),
            pa.field("created", pa.timestamp("us")),
            pa.field("title", pa.string()),
            pa.field("meta", pa.string()),
            pa.field("thumbnail", pa.binary()),
            pa.field("n_units", pa.int32()),
            pa.field("indexed_at", pa.timestamp("us")),
        ])

    @staticmethod
    def _failures_schema() -> pa.Schema:
        return pa.schema([
            pa.field("path", pa.string(), nullable=False),
            pa.field("reason", pa.string()),
            pa.field("at", pa.timestamp("us")),
        ])

    def _open_or_create(self, name: str, schema: pa.Schema):
        if name in self.db.list_tables().tables:
            return self.db.open_table(name)
        try:
            return self.db.create_table(name, schema=schema)
        except ValueError:  # created by a concurrent writer a moment ago
            return self.db.open_table(name)

    # -- writes ---------------------------------------------------------------------------------
    def write(self, batch: Sequence[EncodedAsset]) -> None:
        if not batch:
            return
        now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        cols: dict[str, list[Any]] = {c: [] for c in UNIT_COLUMNS}
        vecs: dict[str, list[np.ndarray]] = {f: [] for f in self.dims}
        for ea in batch:
            a = ea.asset
            created = _naive_utc(a.created)
            for u in ea.units:
                cols["id"].append(u.id)
                cols["asset_id"].append(a.id)
                cols["kind"].append(u.kind)
                cols["text"].append(u.text or "")
                cols["page"].append(u.page)
                cols["bbox"].append(list(map(float, u.bbox)) if u.bbox is not None else None)
                cols["t0"].append(u.time[0] if u.time else None)
                cols["t1"].append(u.time[1] if u.time else None)
                cols["char_start"].append(u.char_start)
                cols["char_end"].append(u.char_end)
                cols["meta"].append(json.dumps(u.meta, default=str) if u.meta else "")
                cols["asset_type"].append(a.type)
                cols["path"].append(a.path)
                cols["created"].append(created)
            for f, dim in self.dims.items():
                v = ea.vectors.get(f)
                if v is None:
                    v = np.zeros((len(ea.units), dim), dtype=np.float32)
                vecs[f].append(np.asarray(v, dtype=np.float32).reshape(len(ea.units), dim))
        schema = self.units.schema
        arrays = [pa.array(cols[c], type=schema.field(c).type) for c in UNIT_COLUMNS]
        for f, dim in self.dims.items():
            flat = np.concatenate(vecs[f]) if vecs[f] else np.zeros((0, dim), np.float32)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), pa.float32()), dim))
        table = pa.Table.from_arrays(arrays, schema=pa.schema([schema.field(c) for c in UNIT_COLUMNS + list(self.dims)]))
        ids = [ea.asset.id for ea in batch]
        fault_point("store.units", self.folder)
        if not self._any_units_of(ids):
            # Only new assets (the common case of a bulk run): one append. The merge with delete below joins against
            # the whole table: 3.4 s a batch at 1M units, against ~0 for the append (pylance 14).
            self.units.add(table)
        else:
            (self.units.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
             .when_not_matched_by_source_delete(sql_in("asset_id", ids)).execute(table))
        # Asset rows last: their presence (with the content hash) marks the file as done.
        arows = {
            "id": ids,
            "path": [ea.asset.path for ea in batch],
            "source": [ea.asset.source or ea.asset.path for ea in batch],
            "type": [ea.asset.type for ea in batch],
            "hash": [ea.asset.hash for ea in batch],
            "size": [int(ea.asset.size) for ea in batch],
            "mtime": [float(ea.asset.mtime) for ea in batch],
            "created": [_naive_utc(ea.asset.created) for ea in batch],
            "title": [ea.asset.title or "" for ea in batch],
            "meta": [json.dumps(ea.asset.meta, default=str) for ea in batch],
            "thumbnail": [ea.asset.thumbnail for ea in batch],
            "n_units": [len(ea.units) for ea in batch],
            "indexed_at": [now] * len(batch),
        }
        atable = pa.table(arows, schema=self._assets_schema())
        fault_point("store.assets", self.folder)
        self.assets.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(atable)

    def _any_units_of(self, asset_ids: Sequence[str]) -> bool:
        """Whether any of `asset_ids` has units in the store (uses the asset_id index)."""
        return bool(self.units.count_rows(sql_in("asset_id", asset_ids)))

    def delete_assets(self, asset_ids: Sequence[str]) -> int:
        """Delete assets and their units: journal, asset rows, units, journal gone (see the module docstring)."""
        ids = list(asset_ids)
        if not ids:
            return 0
        journal = self.folder / "removing.json"
        tmp = self.folder / f".removing.{os.getpid()}.tmp"
        paths = self.pending_removal()
        for i in range(0, len(ids), 500):
            t = self.assets.search().where(sql_in("id", ids[i:i + 500])).select(["id", "path"]).limit(None).to_arrow()
            paths.update(zip(t.column("id").to_pylist(), t.column("path").to_pylist()))
        paths.update({a: paths.get(a) for a in ids})
        fault_point("store.journal", self.folder)
        tmp.write_text(json.dumps(paths))
        os.replace(tmp, journal)
        for i in range(0, len(ids), 500):
            self.assets.delete(sql_in("id", ids[i:i + 500]))
        fault_point("store.between_deletes", self.folder)
        for i in range(0, len(ids), 500):
            self.units.delete(sql_in("asset_id", ids[i:i + 500]))
        journal.unlink()
        return len(ids)

    def pending_removal(self) -> dict[str, str | None]:
        """Asset id -> path of a removal that a killed or failed process left unfinished (empty when none)."""
        try:
            d = json.loads((self.folder / "removing.json").read_text())
        except FileNotFoundError:
            return {}
        except ValueError:  # a torn journal: os.replace makes this unlikely; the ids are lost, not the index
            return {}
        return dict(d) if isinstance(d, dict) else dict.fromkeys(d)

    def finish_removal(self) -> dict[str, str | None]:
        """Complete an interrupted removal (call with the writer lock held); asset id -> path of what it removed."""
        done = self.pending_removal()
        if done:
            self.delete_assets(list(done))
        elif (self.folder / "removing.json").exists():
            (self.folder / "removing.json").unlink()
        return done

    def assets_without_units(self) -> set[str]:
        """Asset ids whose row says they have units that the store does not hold (left by an older version's
        interrupted removal): the next index run re-extracts them instead of skipping them as unchanged."""
        import pyarrow.compute as pc

        if not self.assets.count_rows():
            return set()
        a = self.assets.to_lance().to_table(columns=["id", "n_units"], filter="n_units > 0")
        have = pc.unique(self.units.to_lance().to_table(columns=["asset_id"]).column("asset_id")).to_pylist()
        return set(a.column("id").to_pylist()) - set(have)

    def discard_partial(self) -> None:
        """Delete data files that no committed version references (a commit that failed half-way, e.g. on a
        full disk). Versions are kept as `optimize` keeps them (7 days)."""
        for t in (self.units, self.assets, self.failures):
            t.to_lance().cleanup_old_versions(older_than=_dt.timedelta(days=7), delete_unverified=True)

    def record_failures(self, failures: Sequence[tuple[str, str]]) -> None:
        if not failures:
            return
        now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        t = pa.table({"path": [p for p, _ in failures], "reason": [r for _, r in failures],
                      "at": [now] * len(failures)}, schema=self._failures_schema())
        self.failures.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(t)

    def clear_failures(self, paths: Sequence[str]) -> None:
        for i in range(0, len(paths), 500):
            self.failures.delete(sql_in("path", paths[i:i + 500]))

    # -- reads ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """See commits made by other processes since this store was opened."""
        for t in (self.units, self.assets, self.failures):
            t.checkout_latest()

    @property
    def version(self) -> int:
        return int(self.units.version)

    def count_units(self, *, path: str | None = None) -> int:
        """Units in the store (of the assets at `path`: a file, or a records file)."""
        return int(self.units.count_rows(f"path = {_sql_str(path)}")) if path else int(self.units.count_rows())

    def asset_index(self, *, types: Sequence[str] | None = None, exclude_types: Sequence[str] | None = None,
                    paths: Sequence[str] | None = None, source: str | None = None) -> dict[str, dict[str, Any]]:
        """id -> {path, source, type, hash, size, mtime} for bookkeeping (no thumbnails), optionally only the
        assets of some types, not of others, at some paths, or from one source file."""
        cols = ["id", "path", "source", "type", "hash", "size", "mtime"]
        q = self.assets.search().select(cols)
        where = _and(sql_in("type", types) if types is not None else None,
                     f"NOT ({sql_in('type', exclude_types)})" if exclude_types else None,
                     sql_in("path", paths) if paths is not None else None,
                     f"source = {_sql_str(source)}" if source is not None else None)
        if where:
            q = q.where(where)
        t = q.limit(None).to_arrow() if self.assets.count_rows() else None
        if t is None:
            return {}
        d = t.to_pydict()
        return {d["id"][i]: {c: d[c][i] for c in cols[1:]} for i in range(t.num_rows)}

    def get_asset(self, asset_id: str) -> dict[str, Any] | None:
        t = self.assets.search().where(f"id = {_sql_str(asset_id)}").limit(1).to_arrow()
        if t.num_rows == 0:
            return None
        row = {c: t.column(c)[0].as_py() for c in t.column_names}
        row["meta"] = json.loads(row["meta"]) if row.get("meta") else {}
        return row

    def get_units(self, unit_ids: Sequence[str], columns: Sequence[str] = UNIT_COLUMNS) -> dict[str, dict]:
        if not unit_ids:
            return {}
        t = self.units.search().where(sql_in("id", unit_ids)).select(list(columns)).limit(None).to_arrow()
        d = t.to_pydict()
        return {d["id"][i]: {c: d[c][i] for c in columns} for i in range(t.num_rows)}

    def pinned_rows(self, unit_ids_in_order) -> "PinnedRows":
        """A by-offset reader of unit rows in the store as it is now, given the unit ids in scan order at some
        version (an array, or a pandas Index such as `KeywordIndex.id_index()`). Exact when that version is now;
        after appends (a bulk run) the old offsets still hold; rows that moved (deletes, compaction) are noticed
        and read by id."""
        return PinnedRows(self, self.units.to_lance(), unit_ids_in_order)

    def units_of_asset(self, asset_id: str, columns: Sequence[str] = UNIT_COLUMNS) -> list[dict]:
        t = self.units.search().where(f"asset_id = {_sql_str(asset_id)}").select(list(columns)).limit(None).to_arrow()
        return t.to_pylist()

    def scan_units(self, columns: Sequence[str], *, kinds: Sequence[str] | None = None,
                   asset_ids: Sequence[str] | None = None, filters: Filters | None = None,
                   limit: int | None = None) -> pa.Table:
        """The given columns of every unit (only those of some kinds, of some assets, or passing search filters;
        at most `limit` of them)."""
        where = _and(sql_in("kind", kinds) if kinds is not None else None,
                     sql_in("asset_id", asset_ids) if asset_ids is not None else None, filters_to_sql(filters))
        q = self.units.search().select(list(columns))
        if where:
            q = q.where(where)
        return q.limit(limit).to_arrow() if self.units.count_rows() else pa.table({c: [] for c in columns})

    def units_of_assets(self, asset_ids: Sequence[str], columns: Sequence[str]) -> pa.Table:
        """The given columns of the units of these assets, in scan order: one pass over the id columns and a
        `take` of the matching rows (cheaper than an IN filter per thousand ids when many assets are asked)."""
        import pyarrow.compute as pc

        ds = self.units.to_lance()
        if not asset_ids or not ds.count_rows():
            return pa.table({c: pa.array([], self.units.schema.field(c).type) for c in columns})
        aids = ds.to_table(columns=["asset_id"]).column("asset_id")
        hit = pc.is_in(aids, value_set=pa.array(list(asset_ids), pa.string())).fill_null(False)
        rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        return ds.take(rows.tolist(), columns=list(columns))

    def unit_ids_matching(self, filters: Filters | None) -> np.ndarray | None:
        """The ids of the units that pass `filters` (None when there are no filters: every unit passes)."""
        if filters is None or filters.is_empty():
            return None
        return self.scan_units(["id"], filters=filters).column("id").to_numpy(zero_copy_only=False)

    def unit_kinds(self) -> dict[str, int]:
        """unit kind -> how many units of that kind (the router reads what an index holds)."""
        if not self.count_units():
            return {}
        t = self.scan_units(["kind"])
        vals, counts = np.unique(t.column("kind").to_numpy(zero_copy_only=False).astype(str), return_counts=True)
        return {str(k): int(c) for k, c in zip(vals, counts)}

    def thumbnails(self, asset_ids: Sequence[str], chunk: int = 256) -> dict[str, bytes]:
        """asset id -> stored thumbnail (JPEG bytes), for the assets that have one."""
        out: dict[str, bytes] = {}
        ids = list(asset_ids)
        for s in range(0, len(ids), chunk):
            t = (self.assets.search().where(sql_in("id", ids[s:s + chunk])).select(["id", "thumbnail"])
                 .limit(None).to_arrow())
            out.update({a: b for a, b in zip(t.column("id").to_pylist(), t.column("thumbnail").to_pylist()) if b})
        return out

    def failures_list(self) -> list[tuple[str, str, Any]]:
        if not self.failures.count_rows():
            return []
        t = self.failures.to_arrow().to_pydict()
        return sorted(zip(t["path"], t["reason"], t["at"]))

    def asset_hashes(self) -> dict[str, str | None]:
        """asset id -> content hash, for every committed asset (what derived indexes diff against)."""
        if not self.assets.count_rows():
            return {}
        t = self.assets.to_lance().to_table(columns=["id", "hash"])
        return dict(zip(t.column("id").to_pylist(), t.column("hash").to_pylist()))

    def sample_vectors(self, field: str, n: int, seed: int = 0) -> np.ndarray:
        """Up to `n` vectors of `field` from uniformly drawn rows (for training a quantiser)."""
        ds = self.units.to_lance()
        total = ds.count_rows()
        if total == 0:
            return np.zeros((0, self.dims[field]), np.float32)
        rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        col = ds.take(rows.tolist(), columns=[field]).column(field).combine_chunks()
        return col.flatten().to_numpy().reshape(len(col), self.dims[field])

    def iter_vectors(self, field: str, asset_ids: Sequence[str] | None = None, batch_size: int = 65_536):
        """(unit ids, asset ids, vectors) batches of `field`, for all units or those of `asset_ids`."""
        ds = self.units.to_lance()
        dim = self.dims[field]
        if asset_ids is None:
            filters: list[str | None] = [None]
        else:
            ids = list(asset_ids)
            filters = [sql_in("asset_id", ids[i:i + 1000]) for i in range(0, len(ids), 1000)]
        for flt in filters:
            for b in ds.to_batches(columns=["id", "asset_id", field], filter=flt, batch_size=batch_size):
                if not b.num_rows:
                    continue
                col = b.column(field)
                yield (b.column("id").to_numpy(zero_copy_only=False), b.column("asset_id").to_numpy(zero_copy_only=False),
                       col.flatten().to_numpy().reshape(len(col), dim))

    # -- maintenance ----------------------------------------------------------------------------
    def list_index_columns(self) -> set[str]:
        try:
            return {c for idx in self.units.list_indices() for c in idx.columns}
        except (AttributeError, RuntimeError):
            return set()

    def maintain(self) -> dict[str, Any]:
        """Compact small fragments and create the scalar indexes on ids (vector indexes are derived data kept
        beside the store: polyseek.retrieve.vector_index)."""
        done: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            self.units.optimize()
            self.assets.optimize()
        except (RuntimeError, OSError, ValueError) as e:  # compaction is an optimisation, never fatal
            log.warning("compaction skipped: %s", e)
        existing = self.list_index_columns()
        n = self.units.count_rows()
        for col in ("id", "asset_id"):
            if col not in existing and n:
                from lancedb.index import BTree

                self.units.create_index(col, config=BTree(), replace=True)
        done["seconds"] = time.perf_counter() - t0
        return done


class PinnedRows:
    """Display rows of units by row offset (`take`) in a dataset pinned at one version: ~3 ms for ten rows at 1M
    units where `id IN (...)` costs ~12-20 ms. Rows whose id is not the one asked for fall back to the SQL lookup.

    Low-cardinality columns (kind, asset_type, path: one value across a whole records index) are held in memory as
    dictionary codes (4 bytes a row), and columns null in every row are not read: Lance reads a constant column
    at ~0.5 ms a row at random (measured at 1M rows, lance 0.40 / pylance 14)."""

    MEMO = ("kind", "asset_type", "path")
    NULLABLE = ("page", "bbox", "t0", "t1")  # not read at all when null in every row (records, plain text)

    def __init__(self, store: LanceStore, ds, unit_ids_in_order):
        import pandas as pd
        import pyarrow.compute as pc

        self.store = store
        self.ds = ds
        pos = unit_ids_in_order if isinstance(unit_ids_in_order, pd.Index) else \
            pd.Index(np.asarray(unit_ids_in_order, dtype=object))
        self.pos = pos if pos.is_unique else None  # repeated ids: every row is read by id
        self.memo: dict[str, tuple[np.ndarray, list]] = {}
        self.n_rows = n = ds.count_rows()
        if n and self.pos is not None:
            t = ds.to_table(columns=list(self.MEMO + self.NULLABLE))
            for c in self.MEMO:
                d = pc.dictionary_encode(t.column(c)).combine_chunks()
                if len(d.dictionary) <= max(256, n // 16):
                    codes = d.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                    self.memo[c] = (codes, d.dictionary.to_pylist())
            for c in self.NULLABLE:
                if t.column(c).null_count == n:
                    self.memo[c] = (np.broadcast_to(np.int32(-1), (n,)), [])  # all null: no codes stored

    def __call__(self, unit_ids: Sequence[str], columns: Sequence[str] = UNIT_COLUMNS) -> dict[str, dict]:
        if not unit_ids:
            return {}
        out: dict[str, dict] = {}
        p = self.pos.get_indexer(list(unit_ids)) if self.pos is not None else np.zeros(0, np.int64)
        want = sorted(int(i) for i in p[(p >= 0) & (p < self.n_rows)])
        if want:
            cols = list(dict.fromkeys(["id", *(c for c in columns if c not in self.memo)]))
            d = self.ds.take(want, columns=cols).to_pydict()
            for i, off in enumerate(want):
                row = {}
                for c in columns:
                    if c in self.memo:
                        code = int(self.memo[c][0][off])
                        row[c] = self.memo[c][1][code] if code >= 0 else None
                    else:
                        row[c] = d[c][i]
                out[d["id"][i]] = row
        missing = [u for u in unit_ids if u not in out]
        if missing:
            out.update(self.store.get_units(missing, columns))
        return out
