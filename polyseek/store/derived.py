"""Upkeep of the indexes derived from the store: keyword (`keyword/`), ANN (`vectors/<field>/`) and local features
(`instance/`). Writers bring them up to the store's version and save them; readers load what the writer saved.

Each is stamped with (or synced by) the store version or asset hashes it reflects, so a stale one is noticed and
rebuilt, never trusted.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

READER_REBUILD_MAX_UNITS = 20_000  # a reader rebuilds a stale keyword index itself only up to this size


class DerivedIndexes:
    """The derived indexes of one index folder, cached in memory between store versions."""

    def __init__(self, path: Path, store, config):
        self.path = Path(path)
        self.store = store
        self.config = config
        self._kw = None  # the KeywordIndex last loaded or built
        self._vindex: dict[str, Any] = {}  # vector field -> VectorIndex kept between store versions
        self._instance = None

    # -- writer upkeep ----------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Bring the keyword index and the vector indexes (on disk) up to the store's version (writers only)."""
        from .fsio import fault_point

        ver = self.store.version
        fault_point("keyword.save", self.path / "keyword")
        self.keyword_index(ver, force=force, save=True)
        large = self.store.count_units() >= self.config.ann_min_rows
        for field in self.store.dims:
            if large:
                fault_point("vectors.save", self.path / "vectors")
                self.vector_index(field, ver, save=True)
            else:  # shrank below the threshold (or never reached it): exact search, no stale index left
                self._vindex.pop(field, None)
                shutil.rmtree(self.path / "vectors" / field, ignore_errors=True)

    # -- keyword ----------------------------------------------------------------------------------
    def keyword_index(self, ver: int, *, force: bool = False, save: bool = False, stale_ok: bool = False):
        """The BM25 index for store version `ver`: the one in memory or on disk when it matches, else that one
        synced with the store by asset hash (one new segment; keyword.py), else built from the store. `force`
        syncs even when the version matches (after this process wrote to the store).

        With `stale_ok` (a reader of a large index, > READER_REBUILD_MAX_UNITS units) a stale one is not synced:
        during an index run beside a server the store's version moves with every batch. It keeps the last index
        the writer saved, which the writer replaces at the end of its run; units deleted since are skipped at
        display, new ones are found by the dense signals."""
        from .keyword import KeywordIndex

        folder = self.path / "keyword"
        cached = self._kw
        if not force and not save and cached is not None and cached.version == ver:
            return cached
        saved = KeywordIndex.saved_version(folder)
        if stale_ok and cached is not None and saved == cached.version:
            return cached  # still the newest the writer saved
        kw = cached
        if kw is None or (saved is not None and saved != kw.version):  # another process saved a newer one
            kw = KeywordIndex.load(folder) or kw
        changed = False
        if kw is not None and kw.version != ver and stale_ok:
            log.info("keyword index is at store version %d, the store at %d: serving it until the writer saves",
                     kw.version, ver)
        elif kw is None:
            kw, changed = KeywordIndex.from_store(self.store, ver), True
        elif kw.version != ver or force:
            kw, changed = kw.sync(self.store, ver), True
        if save and (changed or saved != kw.version):
            kw.save(folder)
        self._kw = kw
        return kw

    # -- ANN --------------------------------------------------------------------------------------
    def vector_index(self, field: str, ver: int, *, save: bool = False):
        """The ANN index of `field` for store version `ver`: the one in memory or on disk, synced by asset hash.
        The writer (`save`) builds one when there is none, may retrain, and saves the result. A reader (a server
        beside an index run that has just crossed `ann_min_rows`) gets None when none was saved yet, and searches
        exactly meanwhile: building one would hold every query for minutes at 1M rows."""
        from .vector_index import VectorIndex

        folder = self.path / "vectors" / field
        vi = self._vindex.get(field)
        if vi is None or save:
            vi = VectorIndex.load(folder, field, self.store.dims[field]) or vi
        if vi is None:
            if not save:
                return None
            vi = VectorIndex.build(self.store, field, ver, self.config.ann_quantizer)
        else:
            vi = vi.sync(self.store, ver, allow_rebuild=save)
        self._vindex[field] = vi
        if save:
            vi.save(folder)
        return vi

    def vector_index_info(self) -> dict[str, Any]:
        """field -> description of its saved ANN index (empty below ann_min_rows)."""
        from .vector_index import saved_description

        out = {}
        for folder in sorted((self.path / "vectors").glob("*")):
            d = saved_description(folder)
            if d is not None:
                out[d.pop("field")] = d
        return out

    # -- local features ---------------------------------------------------------------------------
    def instance_index(self, *, reopen: bool = False):
        """The local-feature index (`instance/`), opened on first use. `reopen`: read what another process (an
        index run beside a server) committed since."""
        if self._instance is None or reopen:
            from .instance import InstanceIndex

            self._instance = InstanceIndex.open(self.path / "instance")
        return self._instance

    def drop_features(self, asset_ids: Iterable[str]) -> int:
        """Remove (uncommitted) the local features of these assets' units; how many were removed."""
        ids = set(asset_ids)
        ii = self.instance_index()
        return ii.remove([u for u in ii.unit_ids() if asset_of(u) in ids])

    def assets_missing_features(self, kinds: Iterable[str]) -> set[str]:
        """Assets whose units of `kinds` have no local features (instance search switched on later, or features
        lost to a crash): the next index run re-extracts them."""
        if not self.config.instance or not self.store.count_units():
            return set()
        have = self.instance_index().unit_ids()
        t = self.store.scan_units(["id", "asset_id"], kinds=list(kinds))
        return {a for u, a in zip(t.column("id").to_pylist(), t.column("asset_id").to_pylist()) if u not in have}


def asset_of(unit_id: str) -> str:
    """The asset id of a unit id (`<asset>#<unit>`)."""
    return unit_id.rsplit("#", 1)[0]
