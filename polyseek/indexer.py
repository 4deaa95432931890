"""The index run: discover → extract → encode → store, incrementally and crash-safely.

Each flushed batch is one store commit, so a kill -9 loses at most the batch in flight. Files are
skipped when size and mtime (then the content hash) match what the index holds; files that vanished
from an indexed folder are removed; failures are recorded per file and retried on the next run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from .errors import IngestError, PolyseekError
from .types import Extraction

if TYPE_CHECKING:
    from .index import Index

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
    """Collects extractions and writes them (encoded) to the store in commits of bounded size."""

    def __init__(self, index: "Index", report: IndexReport, *, max_units: int = FLUSH_UNITS,
                 max_files: int = FLUSH_FILES):
        self.index = index
        self.max_units, self.max_files = max_units, max_files
        self.report = report
        self.pending: list[Extraction] = []
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
        if (self.n_units >= self.max_units or len(self.pending) >= self.max_files
                or time.monotonic() - self.started > FLUSH_SECONDS):
            self.flush()

    def fail(self, path: str, reason: str) -> None:
        self.failures.append((path, reason))
        self.report.failed.append((path, reason))

    def flush(self) -> None:
        store = self.index.store
        if self.pending:
            batch = self.index.encode_extractions(self.pending)
            self.index.write_batch(batch)
            self.report.indexed += len(batch)
            self.report.units += sum(len(b.units) for b in batch)
        if self.done_paths:
            store.clear_failures(self.done_paths)
        if self.failures:
            store.record_failures(self.failures)
        self.pending, self.n_units, self.done_paths, self.failures = [], 0, [], []
        self.started = time.monotonic()


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


def add_files(index: "Index", roots: Sequence[Path], *, include=(), exclude=(), progress=False,
              skip_duplicates: bool = False, report: IndexReport) -> None:
    from .ingest.base import ExtractContext
    from .ingest.files import discover, extract_file, file_hash

    store = index.store
    existing = {v["path"]: (aid, v) for aid, v in store.asset_index("type != 'record'").items()}
    taken = {aid: v["path"] for aid, v in store.asset_index().items()}
    todo: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    batch = Batcher(index, report)
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
    repair = index.assets_missing_features()
    want_pixels = index.wants_pixels()
    bar = _progress(progress, len(todo), "file")
    try:
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
            ctx = ExtractContext(config=index.config.ingest, asset_id=aid, file_hash=h, want_pixels=want_pixels)
            try:
                ex = extract_file(path, ctx)
            except IngestError as e:
                batch.fail(sp, e.reason)
                continue
            except (OSError, ValueError, MemoryError) as e:  # a library error the extractor did not translate
                batch.fail(sp, f"{type(e).__name__}: {e}")
                continue
            if skip_duplicates and ex.asset.type == "image" and not prev:
                from .retrieve.dupes import is_near_duplicate

                batch.flush()  # images earlier in this run count as indexed
                dup = is_near_duplicate(index, path)
                if dup is not None:
                    report.duplicates.append((sp, dup))
                    continue
            ex.asset.id, ex.asset.path = aid, sp
            ex.asset.source = ex.asset.source or sp
            ex.asset.hash, ex.asset.size, ex.asset.mtime = h, st.st_size, st.st_mtime
            batch.add(ex, done_path=sp)
        batch.flush()
    finally:
        bar.close()
    # Files that disappeared from a folder we walked completely are removed from the index.
    gone = [aid for p, (aid, _) in existing.items()
            if p not in seen and any(p.startswith(str(r) + os.sep) for r in complete_roots) and not os.path.exists(p)]
    if gone:
        report.removed += store.delete_assets(gone)
        index.after_delete(gone)
    stale_failures = [p for p, _, _ in store.failures_list()
                      if any(p.startswith(str(r) + os.sep) for r in complete_roots) and p not in seen]
    store.clear_failures(stale_failures)


def add_records(index: "Index", files: Sequence[Path], *, id_field="id", text_fields=("text",), image_field=None,
                meta_fields=(), progress=False, report: IndexReport) -> None:
    from .ingest.files import file_hash
    from .ingest.records import iter_records

    store = index.store
    batch = Batcher(index, report, max_units=FLUSH_RECORD_UNITS, max_files=FLUSH_RECORD_UNITS)
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
        if index.manifest.get("sources", {}).get(src_key) == {"hash": fh, **spec}:
            report.skipped += store.count_units(f"path = '{src_key.replace(chr(39), chr(39) * 2)}'")
            continue
        existing = {aid: v["hash"] for aid, v in
                    store.asset_index(f"source = '{src_key.replace(chr(39), chr(39) * 2)}'").items()}
        seen: set[str] = set()
        bar = _progress(progress, None, "rec")
        try:
            for item in iter_records(f, id_field=id_field, text_fields=tuple(text_fields), image_field=image_field,
                                     meta_fields=tuple(meta_fields), config=index.config.ingest,
                                     want_pixels=index.wants_pixels()):
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
            report.removed += store.delete_assets(gone)
            index.after_delete(gone)
        index.manifest.setdefault("sources", {})[src_key] = {"hash": fh, **spec}
        index.save_manifest()


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
