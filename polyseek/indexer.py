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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Iterator, Sequence

import numpy as np

from .errors import IngestError, MissingExtraError, NotFoundError, PolyseekError
from .ingest.base import instance_kinds
from .progress import Progress
from .store.base import EncodedAsset
from .store.fsio import fault_point, printable_path
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
    links: list[tuple[str, str]] = field(default_factory=list)  # (symlink, why it was not followed)
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (path, type): skipped, not failed
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase: extract, encode, commit, ...

    def unsupported_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, t in self.unsupported:
            out[t] = out.get(t, 0) + 1
        return dict(sorted(out.items()))


    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "skipped": self.skipped, "removed": self.removed, "units": self.units,
                "failed": [{"path": p, "reason": r} for p, r in self.failed],
                "warnings": [{"path": p, "warning": w} for p, w in self.warnings],
                "duplicates": [{"path": p, "duplicate_of": a} for p, a in self.duplicates],
                "skipped_links": [{"path": p, "reason": r} for p, r in self.links],
                "unsupported": self.unsupported_by_type(),
                "seconds": round(self.seconds, 3), "phases": {k: round(v, 3) for k, v in self.phases.items()}}

    def summary(self) -> str:
        s = (f"indexed {self.indexed} asset(s) ({self.units} units), skipped {self.skipped} unchanged, "
             f"removed {self.removed}, failed {len(self.failed)} in {self.seconds:.1f}s")
        if self.unsupported:
            s += (f"; {len(self.unsupported)} of unsupported type skipped ("
                  + ", ".join(f"{t}: {n}" for t, n in self.unsupported_by_type().items()) + ")")
        if self.duplicates:
            s += f"; {len(self.duplicates)} near-duplicate image(s) not indexed"
        if self.links:
            s += f"; {len(self.links)} symlink(s) out of the indexed folders not followed"
        if self.phases:
            s += " (" + ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items()) + ")"
        return s


class Batcher:
    """Collects extractions and writes them (encoded) to the store in commits of bounded size.

    Parts of a streamed file are encoded as they come (their pixels dropped) and written with the file's last
    part, so each file's units still appear in one commit."""

    def __init__(self, run: "IndexRun", report: IndexReport, *, max_units: int = FLUSH_UNITS,
                 max_files: int = FLUSH_FILES, progress: Progress | None = None):
        self.run = run
        self.progress = progress or Progress(False, "index")
        self.max_units, self.max_files = max_units, max_files
        self.report = report
        self.pending: list[Extraction] = []
        self.partial: dict[str, list[EncodedAsset]] = {}  # asset id -> encoded parts before its final one
        self.ready: list[EncodedAsset] = []
        self.n_units = 0
        self.started = time.monotonic()
        self.done_paths: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.features = FeaturePrefetch() if run.config.instance else None

    def add(self, ex: Extraction, done_path: str | None = None) -> None:
        self.pending.append(ex)
        if self.features is not None:
            self.features.submit(ex)
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
        path = printable_path(path)  # the store holds UTF-8; a name that is not must still be reported
        self.failures.append((path, reason))
        self.report.failed.append((path, reason))

    def drop_partial(self, asset_id: str) -> None:
        """Forget the parts of a streamed file that failed before its last part."""
        self.partial.pop(asset_id, None)
        if self.features is not None:
            for ex in self.pending:
                if ex.asset.id == asset_id:
                    self.features.forget(ex)
        self.pending = [ex for ex in self.pending if ex.asset.id != asset_id]

    def _encode_pending(self) -> None:
        if not self.pending:
            return
        n = sum(len(ex.units) for ex in self.pending)
        with self.progress.phase("encode", f"{n} units of {len(self.pending)} file(s)"):
            encoded = self.run.encode_extractions(self.pending, features=self.features)
        for ex, ea in zip(self.pending, encoded):
            if ex.final:
                self.ready.append(merge_parts(self.partial.pop(ex.asset.id, []) + [ea]))
            else:
                self.partial.setdefault(ex.asset.id, []).append(ea)
        self.pending = []

    def flush(self) -> None:
        store = self.run.store
        self._encode_pending()
        if self.ready:
            with self.progress.phase("commit", f"{len(self.ready)} asset(s)"):
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

    def close(self) -> None:
        if self.features is not None:
            self.features.close()


