"""Run every benchmark script with its default flags; each rewrites its own section of docs/benchmarks.md.

Usage:
    python bench/run_all.py                    # all scripts, defaults (each bounded to minutes)
    python bench/run_all.py text scale         # only these (names: file names without bench_ and .py)
    python bench/run_all.py --args scale="--scales 10k,100k"   # extra flags for one script

Scripts run one after another, never side by side, so they do not slow each other down. A script that
fails is reported and the others still run; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Order: cheap first. bench_instance and bench_serve belong to the same suite and write their own sections.
ORDER = ["text", "ingest", "scale", "instance", "serve"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"scripts to run (default: all of {', '.join(ORDER)} that exist)")
    ap.add_argument("--args", action="append", default=[], metavar="NAME=FLAGS", help="extra flags for one script")
    args = ap.parse_args(argv)
    extra: dict[str, list[str]] = {}
    for a in args.args:
        name, _, flags = a.partition("=")
        extra[name] = shlex.split(flags)
    known = [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    known += sorted(p.stem[6:] for p in HERE.glob("bench_*.py") if p.stem[6:] not in known)
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
    failed = []
    for name in names:
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *extra.get(name, [])]
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        t = time.perf_counter()
        rc = subprocess.call(cmd, cwd=str(HERE.parent))
        print(f"=== bench_{name}: exit {rc} after {time.perf_counter() - t:.0f}s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
