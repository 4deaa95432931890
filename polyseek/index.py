"""`polyseek.open(path)` → Index: the embedded engine over one folder on disk.

Folder layout: `polyseek.json` (config, encoders, sources), `lance/` (the store), `keyword/` (the BM25
index, derived from the store and rebuilt when stale), `vectors/<field>/` (ANN indexes, derived, synced by
asset hash; only at `ann_min_rows` units and above), `instance/` (local features), `.lock` (held by writers).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .config import IndexConfig, SearchConfig
from .errors import ConfigError, IndexMismatchError, NotFoundError, PolyseekError, QueryError
from .indexer import IndexReport, add_files, add_records, check_paths, encode_images, encode_texts
from .store.base import EncodedAsset
from .store.lance import LanceStore, check_filters, filters_to_sql, sql_in
from .types import Extraction, Filters, Hit, Query

FORMAT = 1
DEFAULT_PATH = ".polyseek"
log = logging.getLogger(__name__)

READER_REBUILD_MAX_UNITS = 20_000  # a searcher rebuilds a stale keyword index itself only up to this size
DISPLAY_CACHE_ROWS = 50_000  # units whose display columns are held in memory by a searcher
INSTANCE_KINDS = ("image", "page", "figure")  # region tiles repeat their image's pixels: no own features


def open(path: str | os.PathLike = DEFAULT_PATH, config: IndexConfig | dict | None = None, *,
         create: bool = True) -> "Index":
    """Open (or create) the index at `path`. Without `config`, an existing index uses the one it was built with."""
    return Index(Path(path), config, create=create)


class Index:
    def __init__(self, path: Path, config: IndexConfig | dict | None = None, *, create: bool = True):
        self.path = Path(path).absolute()
        self._lock = threading.RLock()
        manifest_path = self.path / "polyseek.json"
        if isinstance(config, dict):
            config = IndexConfig.from_dict(config)
        if manifest_path.exists():
            try:
                self.manifest = json.loads(manifest_path.read_text())
            except ValueError as e:
                raise IndexMismatchError(f"{manifest_path} is not valid JSON ({e}); is this a Polyseek index?") from None
            stored = IndexConfig.from_dict(self.manifest["config"])
            if config is not None:
                for key in ("text_encoder", "visual_encoder"):
                    if getattr(config, key) != getattr(stored, key):
                        raise IndexMismatchError(
                            f"index {self.path} was built with {key}={getattr(stored, key)!r}, not "
                            f"{getattr(config, key)!r}; open it without that option, or index into a new folder")
                stored = IndexConfig.from_dict({**config.to_dict(), "text_encoder": stored.text_encoder,
                                                "visual_encoder": stored.visual_encoder})
            self.config = stored
        else:
            if not create:
                raise NotFoundError(f"no Polyseek index at {self.path}; create one with `polyseek index FOLDER --index {self.path}`")
            self.config = config or IndexConfig()
            self.manifest = {"format": FORMAT, "config": self.config.to_dict(), "encoders": {},
                             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), "sources": {}}
        self._encoders: dict[str, Any] = {}
        if not self.manifest.get("encoders"):
            self.path.mkdir(parents=True, exist_ok=True)
            self.manifest["encoders"] = self._describe_encoders()
            self.save_manifest()
        dims = {"vec_text": int(self.manifest["encoders"]["text"]["dim"])}
        if self.manifest["encoders"].get("visual"):
            dims["vec_visual"] = int(self.manifest["encoders"]["visual"]["dim"])
        self.store = LanceStore(self.path / "lance", dims)
        self._searcher = None
        self._searcher_version = -1
        self._last_refresh = 0.0
        self._instance = None
        self._vindex: dict[str, Any] = {}  # vector field -> VectorIndex kept between store versions
        self._kw = None  # the KeywordIndex last loaded or built
        self._wlock = threading.Lock()
        self._store_version = -1

    # -- encoders -------------------------------------------------------------------------------
    def _describe_encoders(self) -> dict[str, Any]:
        from .encode import describe

        out = {"text": describe(self.encoder("text"))}
        if self.config.visual_encoder:
            out["visual"] = describe(self.encoder("visual"))
        return out

    def encoder(self, role: str):
        """The text or visual encoder, loaded on first use (query-time BM25 never loads a model)."""
        if role not in self._encoders:
            from .encode import load_encoder

            spec = self.config.text_encoder if role == "text" else self.config.visual_encoder
            if spec is None:
                raise ConfigError("this index has no visual encoder; re-index with --visual clip:MODEL")
            enc = load_encoder(spec, device=self.config.device)
            stored = self.manifest.get("encoders", {}).get(role)
            if stored and (stored["spec"] != enc.spec or int(stored["dim"]) != enc.dim):
                raise IndexMismatchError(f"index was built with {role} encoder {stored['spec']} (dim {stored['dim']}), "
                                         f"but {enc.spec} (dim {enc.dim}) was loaded")
            self._encoders[role] = enc
        return self._encoders[role]

    def wants_pixels(self) -> bool:
        return bool(self.config.visual_encoder) or self.config.instance

    def instance_index(self):
        """The local-feature index (derived data in `<index>/instance`), opened on first use."""
        if self._instance is None:
            from .retrieve.instance import InstanceIndex

            self._instance = InstanceIndex.open(self.path / "instance")
        return self._instance

    def encode_extractions(self, pending: Sequence[Extraction]) -> list[EncodedAsset]:
        if self.config.visual_encoder and self.config.region_tiles:
            for ex in pending:
                ex.units.extend(region_tiles(ex))
        units = [u for ex in pending for u in ex.units]
        # A PDF page with text blocks gets the mean of its blocks' vectors instead of its own encoding: the
        # encoder truncates long inputs (MiniLM: 256 tokens), so the mean covers the whole page, and PDF
        # ingest encodes each character once instead of twice.
        pooled = pooled_pages(pending)
        vec_text = encode_texts(self.encoder("text"), [("" if id(u) in pooled else u.text) for u in units])
        if pooled:
            pos = {id(u): i for i, u in enumerate(units)}
            for page_id, block_ids in pooled.items():
                v = vec_text[[pos[b] for b in block_ids]].mean(axis=0)
                norm = float(np.linalg.norm(v))
                vec_text[pos[page_id]] = v / norm if norm > 0 else v
        vec_visual = None
        if self.config.visual_encoder:
            vec_visual = encode_images(self.encoder("visual"), [u.image for u in units])
        out, i = [], 0
        for ex in pending:
            n = len(ex.units)
            vecs = {"vec_text": vec_text[i:i + n]}
            if vec_visual is not None:
                vecs["vec_visual"] = vec_visual[i:i + n]
            local = self._local_features(ex) if self.config.instance else []
            for u in ex.units:
                u.image = None  # pixels are not stored
            out.append(EncodedAsset(ex.asset, ex.units, vecs, local))
            i += n
        return out

    def _local_features(self, ex: Extraction) -> list[tuple[str, Any]]:
        from .encode.local import FeatureError, extract_local_features

        out = []
        for u in ex.units:
            if u.image is None or u.kind not in INSTANCE_KINDS:
                continue
            try:
                feats = extract_local_features(u.image)
            except FeatureError as e:
                ex.warnings.append(f"no local features for {u.id}: {e}")
                continue
            u.meta["pixels"] = [int(u.image.width), int(u.image.height)]  # to map matched boxes back
            out.append((u.id, feats))
        return out

    def write_batch(self, batch: Sequence[EncodedAsset]) -> None:
        """Local features first, then the store: a kill in between leaves only feature entries whose units
        are not (yet) in the store, which search ignores and the next run overwrites."""
        if self.config.instance:
            ii = self.instance_index()
            self._drop_features({ea.asset.id for ea in batch})
            for ea in batch:
                for uid, feats in ea.local:
                    ii.add(uid, feats)
            ii.commit()
        self.store.write(batch)

    # -- writing --------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        tmp = self.path / f".polyseek.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str))
        os.replace(tmp, self.path / "polyseek.json")

    @contextmanager
    def _writer(self):
        """One writer per index folder at a time (an flock, released by the OS if the process dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PolyseekError(f"another process is writing to {self.path}; wait for it to finish") from None
            with self._wlock:  # searches on this object go on while it writes
                self.store.refresh()
                yield
        finally:
            os.close(fd)
            self._last_refresh = 0.0  # the next search sees what was written

    def after_delete(self, asset_ids: Sequence[str]) -> None:
        """Derived indexes forget deleted assets (the store rows are already gone)."""
        if self.config.instance and asset_ids and self._drop_features(set(asset_ids)):
            self.instance_index().commit()

    def _drop_features(self, asset_ids: set[str]) -> int:
        """Remove (uncommitted) the local features of these assets' units; how many were removed."""
        from .retrieve.instance_signal import asset_of

        ii = self.instance_index()
        return ii.remove([u for u in ii.unit_ids() if asset_of(u) in asset_ids])

    def assets_missing_features(self) -> set[str]:
        """Assets whose image/page/figure units have no local features (instance search switched on later,
        or features lost to a crash): the next index run re-extracts them."""
        if not self.config.instance or not self.store.count_units():
            return set()
        have = self.instance_index().unit_ids()
        t = self.store.scan_units(["id", "asset_id"], where=sql_in("kind", INSTANCE_KINDS))
        return {a for u, a in zip(t.column("id").to_pylist(), t.column("asset_id").to_pylist()) if u not in have}

    def add(self, paths: Iterable[str | os.PathLike], *, records: bool = False, id_field: str = "id",
            text_fields: Sequence[str] = ("text",), image_field: str | None = None, meta_fields: Sequence[str] = (),
            include: Sequence[str] = (), exclude: Sequence[str] = (), progress: bool = False,
            skip_duplicates: bool = False) -> IndexReport:
        """Index files and folders (or records files with `records=True`); incremental and crash-safe.
        With `skip_duplicates`, a new image that nearly duplicates an indexed one is reported, not indexed."""
        paths = check_paths(paths)
        report = IndexReport()
        t0 = time.perf_counter()
        with self._writer():
            before = self.store.version
            if records:
                add_records(self, paths, id_field=id_field, text_fields=tuple(text_fields), image_field=image_field,
                            meta_fields=tuple(meta_fields), progress=progress, report=report)
            else:
                add_files(self, paths, include=tuple(include), exclude=tuple(exclude), progress=progress,
                          skip_duplicates=skip_duplicates, report=report)
            if self.store.version != before:
                self.store.maintain()
            self._refresh_derived(force=self.store.version != before)
            self.save_manifest()
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, items: Iterable[str]) -> int:
        """Remove assets by id, by file path, or every asset under a folder path. Returns how many."""
        with self._writer():
            idx = self.store.asset_index()
            ids: set[str] = set()
            for it in items:
                if it in idx:
                    ids.add(it)
                    continue
                p = os.path.abspath(it)
                hits = [aid for aid, v in idx.items() if v["path"] == p or v["path"].startswith(p.rstrip(os.sep) + os.sep)
                        or v["source"] == p]
                if not hits:
                    raise NotFoundError(f"{it!r} is neither an asset id nor an indexed path")
                ids.update(hits)
            n = self.store.delete_assets(sorted(ids))
            srcs = self.manifest.get("sources", {})
            for s in [s for s in srcs if not self.store.count_units(f"path = '{s.replace(chr(39), chr(39) * 2)}'")]:
                srcs.pop(s)
            self.after_delete(sorted(ids))
            self._refresh_derived(force=True)
            self.save_manifest()
            return n

    # -- searching ------------------------------------------------------------------------------
    def _refresh_derived(self, force: bool = False) -> None:
        """Bring the keyword index and the vector indexes (on disk) up to the store's version."""
        ver = self.store.version
        self._keyword_index(ver, force=force, save=True)
        large = self.store.count_units() >= self.config.ann_min_rows
        for field in self.store.dims:
            if large:
                self._vector_index(field, ver, save=True)
            else:  # shrank below the threshold (or never reached it): exact search, no stale index left
                self._vindex.pop(field, None)
                shutil.rmtree(self.path / "vectors" / field, ignore_errors=True)
        self._searcher = None

    def _vector_index(self, field: str, ver: int, *, save: bool = False):
        """The ANN index of `field` for store version `ver`: the one in memory or on disk, synced by asset hash.
        The writer (`save`) builds one when there is none, may retrain, and saves the result. A reader (a server
        beside an index run that has just crossed `ann_min_rows`) gets None when none was saved yet, and searches
        exactly meanwhile: building one would hold every query for minutes at 1M rows."""
        from .retrieve.vector_index import VectorIndex

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
        from .retrieve.vector_index import saved_description

        out = {}
        for folder in sorted((self.path / "vectors").glob("*")):
            d = saved_description(folder)
            if d is not None:
                out[d.pop("field")] = d
        return out

    def _keyword_index(self, ver: int, *, force: bool = False, save: bool = False, stale_ok: bool = False):
        """The BM25 index for store version `ver`: loaded from `keyword/` when it matches, else rebuilt.

        With `stale_ok` (a searcher of a large index, > READER_REBUILD_MAX_UNITS units) a stale one is not rebuilt:
        during an index run beside a server the store's version moves with every batch, and a rebuild (65 s at
        1M units) would hold every query. It keeps the last index the writer saved, which the writer replaces at
        the end of its run; units deleted since are skipped at display, new ones are found by the dense signals."""
        from .retrieve.keyword import KeywordIndex

        folder = self.path / "keyword"
        cached = self._kw
        if not force and not save and cached is not None and cached.version == ver:
            return cached
        if stale_ok and cached is not None and KeywordIndex.saved_version(folder) == cached.version:
            return cached  # still the newest the writer saved
        kw = None if force else KeywordIndex.load(folder)
        if kw is not None and kw.version != ver and stale_ok:
            log.info("keyword index is at store version %d, the store at %d: serving it until the writer saves",
                     kw.version, ver)
        elif kw is None or kw.version != ver:
            t = self.store.scan_units(["id", "asset_id", "text"])
            kw = KeywordIndex.build(t.column("id").to_numpy(zero_copy_only=False),
                                    t.column("asset_id").to_numpy(zero_copy_only=False),
                                    t.column("text").to_pylist(), ver)
        if save and KeywordIndex.saved_version(folder) != kw.version:
            kw.save(folder)
        self._kw = kw
        return kw

    def searcher(self):
        from .retrieve.dense import DenseRetriever, VectorMatrix
        from .retrieve.keyword import BM25Retriever, TermStemmer
        from .retrieve.search import DISPLAY_COLUMNS
        from .retrieve.search import Searcher

        with self._lock:
            now = time.monotonic()
            if now - self._last_refresh > 1.0:  # see commits of other processes (an index run beside a server)
                self.store.refresh()
                self._last_refresh = now
                self._store_version = self.store.version  # reading it costs a round trip: once per refresh
            ver = self._store_version
            if self._searcher is not None and self._searcher_version == ver:
                return self._searcher
            n = self.store.count_units()
            kw = self._keyword_index(ver, stale_ok=n > READER_REBUILD_MAX_UNITS)  # only writers save
            retrievers: dict[str, Any] = {"bm25": BM25Retriever(kw)}
            fields = ["vec_text"] + (["vec_visual"] if "vec_visual" in self.store.dims else [])
            matrices: dict[str, Any] = {}
            if n >= self.config.ann_min_rows:
                matrices = {f: self._vector_index(f, ver) for f in fields}
            exact = [f for f in fields if matrices.get(f) is None]
            cache_display = n < self.config.ann_min_rows and n <= DISPLAY_CACHE_ROWS
            display: list[dict] = []
            if exact:
                # One scan feeds the exact-search matrices and, when small enough, the display cache.
                extra = [c for c in DISPLAY_COLUMNS if c not in ("id", "asset_id")] if cache_display else []
                t = self.store.scan_units(["id", "asset_id"] + extra + exact)
                if cache_display:
                    display = t.select(DISPLAY_COLUMNS).to_pylist()
                uids = t.column("id").to_numpy(zero_copy_only=False)
                aids = t.column("asset_id").to_numpy(zero_copy_only=False)
                for f in exact:
                    col = t.column(f).combine_chunks()
                    mat = col.flatten().to_numpy().reshape(len(col), self.store.dims[f]) if len(col) else \
                        np.zeros((0, self.store.dims[f]), np.float32)
                    matrices[f] = VectorMatrix(uids, aids, mat, ver)
                del t
            retrievers["dense"] = DenseRetriever("dense", "vec_text", self._embed_text_query, frozenset({"text"}),
                                                 matrices["vec_text"])
            if "vec_visual" in fields:
                retrievers["visual"] = DenseRetriever("visual", "vec_visual", self._embed_visual_query,
                                                      frozenset({"text", "image"}), matrices["vec_visual"])
            if self.config.instance:
                from .retrieve.instance import InstanceIndex
                from .retrieve.instance_signal import InstanceRetriever

                # Reopen: another process (an index run beside a server) may have committed features.
                self._instance = InstanceIndex.open(self.path / "instance")
                retrievers["instance"] = InstanceRetriever(self._instance, self.store)
            stemmer = TermStemmer()
            if cache_display:
                # Small index: keep display columns in memory; a store lookup per query costs ~7 ms.
                cache = {r["id"]: r for r in display}

                def lookup(ids, columns=None):
                    return {u: cache[u] for u in ids if u in cache}
            else:
                lookup = self.store.pinned_rows(kw.id_index())  # rows by offset: the keyword index's scan order

            self._searcher = Searcher(retrievers, self.store, self._allowed_ids, stemmer.terms, lookup)
            self._searcher.stem_word = stemmer.word
            self._searcher_version = ver
            return self._searcher

    def _allowed_ids(self, where: str) -> np.ndarray:
        t = self.store.scan_units(["id"], where=where)
        return t.column("id").to_numpy(zero_copy_only=False)

    def _embed_text_query(self, q: Query):
        if not (q.text and q.text.strip()):
            return None
        return self.encoder("text").encode_queries([q.text])[0]

    def _embed_visual_query(self, q: Query):
        enc = self.encoder("visual")
        if q.image is not None:
            return enc.encode_images([load_query_image(q.image, q.bbox)])[0]
        if q.text and q.text.strip():
            return enc.encode_queries([q.text])[0]
        return None

    def refresh(self) -> None:
        """Make the next search see commits made by other processes or Index objects."""
        self._last_refresh = 0.0

    def signals(self) -> list[str]:
        return list(self.searcher().retrievers)

    def search(self, text: str | None = None, *, image: Any = None, bbox=None, k: int = 10,
               filters: Filters | None = None, config: SearchConfig | None = None) -> list[Hit]:
        """Search by text, image (path or PIL image, optionally cropped to `bbox` = x,y,w,h), or both."""
        return self.search_query(Query(text=text, image=image, bbox=bbox, k=k, filters=filters or Filters()), config)

    def search_query(self, query: Query, config: SearchConfig | None = None) -> list[Hit]:
        if query.k < 1:
            raise QueryError("k must be at least 1")
        if not (query.text and query.text.strip()) and query.image is None:
            raise QueryError("empty query: give text, an image, or both")
        check_filters(query.filters)
        if query.image is not None:
            # Decode, orient and crop once; every visual signal then sees the same pixels.
            query = dataclasses.replace(query, image=load_query_image(query.image, query.bbox), bbox=None)
        return self.searcher().search(query, config or SearchConfig(), where=filters_to_sql(query.filters))

    def search_many(self, queries: Sequence[Query], config: SearchConfig | None = None) -> list[list[Hit]]:
        return [self.search_query(q, config) for q in queries]

    def search_crops(self, query: Query, config: SearchConfig | None = None, crops: str = "auto") -> list[Hit]:
        """Multi-scale crop search of `query.image` (see retrieve/crops.py); each hit's `extra["crops"]` says
        which crop matched it. `crops="none"` is a plain search."""
        if crops == "none":
            return self.search_query(query, config)
        if crops != "auto":
            raise QueryError(f"unknown crops mode {crops!r}; choose from: auto, none")
        from .retrieve.crops import search_crops

        return search_crops(self, query, config).hits

    def dupes(self, threshold: int | None = None, **kw):
        """Groups of near-duplicate images (see retrieve/dupes.py): a DupeReport."""
        from .retrieve.dupes import DEFAULT_THRESHOLD, find_duplicates

        return find_duplicates(self, DEFAULT_THRESHOLD if threshold is None else threshold, **kw)

    # -- reading --------------------------------------------------------------------------------
    def asset(self, asset_id: str) -> dict[str, Any]:
        row = self.store.get_asset(asset_id)
        if row is None:
            raise NotFoundError(f"no asset {asset_id!r} in {self.path}")
        return row

    def status(self) -> dict[str, Any]:
        self.store.refresh()
        assets = self.store.asset_index()
        by_type: dict[str, int] = {}
        for v in assets.values():
            by_type[v["type"]] = by_type.get(v["type"], 0) + 1
        kinds: dict[str, int] = {}
        if self.store.count_units():
            t = self.store.scan_units(["kind"])
            vals, counts = np.unique(t.column("kind").to_numpy(zero_copy_only=False).astype(str), return_counts=True)
            kinds = {str(k): int(c) for k, c in zip(vals, counts)}
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return {
            "path": str(self.path), "assets": len(assets), "assets_by_type": by_type,
            "units": self.store.count_units(), "units_by_kind": kinds,
            "encoders": self.manifest.get("encoders", {}), "config": self.config.to_dict(),
            "store_version": self.store.version, "vector_indexes": self.vector_index_info(),
            "failed": [{"path": p, "reason": r, "at": str(at)} for p, r, at in self.store.failures_list()],
            "bytes_on_disk": size, "updated": self.manifest.get("updated"),
        }

    def close(self) -> None:
        self._searcher = None
        self._encoders.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pooled_pages(pending: Sequence[Extraction]) -> dict[int, list[int]]:
    """id(page unit) -> [id(block unit), ...] for pages whose text is covered by text blocks."""
    out: dict[int, list[int]] = {}
    for ex in pending:
        blocks: dict[int, list[int]] = {}
        for u in ex.units:
            if u.kind == "block" and u.page is not None and u.text.strip():
                blocks.setdefault(u.page, []).append(id(u))
        for u in ex.units:
            if u.kind == "page" and blocks.get(u.page):
                out[id(u)] = blocks[u.page]
    return out