class FeaturePrefetch:
    """Local features of each extraction's units (those of `kinds` that have pixels), computed on background
    threads, one per CPU, from the moment the extraction is submitted: in an index run, SIFT of one file's pages
    runs while the next file is extracted, which uses one core. `encode_extractions` takes the results before it
    starts the text encoder, so the two never share the cores (measured slower when they do: docs/benchmarks.md,
    first contact). OpenCV's SIFT releases the GIL and, on its own, keeps two cores only about 65% busy (40 PDF
    page renders: 3.8 s one after another, 2.8 s on two threads)."""

    def __init__(self, kinds: Collection[str] | None = None):
        self.kinds = set(instance_kinds() if kinds is None else kinds)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[int, tuple[Extraction, list]] = {}  # id(ex) -> (ex, [(unit, future)]); ex kept alive

    def submitted(self, ex: Extraction) -> bool:
        return id(ex) in self._futures

    def submit(self, ex: Extraction) -> None:
        from .encode.onnx import cpu_threads

        jobs = [u for u in ex.units if u.image is not None and u.kind in self.kinds]
        if self._pool is None and jobs:
            self._pool = ThreadPoolExecutor(cpu_threads(), thread_name_prefix="polyseek-features")
        self._futures[id(ex)] = (ex, [(u, self._pool.submit(_unit_features, u)) for u in jobs])

    def take(self, ex: Extraction) -> list | None:
        """[(unit, features or FeatureError)] for `ex` in unit order (waits for them), or None if not submitted."""
        got = self._futures.pop(id(ex), None)
        return None if got is None else [(u, f.result()) for u, f in got[1]]

    def forget(self, ex: Extraction) -> None:
        got = self._futures.pop(id(ex), None)
        if got is not None:
            for _, f in got[1]:
                f.cancel()

    def close(self) -> None:
        for ex, _ in list(self._futures.values()):
            self.forget(ex)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


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


def id_candidates(path: Path) -> list[str]:
    """Possible ids of a file, shortest first: "stem", "folder/stem", ... then the same with the file's suffix."""
    folders = path.parts[1:-1]  # without the filesystem root
    out = ["/".join([*folders[len(folders) - k:], path.stem]) for k in range(len(folders) + 1)]
    out += ["/".join([*folders[len(folders) - k:], path.name]) for k in range(len(folders) + 1)]
    return list(dict.fromkeys(c for c in out if c))


def assign_ids(new: Sequence[Path], taken: dict[str, str]) -> dict[str, str]:
    """Asset ids for files not yet indexed: the file's stem, lengthened by parent folders only as far as needed to
    tell apart files that share a stem (in this run or already indexed), then the name with its suffix.

    The rule looks at the files, never at which folder was passed to `index`, so `index docs/` and `index docs/pdfs/`
    give a file the same id. Ids of indexed files never change (`taken`: id -> path), so indexes built under the
    earlier rule (ids relative to the folder given) keep theirs; only new files get ids by this rule."""
    stems = {p.stem for p in new}
    others = [Path(p) for p in taken.values() if Path(p).stem in stems and "#" not in p]
    owners: dict[str, int] = {}
    for p in list(dict.fromkeys([*new, *others])):
        for c in id_candidates(p):
            owners[c] = owners.get(c, 0) + 1
    out: dict[str, str] = {}
    for p in sorted(new):
        free = [c for c in id_candidates(p) if owners.get(c) == 1 and taken.get(c, str(p)) == str(p)]
        out[str(p)] = free[0] if free else _unique_id([p.stem], str(p), taken)
    return out


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
                for ex in timed(stream_file(w.path, w.ctx), batch.progress, "extract"):
                    if self.skip_duplicates and ex.asset.type == "image" and not w.known:
                        from .retrieve.dupes import is_near_duplicate

                        batch.flush()  # images earlier in this run count as indexed
                        dup = is_near_duplicate(run.folder, w.path)
                        if dup is not None:
                            batch.report.duplicates.append((sp, dup))
                            break
                    batch.add(w.finish(ex), done_path=sp if ex.final else None)
            except MissingExtraError as e:  # an optional extra is not installed: skipped, retried next run
                batch.drop_partial(w.asset_id)
                batch.report.skipped += 1
                batch.report.warnings.append((sp, e.reason))
            except IngestError as e:
                batch.drop_partial(w.asset_id)
                batch.fail(sp, e.reason)
            except (OSError, ValueError, MemoryError) as e:  # a library error the extractor did not translate
                batch.drop_partial(w.asset_id)
                batch.fail(sp, f"{type(e).__name__}: {e}")


