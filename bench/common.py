"""Shared helpers for the benchmark scripts: paths, machine facts, load, timers, percentiles, tables, and
writing one script's section of docs/benchmarks.md between `<!-- bench:NAME -->` markers.

Timings on a shared machine are noisy: every table carries the load average it was measured under, and
every figure that matters sits next to a peer measured in the same run, so ratios survive the noise.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata as _md
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO.parent / "shared" / "bench"  # shared/ is the sibling of the repo root
DOC = REPO / "docs" / "benchmarks.md"

# Run as `python bench/x.py` without installing the package. POLYSEEK_TREE points a benchmark's child process at
# another checkout's package (an A/B of two versions on one index, e.g. bench_scale.py --compare-tree).
_TREE = os.environ.get("POLYSEEK_TREE") or str(REPO)
if _TREE not in sys.path:
    sys.path.insert(0, _TREE)

DOC_HEADER = """# Benchmarks

Regenerate with `python bench/run_all.py` (each script also rewrites its own section when run alone).
How to run each script, what the peers are and what the targets are: `bench/README.md`.
Every table names the machine, the date and the load average (1, 5, 15 min) it was measured under; on a shared
machine absolute timings drift with load, so read the ratios to the peer measured in the same run.
"""


def bench_dir(name: str, override: str | None = None) -> Path:
    """The benchmark set `name` under shared/bench (or the folder given with --bench)."""
    p = Path(override) if override else SHARED_BENCH / name
    if not p.exists():
        raise SystemExit(f"benchmark set {p} not found; pass --bench PATH")
    return p


def load_avg() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


def versions(pkgs: Iterable[str]) -> str:
    out = []
    for p in pkgs:
        try:
            out.append(f"{p} {_md.version(p)}")
        except _md.PackageNotFoundError:
            out.append(f"{p} (missing)")
    return ", ".join(out)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_line(pkgs: Sequence[str] = ()) -> str:
    """One line naming the machine, date, commit and library versions; printed above each table."""
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    s = (f"{os.cpu_count()} cores ({_cpu_model()}), {_mem_gib():.0f} GiB RAM, Python {platform.python_version()}, "
         f"{now}, commit {git_commit()}")
    if pkgs:
        s += f"; {versions(pkgs)}"
    return s


class Timer:
    """`with Timer() as t: ...` then `t.s` (seconds, wall clock)."""

    def __init__(self):
        self.s = 0.0

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.s = 0.0
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


def time_calls(fn, items: Sequence, warmup: int = 3) -> np.ndarray:
    """Milliseconds per call of fn(item), after `warmup` untimed calls on the first items."""
    for it in items[:warmup]:
        fn(it)
    out = np.empty(len(items))
    for i, it in enumerate(items):
        t = time.perf_counter()
        fn(it)
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def pct(ms: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(ms, dtype=float), q)) if len(ms) else float("nan")


def p50_95_99(ms: Sequence[float]) -> tuple[float, float, float]:
    return pct(ms, 50), pct(ms, 95), pct(ms, 99)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far. Linux: VmHWM, which exec resets; ru_maxrss is not reset by
    exec, so a child forked from a large parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if v != v:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table (readable as plain text on a terminal too)."""
    cells = [[fmt(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in docs/benchmarks.md
    (appending the section if it is new), under a file lock so scripts run side by side do not clobber
    each other's sections."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    lock = Path(tempfile.gettempdir()) / f"polyseek-bench-{hashlib.sha1(str(doc.resolve()).encode()).hexdigest()[:12]}.lock"  # not in the repo
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        text = doc.read_text() if doc.exists() else DOC_HEADER
        if start in text and end in text:
            i, j = text.index(start), text.index(end) + len(end)
            text = text[:i] + block + text[j:]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        tmp = doc.with_name(f".{doc.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, doc)


@contextlib.contextmanager
def quiet_logs():
    """Silence chatty library loggers and progress bars while timing."""
    import logging
    import warnings

    old = logging.root.level
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
            logging.root.setLevel(old)


def emit(name: str, title: str, parts: Sequence[str], write: bool = True) -> None:
    """Print a section and write it into docs/benchmarks.md."""
    body = f"## {title}\n\n" + "\n\n".join(p.strip() for p in parts)
    print(body, flush=True)
    if write:
        write_section(name, body)
        print(f"\n(wrote section '{name}' of {DOC.relative_to(REPO)})", flush=True)