def region_tiles(ex: Extraction, min_side: int = 160) -> list:
    """Multi-scale tiles of each whole image (2x2, and a 3x3 grid for large images, both overlapping), as
    `region` units with only visual vectors, so a small object can be found semantically."""
    from .types import Unit

    out = []
    for u in [u for u in ex.units if u.kind == "image" and u.image is not None and u.bbox is not None]:
        img = u.image
        sx, sy = u.bbox[2] / img.width, u.bbox[3] / img.height  # tile pixels -> unit frame
        n = 0
        for g in (2, 3):
            tw, th = img.width * 2 / (g + 1), img.height * 2 / (g + 1)  # 50% overlap between neighbours
            if min(tw, th) < min_side:
                continue
            for gy in range(g):
                for gx in range(g):
                    x0, y0 = gx * tw / 2, gy * th / 2
                    box = (int(x0), int(y0), int(round(x0 + tw)), int(round(y0 + th)))
                    n += 1
                    out.append(Unit(id=f"{u.id.rsplit('#', 1)[0]}#r{n}", kind="region", text="",
                                    bbox=(box[0] * sx, box[1] * sy, (box[2] - box[0]) * sx, (box[3] - box[1]) * sy),
                                    meta={"grid": g}, image=img.crop(box)))
    return out