def add_files(run: "IndexRun", roots: Sequence[Path], *, include=(), exclude=(), progress: Progress | bool = False,
              skip_duplicates: bool = False, report: IndexReport, engine=None) -> None:
    from .ingest.base import ExtractContext
    from .ingest.files import OUTSIDE_ROOT, discover, file_hash

    store = run.store
    existing = {v["path"]: (aid, v) for aid, v in store.asset_index(exclude_types=["record"]).items()}
    taken = {aid: v["path"] for aid, v in store.asset_index().items()}
    todo: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    prog = progress if isinstance(progress, Progress) else Progress(bool(progress), "index")
    batch = Batcher(run, report, progress=prog)
    complete_roots: list[Path] = []
    records = set(run.folder.manifest.get("sources", {}))  # files indexed with --records are not skipped here
    from .ingest.detect import supported_suffixes

    supported = set(supported_suffixes())

    def wanted(path: Path) -> bool:
        """Supported types go on; others are recorded as skipped by type, never extracted, so never retried."""
        if str(path) in records:
            return False
        kind = unsupported_type(path, supported)
        if kind is None:
            return True
        report.unsupported.append((str(path), kind))
        seen.add(str(path))
        return False

    for root in roots:
        root = Path(os.path.abspath(root))
        if root.is_file():
            if wanted(root):
                todo.append((root.parent, root))
            continue
        if not root.exists():
            batch.fail(str(root), "no such file or folder")
            continue
        for item in discover([root], include=include, exclude=exclude):
            if isinstance(item, tuple) and item[1].startswith(OUTSIDE_ROOT):
                report.links.append((printable_path(str(item[0])), item[1]))  # not seen: indexed before, removed now
            elif isinstance(item, tuple):
                batch.fail(str(item[0]), item[1])
                seen.update((str(item[0]), printable_path(str(item[0]))))
            elif wanted(Path(os.path.abspath(item))):
                todo.append((root, Path(os.path.abspath(item))))
        complete_roots.append(root)
    todo = list({p: (r, p) for r, p in todo}.values())  # a path given twice is indexed once
    new_ids = assign_ids([p for _, p in todo if str(p) not in existing], taken)
    repair = run.assets_missing_features() | store.assets_without_units()
    want_pixels = run.folder.wants_pixels()
    region_tiles = bool(run.config.visual_encoder and run.config.region_tiles)
    prog.total = len(todo)
    if prog._bar is not None:
        prog._bar.reset(total=len(todo))

    def plan() -> Iterator[FileWork]:
        """The files that need extraction (new, changed, or missing local features), with their asset ids;
        unchanged ones are counted as skipped, unreadable ones recorded as failed."""
        for root, path in todo:
            sp = str(path)
            seen.add(sp)
            prog.step(1)
            if printable_path(sp) != sp:  # a name that is not UTF-8 (surrogate-escaped): a bad file, not a crash
                seen.add(printable_path(sp))
                batch.fail(sp, "the file name is not valid UTF-8 (shown here with \\x escapes); rename the file "
                               "to index it")
                continue
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
            aid = prev[0] if prev else new_ids[sp]
            if taken.get(aid, sp) != sp:  # taken earlier in this run (a file given twice under two names)
                aid = _unique_id([aid], sp, taken)
            taken[aid] = sp
            ctx = ExtractContext(config=run.config.ingest, asset_id=aid, file_hash=h, want_pixels=want_pixels,
                                 region_tiles=region_tiles)
            yield FileWork(path, aid, h, st.st_size, st.st_mtime, bool(prev), ctx)

    try:
        (engine or LocalEngine(skip_duplicates=skip_duplicates)).run(run, plan(), batch)
        batch.flush()
    finally:
        batch.close()
        if prog is not progress:
            prog.close()
    # Files that disappeared from a folder we walked completely are removed from the index.
    links = {p for p, _ in report.links}
    gone = [aid for p, (aid, _) in existing.items()
            if p not in seen and any(p.startswith(str(r) + os.sep) for r in complete_roots)
            and (p in links or not os.path.exists(p))]
    if gone:
        report.removed += run.delete_assets(gone)
    skipped_now = {p for p, _ in report.unsupported}
    stale_failures = [p for p, _, _ in store.failures_list()
                      if (any(p.startswith(str(r) + os.sep) for r in complete_roots) and p not in seen)
                      or p in skipped_now or p in records]
    store.clear_failures(stale_failures)
    remember_skipped(run.folder.manifest, report.unsupported, complete_roots)


