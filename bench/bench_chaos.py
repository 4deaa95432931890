"""Chaos benchmark: SIGKILL `index` and `remove` runs at random moments and at each commit point, then count what
a user would lose.

A corpus of text files, each with a word no other file has, and a symlinked folder that leads out of the root to
a secret. A base index holds folder `a/`; each trial copies it, then runs in a child process either `index` of
folder `b/` or `remove` of `a/sub/`, killed with SIGKILL at a named fault point (POLYSEEK_FAULT=point:kill, see
polyseek/store/fsio.py) or after a random delay. Then, before any rerun, it checks that the index opens and that
every asset with a committed row is the top BM25 hit for its word (else: unsearchable); it reruns the command
and counts files lost (should be indexed, not found), duplicated (unit ids or paths twice) and ghosts (removed,
still found); and it asks the server's file check (`AppState.safe_file`, what GET /assets/{id}/file uses) for
every asset, counting files it would serve from outside the indexed root.

    python bench/bench_chaos.py --random 8          # 9 phase trials + 8 random kills
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit, load_avg, machine_line, table

INDEX_POINTS = ["store.units", "store.assets", "instance.commit", "keyword.save", "manifest.save"]
REMOVE_POINTS = ["store.journal", "store.between_deletes", "keyword.save", "manifest.save"]
SECRET = "zqxsecretvw"
CHILD = {"index": "import polyseek, sys; polyseek.open(sys.argv[1]).add([sys.argv[2]])",
         "remove": "import polyseek, sys; polyseek.open(sys.argv[1]).remove([sys.argv[2]])"}


def word(i: int) -> str:
    return "zqx" + "".join(chr(ord("a") + int(d)) for d in f"{i:04d}") + "vw"


def make_corpus(root: Path, n: int) -> dict[str, str]:
    """n files in a/ (a quarter in a/sub/) and n in b/; path -> word. Plus linkdir -> outside (a secret)."""
    words = {}
    for i in range(2 * n):
        folder = root / "docs" / ("a" if i < n else "b") / ("sub" if i < n // 4 else "")
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"f{i:04d}.txt"
        p.write_text(f"note {i} about the harbour mentions {word(i)} once\n")
        words[str(p)] = word(i)
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text(f"{SECRET} must never be served\n")
    os.symlink(root / "outside", root / "docs" / "a" / "linkdir")
    return words


def child(op: str, index: Path, target: Path, fault: str | None, kill_after: float | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("POLYSEEK_FAULT", None)
    if fault:
        env["POLYSEEK_FAULT"] = f"{fault}:kill"
    p = subprocess.Popen([sys.executable, "-c", CHILD[op], str(index), str(target)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after is not None:
        try:
            p.wait(kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
    return p.wait()


def check(index: Path, root: Path, words: dict[str, str], expected: set[str], removed: set[str]):
    """(opens, unsearchable, lost, duplicated, ghosts, served outside) of the index as it is now."""
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.errors import PolyseekError
    from polyseek.serve.api import ServeConfig
    from polyseek.serve.api.errors import ApiError
    from polyseek.serve.api.state import AppState

    bm25 = SearchConfig(signals=("bm25",))
    try:
        idx = polyseek.open(index, create=False)
        assets = idx.store.asset_index()
    except (PolyseekError, OSError, RuntimeError, ValueError):
        return False, None, None, None, None, None

    def top(w):
        hits = idx.search(w, k=1, config=bm25)
        return hits[0].asset.path if hits else None

    unsearchable = sum(1 for v in assets.values() if v["path"] in words and top(words[v["path"]]) != v["path"])
    lost = sum(1 for p in expected if top(words[p]) != p)
    ghosts = sum(1 for p in removed if top(words[p]) == p)
    ids = idx.store.scan_units(["id"]).column("id").to_pylist()
    paths = [v["path"] for v in assets.values()]
    duplicated = (len(ids) - len(set(ids))) + (len(paths) - len(set(paths)))
    state = AppState(ServeConfig(index=index))
    outside, real_root = 0, os.path.realpath(root / "docs")
    for aid in list(assets) + ["linkdir/secret"]:
        try:
            served = str(state.safe_file(state.asset(aid)))
        except (ApiError, PolyseekError):
            continue
        if not served.startswith(real_root + os.sep) or SECRET in Path(served).read_text(errors="replace"):
            outside += 1
    state.close()
    idx.close()
    return True, unsearchable, lost, duplicated, ghosts, outside


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24, help="files per folder (a/ and b/)")
    ap.add_argument("--random", type=int, default=6, help="random-time kills (half index, half remove)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    load0 = load_avg()
    import polyseek
    from polyseek.config import IndexConfig, IngestConfig

    work = Path(tempfile.mkdtemp(prefix="polyseek-chaos-"))
    try:
        words = make_corpus(work, args.files)
        docs = work / "docs"
        base = work / "base"
        base_idx = polyseek.open(base, IndexConfig(ingest=IngestConfig(ocr=False)))
        base_idx.add([docs / "a"])
        base_idx.close()
        a = {p for p in words if "/a/" in p}
        b = {p for p in words if "/b/" in p}
        sub = {p for p in a if "/a/sub/" in p}
        t0 = time.perf_counter()
        child("index", shutil.copytree(base, work / "timing"), docs / "b", None, None)
        full = time.perf_counter() - t0  # an unkilled child run: the window random kills fall in
        trials = [("index", f"at {pt}", pt, None) for pt in INDEX_POINTS]
        trials += [("remove", f"at {pt}", pt, None) for pt in REMOVE_POINTS]
        trials += [(op, "random", None, rng.uniform(0.3, full)) for op in ("index", "remove")
                   for _ in range(args.random // 2)]
        rows: dict = {}
        for n, (op, kind, point, after) in enumerate(trials):
            index = shutil.copytree(base, work / f"t{n}")
            target = docs / "b" if op == "index" else docs / "a" / "sub"
            rc = child(op, index, target, point, after)
            ok, unsearchable, *_ = check(index, work, words, set(), set())
            child(op, index, target, None, None)  # the rerun
            expected, removed = (a | b, set()) if op == "index" else (a - sub, sub)
            ok2, _, lost, dup, ghosts, outside = check(index, work, words, expected, removed)
            vals = [1, int(rc == -signal.SIGKILL), int(ok), unsearchable or 0, lost or 0, dup or 0, ghosts or 0,
                    outside or 0]
            key = (op, kind)
            rows[key] = [x + y for x, y in zip(rows.get(key, [0] * 8), vals)]
            print(f"trial {n}: {op} {kind}{'' if after is None else f' after {after:.1f}s'}: rc {rc}, opens {ok}, "
                  f"unsearchable {unsearchable}, lost {lost}, duplicated {dup}, ghosts {ghosts}, outside {outside}",
                  flush=True)
            shutil.rmtree(index, ignore_errors=True)
        body = [[op, kind, *v] for (op, kind), v in rows.items()]
        tot = [sum(r[i] for r in rows.values()) for i in range(8)]
        body.append(["**all**", "", *tot])
        head = ["run", "killed", "trials", "died by SIGKILL", "opens after kill", "unsearchable before rerun",
                "lost after rerun", "duplicated", "removed but found", "served outside roots"]
        parts = [f"`python bench/bench_chaos.py --files {args.files} --random {args.random}` on "
                 f"{machine_line(['lancedb', 'pylance'])}; load {load0} at start, {load_avg()} at end. "
                 f"{args.files} files in each of two folders, one symlinked folder leading out of the root to a "
                 f"secret. A random kill falls in the first {full:.0f} s (one unkilled run); a kill before the "
                 f"first commit, or after the last, is still a trial.",
                 table(head, body),
                 "Unsearchable: an asset with a committed row that is not the top BM25 hit for its unique word, "
                 "read before any rerun. Lost: a file the rerun should have indexed (or kept) that is not found. "
                 "Served outside roots: an asset file (or the secret behind the symlinked folder) that the "
                 "server's file check would serve from outside the indexed folder."]
        emit("chaos", "Kills during index and remove (chaos)", parts, write=not args.no_write)
        return 0 if tot[4] == 0 and tot[7] == 0 and tot[3] == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
