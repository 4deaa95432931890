"""The index run: discover → extract → encode → store → derived-index upkeep, incrementally and crash-safely.

`IndexRun(folder)` holds the writer-side steps: encoding extractions (pooled page vectors, local features),
the write order (local features, then the store), removal and the upkeep after a run. Each flushed batch is one
store commit, so a kill -9 loses at most the batch in flight. Files are skipped when size and mtime (then the
content hash) match what the index holds; files that vanished from an indexed folder are removed; failures are
recorded per file and retried on the next run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import IngestError, NotFoundError, PolyseekError
from .ingest.base import instance_kinds
from .store.base import EncodedAsset
from .types import Extraction

if TYPE_CHECKING:
    from .folder import IndexFolder

log = logging.getLogger(__name__)

# Files: commit every 64 files / 512 units so little work is lost to a kill. Records: larger batches, since
# the encoder sorts each batch by length and long batches waste less on padding.
FLUSH_UNITS = 512
FLUSH_FILES = 64
FLUSH_RECORD_UNITS = 4096
FLUSH_SECONDS = 30.0


@dataclass
class IndexReport:
    indexed: int = 0
    skipped: int = 0
    removed: int = 0
    units: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped path, asset id it duplicates)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "skipped": self.skipped, "removed": self.removed, "units": self.units,
                "failed": [{"path": p, "reason": r} for p, r in self.failed],
                "warnings": [{"path": p, "warning": w} for p, w in self.warnings],
                "duplicates": [{"path": p, "duplicate_of": a} for p, a in self.duplicates],
                "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        s = (f"indexed {self.indexed} asset(s) ({self.units} units), skipped {self.skipped} unchanged, "
             f"removed {self.removed}, failed {len(self.failed)} in {self.seconds:.1f}s")
        if self.duplicates:
            s += f"; {len(self.duplicates)} near-duplicate image(s) not indexed"
        return s


def _progress(enabled: bool, total: int | None, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.5)


class Batcher:
    """Collects extractions and writes them (encoded) to the store in commits of bounded size.

    Parts of a streamed file are encoded as they come (their pixels dropped) and written with the file's last
    part, so each file's units still appear in one commit."""

    def __init__(self, run: "IndexRun", report: IndexReport, *, max_units: int = FLUSH_UNITS,
                 max_files: int = FLUSH_FILES):
        self.run = run
        self.max_units, self.max_files = max_units, max_files
        self.report = report
        self.pending: list[Extraction] = []
        self.partial: dict[str, list[EncodedAsset]] = {}  # asset id -> encoded parts before its final one
        self.ready: list[EncodedAsset] = []
        self.n_units = 0
        self.started = time.monotonic()
        self.done_paths: list[str] = []
        self.failures: list[tuple[str, str]] = []

    def add(self, ex: Extraction, done_path: str | None = None) -> None:
        self.pending.append(ex)
        self.n_units += len(ex.units)
        if done_path:
            self.done_paths.append(done_path)
        for w in ex.warnings:
            self.report.warnings.append((ex.asset.path, w))
        if not ex.final:
            self._encode_pending()
        if (self.n_units >= self.max_units or len(self.ready) + len(self.pending) >= self.max_files
                or time.monotonic() - self.started > FLUSH_SECONDS):
            self.flush()

    def add_encoded(self, ea: EncodedAsset, warnings: Sequence[str] = (), done_path: str | None = None) -> None:
        """A whole file already extracted and encoded elsewhere (another engine): written with the next commit."""
        self.ready.append(ea)
        self.n_units += len(ea.units)
        if done_path:
            self.done_paths.append(done_path)
        for w in warnings:
            self.report.warnings.append((ea.asset.path, w))
        if (self.n_units >= self.max_units or len(self.ready) + len(self.pending) >= self.max_files
                or time.monotonic() - self.started > FLUSH_SECONDS):
            self.flush()

    def fail(self, path: str, reason: str) -> None:
        self.failures.append((path, reason))
        self.report.failed.append((path, reason))

    def drop_partial(self, asset_id: str) -> None:
        """Forget the parts of a streamed file that failed before its last part."""
        self.partial.pop(asset_id, None)
        self.pending = [ex for ex in self.pending if ex.asset.id != asset_id]

    def _encode_pending(self) -> None:
        if not self.pending:
            return
        for ex, ea in zip(self.pending, self.run.encode_extractions(self.pending)):
            if ex.final:
                self.ready.append(merge_parts(self.partial.pop(ex.asset.id, []) + [ea]))
            else:
                self.partial.setdefault(ex.asset.id, []).append(ea)
        self.pending = []

    def flush(self) -> None:
        store = self.run.store
        self._encode_pending()
        if self.ready:
            self.run.write_batch(self.ready)
            self.report.indexed += len(self.ready)
            self.report.units += sum(len(b.units) for b in self.ready)
        if self.done_paths:
            store.clear_failures(self.done_paths)
        if self.failures:
            store.record_failures(self.failures)
        self.ready, self.n_units, self.done_paths, self.failures = [], sum(
            len(p.units) for parts in self.partial.values() for p in parts), [], []
        self.started = time.monotonic()