def timed(parts: Iterable[Extraction], prog: Progress, phase: str) -> Iterator[Extraction]:
    """`parts` as they come, the time spent producing each counted in `phase` (extraction interleaves with
    encoding for streamed files, so the generator's own time is what is measured)."""
    it = iter(parts)
    while True:
        with prog.phase(phase, say=False):
            try:
                ex = next(it)
            except StopIteration:
                return
        yield ex


def unsupported_type(path: Path, supported: Collection[str]) -> str | None:
    """The suffix (".xyz", or "(no suffix)") of a file whose suffix is not in `supported`, else None."""
    suffix = path.suffix.lower()
    return None if suffix in supported else (suffix or "(no suffix)")


def remember_skipped(manifest: dict, unsupported: Sequence[tuple[str, str]], walked: Sequence[Path]) -> None:
    """Keep `manifest["skipped"]` ({path: type}) true: entries under folders walked this run are replaced by what
    this run skipped, and entries whose file is gone are dropped."""
    old = manifest.get("skipped", {})
    keep = {p: t for p, t in old.items()
            if os.path.exists(p) and not any(p.startswith(str(r) + os.sep) for r in walked)}
    keep.update(dict(unsupported))
    manifest["skipped"] = dict(sorted(keep.items()))




def add_records(run: "IndexRun", files: Sequence[Path], *, id_field="id", text_fields=("text",), image_field=None,
                meta_fields=(), progress: Progress | bool = False, report: IndexReport) -> None:
    from .ingest.files import file_hash
    from .ingest.records import iter_records

    store = run.store
    prog = progress if isinstance(progress, Progress) else Progress(bool(progress), "index", unit="rec")
    batch = Batcher(run, report, max_units=FLUSH_RECORD_UNITS, max_files=FLUSH_RECORD_UNITS, progress=prog)
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
        try:
            for item in iter_records(f, id_field=id_field, text_fields=tuple(text_fields), image_field=image_field,
                                     meta_fields=tuple(meta_fields), config=run.config.ingest,
                                     want_pixels=run.folder.wants_pixels()):
                prog.step(1)
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
            if prog is not progress:
                prog.close()
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
        if engine is not None and records:
            raise PolyseekError(f"the {engine.name} engine indexes files and folders; index records files without it")
        if engine is not None and skip_duplicates:
            raise PolyseekError(f"--skip-duplicates checks each image against the index as it is written; it "
                                f"cannot be combined with the {engine.name} engine")
        paths = check_paths(paths)
        report = IndexReport()
        t0 = time.perf_counter()
        prog = Progress(bool(progress), "index", unit="rec" if records else "file")
        try:
            with self.folder.writer("indexing"):
                if not records:  # what the server may serve files from (serve/api/state.py)
                    roots = self.folder.manifest.setdefault("roots", [])
                    roots.extend(r for r in dict.fromkeys(os.path.realpath(p) for p in paths if os.path.exists(p))
                                 if r not in roots)
                before = self.store.version
                if records:
                    add_records(self, paths, id_field=id_field, text_fields=tuple(text_fields),
                                image_field=image_field, meta_fields=tuple(meta_fields), progress=prog, report=report)
                else:
                    add_files(self, paths, include=tuple(include), exclude=tuple(exclude), progress=prog,
                              skip_duplicates=skip_duplicates, report=report, engine=engine)
                if self.store.version != before:
                    with prog.phase("compact"):
                        self.store.maintain()
                with prog.phase("keyword/ANN upkeep"):
                    self.folder.derived.refresh(force=self.store.version != before)
                self.folder.save_manifest()
        finally:
            prog.close()
        report.phases = dict(prog.seconds)
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, items: Iterable[str]) -> int:
        """Remove assets by id, by file path, or every asset under a folder path. Returns how many."""
        with self.folder.writer("removing files from the index"):
            idx = self.store.asset_index()
            # What an interrupted removal held (finished on entering the writer) still matches: a retry works.
            idx.update({a: {"path": p, "source": p} for a, p in self.folder.finished_removal.items()
                        if p and a not in idx})
            ids: set[str] = set()
            for it in items:
                if it in idx:
                    ids.add(it)
                    continue
                p = os.path.abspath(it)
                hits = [aid for aid, v in idx.items() if v["path"] == p or v["path"].startswith(p.rstrip(os.sep) + os.sep)
                        or v["source"] == p]
                if not hits and not self._forget_unindexed(p):
                    raise NotFoundError(f"{it!r} is neither an asset id nor an indexed, failed or skipped path")
                ids.update(hits)
            n = self.delete_assets(sorted(ids))
            srcs = self.folder.manifest.get("sources", {})
            for s in [s for s in srcs if not self.store.count_units(path=s)]:
                srcs.pop(s)
            self.folder.derived.refresh(force=True)
            self.folder.save_manifest()
            return n

    def _forget_unindexed(self, path: str) -> int:
        """Drop the failure records and skipped entries at or under `path` (a mistyped or deleted path, a file that
        will never index): `remove` clears what `status` lists. How many were dropped."""
        under = path.rstrip(os.sep) + os.sep
        failed = [p for p, _, _ in self.store.failures_list() if p == path or p.startswith(under)]
        self.store.clear_failures(failed)
        skipped = self.folder.manifest.get("skipped", {})
        gone = [p for p in skipped if p == path or p.startswith(under)]
        for p in gone:
            skipped.pop(p)
        return len(failed) + len(gone)

    # -- steps ------------------------------------------------------------------------------------
    def encode_extractions(self, pending: Sequence[Extraction], features=None) -> list[EncodedAsset]:
        return encode_extractions(pending, self.folder.encoder, self.config, features=features)

    def write_batch(self, batch: Sequence[EncodedAsset]) -> None:
        """Local features first, then the store: a kill in between leaves only feature entries whose units
        are not (yet) in the store, which search ignores and the next run overwrites."""
        if self.config.instance:
            ii = self.folder.instance_index()
            self.folder.derived.drop_features({ea.asset.id for ea in batch})
            for ea in batch:
                for uid, feats in ea.local:
                    ii.add(uid, feats)
            fault_point("instance.commit", ii.folder)
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