def decode_image(source, what: str = "query image", max_pixels: int | None = None):
    """A path or bytes decoded to an EXIF-oriented RGB PIL image. Unreadable: QueryError; more than `max_pixels`
    (checked from the header, before the pixels are decoded): ImageTooLargeError."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    from .errors import ImageTooLargeError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageTooLargeError(f"{what} is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}; "
                                         f"send a smaller image")
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except FileNotFoundError:
        raise QueryError(f"{what} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, PolyseekError):
            raise
        raise QueryError(f"{what} cannot be read ({e}); use PNG, JPEG or WebP") from None


def load_query_image(image: Any, bbox=None):
    """A query image from a path, bytes or PIL image, EXIF-oriented, RGB, cropped to bbox (x, y, w, h)."""
    if isinstance(image, (bytes, bytearray)):
        img = decode_image(image)
    elif isinstance(image, (str, os.PathLike)):
        img = decode_image(image, f"query image {image}")
    else:
        img = image.convert("RGB")
    if bbox is not None:
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > img.width + 1 or y + h > img.height + 1:
            raise QueryError(f"crop {x:g},{y:g},{w:g},{h:g} is outside the {img.width}x{img.height} query image")
        img = img.crop((int(x), int(y), int(round(x + w)), int(round(y + h))))
    if img.width < 8 or img.height < 8:
        raise QueryError(f"query image is too small ({img.width}x{img.height}); give at least 8x8 pixels")
    return img
