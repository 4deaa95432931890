"""Cold-start CLI latency: `polyseek search "invoice total" --json` as a fresh process, ONNX Runtime vs torch.

Usage:
    python bench/bench_cli.py [--runs 7]

Indexes examples/ (pdfs and articles, OCR off) twice: with the default text encoder (int8 MiniLM on ONNX Runtime)
and with the fp32 "minilm" that every index had before issue 10. Then runs the command `--runs` times on the
default index (no torch import) and as many times on the fp32 index with POLYSEEK_TEXT_RUNTIME=torch (the
sentence-transformers path every CLI call took before issue 10), interleaved, in one run. Reports the median wall
time and CPU time of each, whether torch was imported, and the top hit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit, load_avg, machine_line, table


def one(index: Path, runtime: str | None) -> tuple[float, float, bool, str]:
    env = {**os.environ}
    env.pop("POLYSEEK_TEXT_RUNTIME", None)
    if runtime:
        env["POLYSEEK_TEXT_RUNTIME"] = runtime
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "polyseek.serve.cli.main", "search", "invoice total",
                        "--index", str(index), "--json"], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    torch = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in p.stderr.splitlines()
                if line.startswith("import time:"))
    return wall, cpu, torch, json.loads(p.stdout)["hits"][0]["asset"]["id"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-cli-"))
    try:
        for sub in ("pdfs", "articles"):
            shutil.copytree(REPO / "examples" / sub, tmp / "examples" / sub)
        for name, encoder in (("idx", []), ("idx-fp32", ["--text-encoder", "minilm"])):
            subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "index", str(tmp / "examples"), "--index",
                            str(tmp / name), "--no-ocr", "--no-progress", *encoder], check=True, capture_output=True)
        res: dict[str, list] = {"onnx": [], "torch": []}
        for _ in range(args.runs):  # interleaved, so load drift hits both alike
            res["onnx"].append(one(tmp / "idx", None))
            res["torch"].append(one(tmp / "idx-fp32", "torch"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, label in (("torch", "before: sentence-transformers (torch) at query time"),
                        ("onnx", "default: int8 MiniLM on ONNX Runtime, exported model cached")):
        r = res[name]
        rows.append([label, statistics.median(x[0] for x in r), statistics.median(x[1] for x in r),
                     "yes" if any(x[2] for x in r) else "no", r[0][3]])
    ratio = rows[0][1] / rows[1][1]
    head = (f"`python bench/bench_cli.py --runs {args.runs}`: `python -X importtime -m polyseek.serve.cli.main search "
            f"\"invoice total\" --index DIR --json` as a fresh process each time, the two runtimes interleaved.  \n"
            f"Machine: {machine_line(['polyseek', 'onnxruntime', 'torch', 'sentence-transformers'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end. Median wall: {ratio:.1f}x faster.")
    emit("cli", "CLI cold start (search)", [head, table(["path", "median wall s", "median CPU s", "imports torch",
                                                          "top hit"], rows)], write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