def encode_extractions(pending: Sequence[Extraction], encoder, config, features=None) -> list[EncodedAsset]:
    """Vectors for every unit (a unit listed in `Extraction.pooled` gets the mean of its members' text
    vectors), local features for the kinds the extractors declare, pixels dropped afterwards. `encoder(role)` gives the
    text or visual encoder, `config` is the IndexConfig: any process holding the models can run it. `features` (a
    FeaturePrefetch) holds local features already under way for some of `pending`; they are collected first, so
    the text encoder does not share the cores with them."""
    feature_kinds = set(instance_kinds()) if config.instance else set()
    local_all = (_local_features(pending, feature_kinds, features) if feature_kinds
                 else [[] for _ in pending])
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
    out, i = [], 0
    for ex, local in zip(pending, local_all):
        n = len(ex.units)
        vecs = {"vec_text": vec_text[i:i + n]}
        if vec_visual is not None:
            vecs["vec_visual"] = vec_visual[i:i + n]
        for u in ex.units:
            u.image = None  # pixels are not stored
        out.append(EncodedAsset(ex.asset, ex.units, vecs, local))
        i += n
    return out

# Per unit kind, options of extract_local_features (else its defaults; docs/benchmarks.md, first contact):
# - PDF page renders are analysed with their long side at 512 pixels instead of 640: SIFT costs about 35% less a
#   page, and finding a page from a screenshot of part of it did not get worse (bench/bench_page_crops.py: Recall@1
#   396 of 454 at 640 and at 512; 480 fell to 386).
# - Corner keypoints (the hard-crop last chance: small crops of photos) are indexed for photos only. PDF pages and
#   figures and video keyframes keep SIFT alone: corners cost about 0.1 s of CPU an image, which would undo most of
#   the PDF ingest speed-up, and their gain was measured on photos only.
FEATURE_OPTIONS: dict[str, dict[str, Any]] = {"page": {"max_side": 512, "corners": 0}, "figure": {"corners": 0},
                                              "frame": {"corners": 0}}


