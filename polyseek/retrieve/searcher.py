"""Builds the query pipeline (pipeline.Searcher) for an index folder and keeps it current.

A `SearcherCache` hands out one Searcher per store version: it sees commits of other processes (an index run
beside a server) at most a second late, loads the keyword and vector indexes the writer saved (or searches
exactly), and builds every registered signal the index can offer.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..store.derived import READER_REBUILD_MAX_UNITS
from . import dense, instance_signal, keyword  # noqa: F401  (register the built-in signals)
from .base import SignalContext, signals
from .dense import VectorMatrix
from .hydrate import DISPLAY_COLUMNS
from .pipeline import Searcher

DISPLAY_CACHE_ROWS = 50_000  # units whose display columns are held in memory by a searcher
REFRESH_SECONDS = 1.0  # how stale a searcher may be about other processes' commits


class SearcherCache:
    def __init__(self, folder):
        self.folder = folder
        self._lock = threading.RLock()
        self._searcher: Searcher | None = None
        self._version = -1
        self._store_version = -1
        self._last_refresh = 0.0

    def invalidate(self) -> None:
        """The next `get` re-reads the store (after this process wrote to it, or to see another's commits)."""
        with self._lock:
            self._last_refresh = 0.0
            self._searcher = None

    def fresh(self) -> int:
        """See other processes' commits (an index run beside a server), at most once per REFRESH_SECONDS; the
        store version now seen. Asset reads call this too, so they do not wait for a search."""
        store = self.folder.store
        with self._lock:
            now = time.monotonic()
            if now - self._last_refresh > REFRESH_SECONDS:
                store.refresh()
                self._last_refresh = now
                self._store_version = store.version  # reading it costs a round trip: once per refresh
            return self._store_version

    def get(self) -> Searcher:
        with self._lock:
            ver = self.fresh()
            if self._searcher is not None and self._version == ver:
                return self._searcher
            self._searcher = self._build(ver)
            self._version = ver
            return self._searcher

    def _build(self, ver: int) -> Searcher:
        folder, store, config = self.folder, self.folder.store, self.folder.config
        n = store.count_units()
        kw = folder.derived.keyword_index(ver, stale_ok=n > READER_REBUILD_MAX_UNITS)  # only writers save
        fields = list(store.dims)
        matrices = {}
        if n >= config.ann_min_rows:
            matrices = {f: folder.derived.vector_index(f, ver) for f in fields}
        exact = [f for f in fields if matrices.get(f) is None]
        cache_display = n < config.ann_min_rows and n <= DISPLAY_CACHE_ROWS
        display: list[dict] = []
        if exact:
            # One scan feeds the exact-search matrices and, when small enough, the display cache.
            extra = [c for c in DISPLAY_COLUMNS if c not in ("id", "asset_id")] if cache_display else []
            t = store.scan_units(["id", "asset_id"] + extra + exact)
            if cache_display:
                display = t.select(DISPLAY_COLUMNS).to_pylist()
            uids = t.column("id").to_numpy(zero_copy_only=False)
            aids = t.column("asset_id").to_numpy(zero_copy_only=False)
            for f in exact:
                col = t.column(f).combine_chunks()
                mat = col.flatten().to_numpy().reshape(len(col), store.dims[f]) if len(col) else \
                    np.zeros((0, store.dims[f]), np.float32)
                matrices[f] = VectorMatrix(uids, aids, mat, ver)
            del t
        ctx = SignalContext(folder=folder, version=ver, keyword=kw, matrices=matrices)
        order = [config.keyword, "dense", "visual", "instance"]  # the keyword signal first, then by modality
        names = order + [s for s in signals.names() if s not in order and s != "bm25"]
        retrievers = {}
        for name in names:
            r = signals.get(name)(ctx)
            if r is not None:
                retrievers[r.name] = r
        if cache_display:
            # Small index: keep display columns in memory; a store lookup per query costs ~7 ms.
            cache = {r["id"]: r for r in display}

            def lookup(ids, columns=None):
                return {u: cache[u] for u in ids if u in cache}
        else:
            lookup = store.pinned_rows(kw.id_index())  # rows by offset: the keyword index's scan order
        searcher = Searcher(retrievers, store, lookup, kw.stemmer)
        searcher.kinds = store.unit_kinds()
        return searcher
