"""Finding files to index and turning one file into an Extraction with errors a person can read.

`discover` walks folders deterministically and reports (not raises) links it cannot follow; `extract_file`
sniffs the real type and dispatches to the registered extractor, converting OS and library errors to IngestError.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from ..errors import IngestError, MissingDependencyError
from ..types import Extraction
from .base import ExtractContext, extractors
from .detect import detect, kinds, supported_suffixes

_SKIP_DIRS = {"__pycache__", "node_modules"}  # plus every hidden folder (.git, .polyseek, ...)
OUTSIDE_ROOT = "symlink leads outside the indexed folder"


def _matches(rel: str, name: str, patterns: Iterable[str]) -> bool:
    for pat in patterns:
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(name, pat) or PurePosixPath(rel).match(pat):
            return True
    return False


def discover(paths: Iterable[str | os.PathLike] | str | os.PathLike, include: Iterable[str] = (),
             exclude: Iterable[str] = ()) -> Iterator[Path | tuple[Path, str]]:
    """Yield the files under `paths` (files or folders, walked recursively) in sorted order.

    `include`/`exclude` are globs matched against the path relative to the given root and against the file name;
    with `include` given only matching files are yielded. Hidden folders (.git, .polyseek) are skipped. Symlinks
    are followed while they stay inside the given folder; one that leads out of it yields `(path, OUTSIDE_ROOT...)`
    and is not followed (the server serves files from the indexed folders only, so they would be unusable and
    leak what lies elsewhere). Symlink loops, dangling links and things that are not regular files yield
    `(path, reason)`.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    include, exclude = tuple(include), tuple(exclude)
    seen_dirs: set[tuple[int, int]] = set()
    for root in paths:
        root = Path(root)
        problem = _link_problem(root)
        if problem:
            yield root, problem
            continue
        if root.is_dir():
            yield from _walk(root, root, include, exclude, seen_dirs, os.path.realpath(root))
        elif root.exists():
            yield from _emit_file(root, root.name, include, exclude)
        else:
            yield root, "no such file or folder"


def _link_problem(path: Path) -> str | None:
    """Why a path (possibly a symlink) cannot be followed, or None."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno == errno.ENOENT:
            return "dangling symlink" if path.is_symlink() else "no such file or folder"
        if exc.errno == errno.EACCES:
            return "permission denied"
        return exc.strerror or str(exc)
    return None


def _emit_file(path: Path, rel: str, include, exclude) -> Iterator[Path | tuple[Path, str]]:
    if include and not _matches(rel, path.name, include):
        return
    if exclude and _matches(rel, path.name, exclude):
        return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        yield path, _os_reason(exc)
        return
    if not stat.S_ISREG(mode):
        yield path, "not a regular file"
        return
    yield path


def _walk(folder: Path, root: Path, include, exclude, seen: set[tuple[int, int]], real_root: str):
    try:
        st = folder.stat()
    except OSError as exc:
        yield folder, _os_reason(exc)
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:  # a symlinked folder pointing back up the tree
        yield folder, "symlink loop"
        return
    seen.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield folder, _os_reason(exc)
        return
    for entry in entries:
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        problem = _link_problem(path) if entry.is_symlink() else None
        if entry.is_symlink() and not problem:
            target = os.path.realpath(path)
            if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
                problem = f"{OUTSIDE_ROOT} (to {target}); not followed"
        if problem:
            if not (include and not _matches(rel, entry.name, include)) and not _matches(rel, entry.name, exclude):
                yield path, problem
            continue
        if entry.is_dir():
            if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                continue
            if exclude and _matches(rel, entry.name, exclude):
                continue
            yield from _walk(path, root, include, exclude, seen, real_root)
        else:
            if entry.name.startswith("."):
                continue
            yield from _emit_file(path, rel, include, exclude)


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "file not found (deleted or dangling symlink)"
    if exc.errno == errno.EISDIR:
        return "is a folder, not a file"
    return f"cannot read file: {exc.strerror or exc}"


def extractor_name(kind: str) -> str:
    """The registry name of the extractor that declared the detected format `kind`."""
    return kinds()[kind][2]


def extract_file(path: str | os.PathLike, ctx: ExtractContext) -> Extraction:
    """Detect the type of `path` and run the matching extractor; every failure is an IngestError with a reason.

    The file must be a regular file (FIFOs, devices and folders are refused without being opened) no larger than
    `ctx.config.max_file_bytes`. Missing optional packages raise MissingDependencyError (a setup problem, not a
    bad file).
    """
    path = Path(path)
    with _translated(path):
        result = _extractor_for(path, ctx).extract(path, ctx)
    result.asset.hash = result.asset.hash or ctx.file_hash
    return result


def stream_file(path: str | os.PathLike, ctx: ExtractContext) -> Iterator[Extraction]:
    """As `extract_file`, as the extractor's parts (see `Extractor.stream`); the last part has `final=True`."""
    path = Path(path)
    with _translated(path):
        parts = _extractor_for(path, ctx).stream(path, ctx)
    while True:
        with _translated(path):
            part = next(parts, None)
        if part is None:
            return
        part.asset.hash = part.asset.hash or ctx.file_hash
        yield part


def _extractor_for(path: Path, ctx: ExtractContext):
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise IngestError("is a folder, not a file" if stat.S_ISDIR(st.st_mode) else "not a regular file",
                          path=str(path))
    if st.st_size > ctx.config.max_file_bytes:
        raise IngestError(f"file is {st.st_size / 2**20:.0f} MiB, over the limit of "
                          f"{ctx.config.max_file_bytes / 2**20:.0f} MiB (set ingest.max_file_bytes)", path=str(path))
    kind = detect(path)
    extractor = extractors.get(extractor_name(kind))()
    if not ctx.file_hash:
        ctx.file_hash = file_hash(path)
    return extractor


@contextmanager
def _translated(path: Path):
    """OS and decoder-library errors raised inside become IngestErrors that name the file and say why."""
    try:
        yield
    except IngestError as exc:
        if exc.path is None:
            raise type(exc)(exc.reason, path=str(path)) from exc
        raise
    except MissingDependencyError:
        raise
    except OSError as exc:
        raise IngestError(_os_reason(exc), path=str(path)) from exc
    except (ValueError, RuntimeError, EOFError, struct.error, zlib.error) as exc:
        # Decoder libraries (Pillow plugins, pdfium) signal malformed input with these; name the file type.
        raise IngestError(f"cannot read {path.suffix.lower() or 'file'} file: {type(exc).__name__}: {exc}",
                          path=str(path)) from exc
    except MemoryError as exc:
        raise IngestError("out of memory while reading the file", path=str(path)) from exc


__all__ = ["discover", "file_hash", "extract_file", "stream_file", "supported_suffixes"]