def merge_parts(parts: list[EncodedAsset]) -> EncodedAsset:
    """One EncodedAsset from the encoded parts of a streamed file (the last part's asset row)."""
    if len(parts) == 1:
        return parts[0]
    vectors = {f: np.concatenate([p.vectors[f] for p in parts]) for f in parts[-1].vectors}
    return EncodedAsset(parts[-1].asset, [u for p in parts for u in p.units], vectors,
                        [x for p in parts for x in p.local])


def _unique_id(candidates: Sequence[str], path: str, taken: dict[str, str]) -> str:
    for c in candidates:
        if taken.get(c, path) == path:
            return c
    return f"{candidates[0]}~{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def asset_id_for(path: Path, root: Path, taken: dict[str, str]) -> str:
    """The file stem relative to its root ("sub/name"); with the suffix, then a path hash, on collision."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    stem = rel.with_suffix("").as_posix()
    return _unique_id([stem, rel.as_posix()], str(path), taken)


@dataclass
class FileWork:
    """One file the plan says to extract: its asset id, content hash and stat, and the extraction context."""

    path: Path
    asset_id: str
    hash: str
    size: int
    mtime: float
    known: bool  # the index holds an earlier version of it
    ctx: Any

    def finish(self, ex: Extraction) -> Extraction:
        """Stamp an extraction of this file with its identity (asset id, path, hash, stat)."""
        ex.asset.id, ex.asset.path = self.asset_id, str(self.path)
        ex.asset.source = ex.asset.source or str(self.path)
        ex.asset.hash, ex.asset.size, ex.asset.mtime = self.hash, self.size, self.mtime
        return ex


class LocalEngine:
    """Extraction and encoding in this process, file after file (the default engine). Another engine (Ray:
    polyseek/scale/ray_ingest.py) implements `run` the same way: every planned file ends in the batcher, as an
    encoded asset (`add_encoded`) or a failure with its reason; the batcher writes the commits."""

    name = "local"

    def __init__(self, *, skip_duplicates: bool = False):
        self.skip_duplicates = skip_duplicates

    def run(self, run: "IndexRun", work: Iterable[FileWork], batch: Batcher) -> None:
        from .ingest.files import stream_file

        for w in work:
            sp = str(w.path)
            try:
                for ex in stream_file(w.path, w.ctx):
                    if self.skip_duplicates and ex.asset.type == "image" and not w.known:
                        from .retrieve.dupes import is_near_duplicate

                        batch.flush()  # images earlier in this run count as indexed
                        dup = is_near_duplicate(run.folder, w.path)
                        if dup is not None:
                            batch.report.duplicates.append((sp, dup))
                            break
                    batch.add(w.finish(ex), done_path=sp if ex.final else None)
            except IngestError as e:
                batch.drop_partial(w.asset_id)
                batch.fail(sp, e.reason)
            except (OSError, ValueError, MemoryError) as e:  # a library error the extractor did not translate
                batch.drop_partial(w.asset_id)
                batch.fail(sp, f"{type(e).__name__}: {e}")


def add_files(run: "IndexRun", roots: Sequence[Path], *, include=(), exclude=(), progress=False,
              skip_duplicates: bool = False, report: IndexReport, engine=None) -> None:
    from .ingest.base import ExtractContext
    from .ingest.files import discover, file_hash

    store = run.store
    existing = {v["path"]: (aid, v) for aid, v in store.asset_index(exclude_types=["record"]).items()}
    taken = {aid: v["path"] for aid, v in store.asset_index().items()}
    todo: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    batch = Batcher(run, report)
    complete_roots: list[Path] = []
    for root in roots:
        root = Path(os.path.abspath(root))
        if root.is_file():
            todo.append((root.parent, root))
            continue
        if not root.exists():
            batch.fail(str(root), "no such file or folder")
            continue
        for item in discover([root], include=include, exclude=exclude):
            if isinstance(item, tuple):
                batch.fail(str(item[0]), item[1])
                seen.add(str(item[0]))
            else:
                todo.append((root, Path(os.path.abspath(item))))
        complete_roots.append(root)
    todo = list({p: (r, p) for r, p in todo}.values())  # a path given twice is indexed once
    repair = run.assets_missing_features()
    want_pixels = run.folder.wants_pixels()
    region_tiles = bool(run.config.visual_encoder and run.config.region_tiles)
    bar = _progress(progress, len(todo), "file")

    def plan() -> Iterator[FileWork]:
        """The files that need extraction (new, changed, or missing local features), with their asset ids;
        unchanged ones are counted as skipped, unreadable ones recorded as failed."""
        for root, path in todo:
            sp = str(path)
            seen.add(sp)
            bar.update(1)
            try:
                st = path.stat()
            except OSError as e:
                batch.fail(sp, f"cannot read file: {e.strerror or e}")
                continue
            prev = existing.get(sp)
            if prev and prev[0] in repair:
                prev = (prev[0], {**prev[1], "hash": None, "size": -1})
            if prev and prev[1]["size"] == st.st_size and prev[1]["mtime"] == st.st_mtime:
                report.skipped += 1
                continue
            try:
                h = file_hash(path)
            except OSError as e:
                batch.fail(sp, f"cannot read file: {e.strerror or e}")
                continue
            if prev and prev[1]["hash"] == h:
                report.skipped += 1
                continue
            aid = prev[0] if prev else asset_id_for(path, root, taken)
            taken[aid] = sp
            ctx = ExtractContext(config=run.config.ingest, asset_id=aid, file_hash=h, want_pixels=want_pixels,
                                 region_tiles=region_tiles)
            yield FileWork(path, aid, h, st.st_size, st.st_mtime, bool(prev), ctx)

    try:
        (engine or LocalEngine(skip_duplicates=skip_duplicates)).run(run, plan(), batch)
        batch.flush()
    finally:
        bar.close()
    # Files that disappeared from a folder we walked completely are removed from the index.
    gone = [aid for p, (aid, _) in existing.items()
            if p not in seen and any(p.startswith(str(r) + os.sep) for r in complete_roots) and not os.path.exists(p)]
    if gone:
        report.removed += run.delete_assets(gone)
    stale_failures = [p for p, _, _ in store.failures_list()
                      if any(p.startswith(str(r) + os.sep) for r in complete_roots) and p not in seen]
    store.clear_failures(stale_failures)


def add_records(run: "IndexRun", files: Sequence[Path], *, id_field="id", text_fields=("text",), image_field=None,
                meta_fields=(), progress=False, report: IndexReport) -> None:
    from .ingest.files import file_hash
    from .ingest.records import iter_records

    store = run.store
    batch = Batcher(run, report, max_units=FLUSH_RECORD_UNITS, max_files=FLUSH_RECORD_UNITS)
    for f in dict.fromkeys(Path(os.path.abspath(p)) for p in files):
        f = Path(os.path.abspath(f))
        if not f.is_file():
            batch.fail(str(f), "no such records file")
            continue
        try:
            fh = file_hash(f)
        except OSError as e:
            batch.fail(str(f), f"cannot read file: {e.strerror or e}")
            continue
        spec = {"id_field": id_field, "text_fields": list(text_fields), "image_field": image_field,
                "meta_fields": list(meta_fields)}
        src_key = str(f)
        if run.folder.manifest.get("sources", {}).get(src_key) == {"hash": fh, **spec}:
            report.skipped += store.count_units(path=src_key)
            continue
        existing = {aid: v["hash"] for aid, v in store.asset_index(source=src_key).items()}
        seen: set[str] = set()
        bar = _progress(progress, None, "rec")
        try:
            for item in iter_records(f, id_field=id_field, text_fields=tuple(text_fields), image_field=image_field,
                                     meta_fields=tuple(meta_fields), config=run.config.ingest,
                                     want_pixels=run.folder.wants_pixels()):
                bar.update(1)
                if isinstance(item, tuple):
                    batch.fail(*item)
                    continue
                a = item.asset
                if a.id in seen:
                    batch.fail(f"{f}#{a.id}", f"duplicate id {a.id!r} in {f.name}; the first row with it was kept")
                    continue
                seen.add(a.id)
                if existing.get(a.id) == a.hash:
                    report.skipped += 1
                    continue
                a.path, a.source = src_key, src_key
                batch.add(item)
            batch.flush()
        finally:
            bar.close()
        gone = sorted(set(existing) - seen)
        if gone:
            report.removed += run.delete_assets(gone)
        run.folder.manifest.setdefault("sources", {})[src_key] = {"hash": fh, **spec}
        run.folder.save_manifest()


class IndexRun:
    """The writer side of one index folder: add and remove assets, keep the derived indexes in step."""

    def __init__(self, folder: "IndexFolder"):
        self.folder = folder
        self.store = folder.store
        self.config = folder.config

    def add(self, paths: Iterable[str | os.PathLike], *, records: bool = False, id_field: str = "id",
            text_fields: Sequence[str] = ("text",), image_field: str | None = None, meta_fields: Sequence[str] = (),
            include: Sequence[str] = (), exclude: Sequence[str] = (), progress: bool = False,
            skip_duplicates: bool = False, engine=None) -> IndexReport:
        """Index files and folders (or records files with `records=True`); see `Index.add`. `engine` extracts
        and encodes the planned files (default: `LocalEngine`, in this process); this run writes."""
        paths = check_paths(paths)
        if engine is not None and records:
            raise PolyseekError(f"the {engine.name} engine indexes files and folders; index records files without it")
        if engine is not None and skip_duplicates:
            raise PolyseekError(f"--skip-duplicates checks each image against the index as it is written; it "
                                f"cannot be combined with the {engine.name} engine")
        report = IndexReport()
        t0 = time.perf_counter()
        with self.folder.writer():
            before = self.store.version
            if records:
                add_records(self, paths, id_field=id_field, text_fields=tuple(text_fields), image_field=image_field,
                            meta_fields=tuple(meta_fields), progress=progress, report=report)
            else:
                add_files(self, paths, include=tuple(include), exclude=tuple(exclude), progress=progress,
                          skip_duplicates=skip_duplicates, report=report, engine=engine)
            if self.store.version != before:
                self.store.maintain()
            self.folder.derived.refresh(force=self.store.version != before)
            self.folder.save_manifest()
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, items: Iterable[str]) -> int:
        """Remove assets by id, by file path, or every asset under a folder path. Returns how many."""
        with self.folder.writer():
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
            n = self.delete_assets(sorted(ids))
            srcs = self.folder.manifest.get("sources", {})
            for s in [s for s in srcs if not self.store.count_units(path=s)]:
                srcs.pop(s)
            self.folder.derived.refresh(force=True)
            self.folder.save_manifest()
            return n

    # -- steps ------------------------------------------------------------------------------------
    def encode_extractions(self, pending: Sequence[Extraction]) -> list[EncodedAsset]:
        return encode_extractions(pending, self.folder.encoder, self.config)

    def write_batch(self, batch: Sequence[EncodedAsset]) -> None:
        """Local features first, then the store: a kill in between leaves only feature entries whose units
        are not (yet) in the store, which search ignores and the next run overwrites."""
        if self.config.instance:
            ii = self.folder.instance_index()
            self.folder.derived.drop_features({ea.asset.id for ea in batch})
            for ea in batch:
                for uid, feats in ea.local:
                    ii.add(uid, feats)
            ii.commit()
        self.store.write(batch)

    def delete_assets(self, asset_ids: Sequence[str]) -> int:
        """Delete assets from the store, then from the derived indexes that follow assets by id; how many."""
        n = self.store.delete_assets(asset_ids)
        if self.config.instance and asset_ids and self.folder.derived.drop_features(asset_ids):
            self.folder.instance_index().commit()
        return n

    def assets_missing_features(self) -> set[str]:
        return self.folder.derived.assets_missing_features(instance_kinds())


def encode_extractions(pending: Sequence[Extraction], encoder, config) -> list[EncodedAsset]:
    """Vectors for every unit (a unit listed in `Extraction.pooled` gets the mean of its members' text vectors),
    local features for the kinds the extractors declare, pixels dropped afterwards. `encoder(role)` gives the
    text or visual encoder, `config` is the IndexConfig: any process holding the models can run it."""
    units = [u for ex in pending for u in ex.units]
    pooled = {uid: members for ex in pending for uid, members in ex.pooled.items()}
    vec_text = encode_texts(encoder("text"), [("" if u.id in pooled else u.text) for u in units])
    if pooled:
        pos = {u.id: i for i, u in enumerate(units)}
        for uid, members in pooled.items():
            v = vec_text[[pos[m] for m in members]].mean(axis=0)
            norm = float(np.linalg.norm(v))
            vec_text[pos[uid]] = v / norm if norm > 0 else v
    vec_visual = None
    if config.visual_encoder:
        vec_visual = encode_images(encoder("visual"), [u.image for u in units])
    feature_kinds = set(instance_kinds()) if config.instance else set()
    out, i = [], 0
    for ex in pending:
        n = len(ex.units)
        vecs = {"vec_text": vec_text[i:i + n]}
        if vec_visual is not None:
            vecs["vec_visual"] = vec_visual[i:i + n]
        local = _local_features(ex, feature_kinds) if feature_kinds else []
        for u in ex.units:
            u.image = None  # pixels are not stored
        out.append(EncodedAsset(ex.asset, ex.units, vecs, local))
        i += n
    return out


def _local_features(ex: Extraction, kinds: set[str]) -> list[tuple[str, Any]]:
    from .encode.local import FeatureError, extract_local_features

    out = []
    for u in ex.units:
        if u.image is None or u.kind not in kinds:
            continue
        try:
            feats = extract_local_features(u.image)
        except FeatureError as e:
            ex.warnings.append(f"no local features for {u.id}: {e}")
            continue
        u.meta["pixels"] = [int(u.image.width), int(u.image.height)]  # to map matched boxes back
        out.append((u.id, feats))
    return out


def encode_texts(encoder, texts: list[str]) -> np.ndarray:
    """Encode non-empty texts; empty ones get zero vectors (they take no part in dense search)."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t and t.strip()]
    if idx:
        out[idx] = encoder.encode_documents([texts[i] for i in idx])
    return out


def encode_images(encoder, images: list[Any]) -> np.ndarray:
    out = np.zeros((len(images), encoder.dim), dtype=np.float32)
    idx = [i for i, im in enumerate(images) if im is not None]
    if idx:
        out[idx] = encoder.encode_images([images[i] for i in idx])
    return out


def check_paths(paths: Iterable[str | Path]) -> list[Path]:
    out = [Path(p) for p in paths]
    if not out:
        raise PolyseekError("nothing to index: give one or more files or folders")
    return out