def _unit_features(u):
    """Local features of one unit's pixels, or the FeatureError saying why there are none."""
    from .encode.local import FeatureError, extract_local_features

    try:
        return extract_local_features(u.image, **FEATURE_OPTIONS.get(u.kind, {}))
    except FeatureError as err:
        return err


def _local_features(pending: Sequence[Extraction], kinds: set[str], prefetched=None) -> list[list[tuple[str, Any]]]:
    """Local features of every unit of these kinds that has pixels, per extraction, in unit order: those
    `prefetched` (a FeaturePrefetch) already has under way, the others computed now on the same kind of pool."""
    from .encode.local import FeatureError

    pre = prefetched if prefetched is not None else FeaturePrefetch(kinds)
    try:
        for ex in pending:
            if not pre.submitted(ex):
                pre.submit(ex)
        out: list[list[tuple[str, Any]]] = []
        for ex in pending:
            out.append([])
            for u, feats in pre.take(ex) or []:
                if isinstance(feats, FeatureError):
                    ex.warnings.append(f"no local features for {u.id}: {feats}")
                    continue
                u.meta["pixels"] = [int(u.image.width), int(u.image.height)]  # to map matched boxes back
                out[-1].append((u.id, feats))
        return out
    finally:
        if prefetched is None:
            pre.close()


def encode_texts(encoder, texts: list[str]) -> np.ndarray:
    """Encode non-empty texts, each distinct text once (a figure caption is also its passage's text); empty ones
    get zero vectors (they take no part in dense search)."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    first: dict[str, int] = {}
    rows = [first.setdefault(t, len(first)) if t and t.strip() else -1 for t in texts]
    if first:
        vecs = encoder.encode_documents(list(first))
        keep = [i for i, r in enumerate(rows) if r >= 0]
        out[keep] = vecs[[rows[i] for i in keep]]
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
