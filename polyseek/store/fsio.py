"""Writes to the index folder that fail for lack of room or permission: classify, clean up, say what to do.

Every write path (the LanceDB commit with its thumbnails, the keyword, ANN, instance and hash indexes, the
manifest, the lock) runs inside `storage_guard`, which turns ENOSPC/EDQUOT into DiskFullError and
EROFS/EACCES/EPERM into ReadOnlyError with one line that names the folder and the next step. Numpy and Lance
report a full disk without an errno ("N requested and M written", "LanceError(IO)"), so the message and, last,
the file system's own free space and read-only flag decide.

`fault_point(name)` is a named point on a write path where tests and bench/bench_chaos.py inject faults as SQLite's
test harness does: with POLYSEEK_FAULT=name:kill the process SIGKILLs itself there; with name:ENOSPC (or EROFS,
EACCES, EDQUOT) the write fails there with that OS error. Unset (always, outside tests), it is one dict lookup.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path

from ..errors import DiskFullError, ReadOnlyError, StorageError

FAULT_ENV = "POLYSEEK_FAULT"
FULL = {_errno.ENOSPC, _errno.EDQUOT}
READ_ONLY = {_errno.EROFS, _errno.EACCES, _errno.EPERM}
_FULL_TEXT = re.compile(r"no space left|disk quota|requested and \d+ written|ENOSPC|EDQUOT|os error 28\b|"
                        r"os error 122\b", re.I)
_RO_TEXT = re.compile(r"read-only file system|permission denied|EROFS|EACCES|os error 30\b|os error 13\b", re.I)
LOW_SPACE = 1 << 20  # below this many free bytes an errno-less write failure is taken for a full disk


def fault_point(name: str, path: str | os.PathLike | None = None) -> None:
    """Inject the fault named by $POLYSEEK_FAULT if it is for this point (see the module docstring)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, action = spec.partition(":")
    if point != name:
        return
    if action in ("", "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    code = getattr(_errno, action, None)
    if not isinstance(code, int):
        raise ValueError(f"{FAULT_ENV}={spec!r}: unknown fault {action!r}; use kill or an errno name such as ENOSPC")
    raise OSError(code, os.strerror(code), str(path) if path is not None else None)


def classify(exc: BaseException, folder: str | os.PathLike) -> str | None:
    """'full', 'read-only' or None (not a storage problem) for an exception raised while writing under `folder`."""
    code = getattr(exc, "errno", None)
    name = getattr(exc, "filename", None)
    if isinstance(name, str) and not os.path.abspath(name).startswith(os.path.abspath(folder)):
        return None  # a file outside the index (a source file being read) is not the index's storage
    if code in FULL:
        return "full"
    if code in READ_ONLY:
        return "read-only"
    text = str(exc)
    if _FULL_TEXT.search(text):
        return "full"
    if _RO_TEXT.search(text):
        return "read-only"
    if not isinstance(exc, OSError) and "LanceError(IO)" not in text:
        return None
    try:  # an errno-less I/O error: ask the file system itself
        st = os.statvfs(_existing(folder))
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return "read-only"
    if st.f_bavail * st.f_frsize < LOW_SPACE:
        return "full"
    return None


def _existing(folder: str | os.PathLike) -> str:
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return str(p)


def storage_error(kind: str, folder: str | os.PathLike, doing: str, exc: BaseException) -> StorageError:
    """One line: what failed, why, that nothing committed was lost, and what to do."""
    code = getattr(exc, "errno", None)
    if kind == "full":
        return DiskFullError(
            f"the disk holding {folder} is full ({os.strerror(code or _errno.ENOSPC)}) while {doing}; what was "
            f"committed before is kept and searchable. Free some space and run the same command again",
            path=str(folder), errno=code or _errno.ENOSPC)
    why = os.strerror(code) if code in READ_ONLY else "read-only file system or no permission"
    return ReadOnlyError(
        f"cannot write to {folder} ({why}) while {doing}; the index can still be searched. Make the folder "
        f"writable, or index into another folder with --index", path=str(folder), errno=code)


@contextmanager
def storage_guard(folder: str | os.PathLike, doing: str, cleanup=None):
    """Translate a full disk or a read-only folder under `folder` into a StorageError, after `cleanup()` (which
    removes partial files; its own failures are ignored, the first error is the one to report)."""
    try:
        yield
    except StorageError:
        _run_cleanup(cleanup)
        raise
    except (OSError, RuntimeError, ValueError) as e:
        kind = classify(e, folder)
        if kind is None:
            raise
        _run_cleanup(cleanup)
        raise storage_error(kind, folder, doing, e) from e


def _run_cleanup(cleanup) -> None:
    if cleanup is None:
        return
    try:
        cleanup()
    except (OSError, RuntimeError, ValueError):
        pass  # on a read-only or full disk the cleanup may fail too; the commit protocol kept the old state


def remove_partial_files(folder: str | os.PathLike, patterns: tuple[str, ...]) -> int:
    """Delete files matching any glob in `patterns` directly in `folder` (interrupted temp files); how many."""
    n = 0
    for pat in patterns:
        for p in Path(folder).glob(pat):
            try:
                if p.is_dir():
                    import shutil

                    shutil.rmtree(p)
                else:
                    p.unlink()
                n += 1
            except FileNotFoundError:
                pass
    return n


def printable_path(path: str) -> str:
    """`path` as valid UTF-8 text: bytes that are not UTF-8 (surrogate-escaped by Python) are shown as \\xNN."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
