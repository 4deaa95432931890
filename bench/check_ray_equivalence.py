"""Check that `polyseek index --ray` builds the same index as a local run: same assets (ids, hashes), same units
(ids, kinds, pages, text), same failures, and the same top-5 for 10 queries.

Usage:
    python bench/check_ray_equivalence.py examples
    python bench/check_ray_equivalence.py ../shared/bench/pdf-corpus/corpus --ray-cpus 2 --no-instance

Prints a table (and writes it to docs/benchmarks.md unless --no-write). Queries: given with --query, else the
10 most frequent longer words of the indexed text, each searched alone (hybrid search, k=5).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import tempfile
from pathlib import Path

from common import Timer, emit, load_avg, machine_line, quiet_logs, table, verdict


def contents(idx):
    store = idx.folder.store
    assets = {a: v["hash"] for a, v in store.asset_index().items()}
    t = store.scan_units(["id", "kind", "page", "text"])
    units = sorted(zip(*(t.column(c).to_pylist() for c in ("id", "kind", "page", "text"))))
    return assets, units, sorted((p, r) for p, r, _ in store.failures_list())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--no-instance", action="store_true")
    ap.add_argument("--query", action="append", default=[])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import polyseek
    from polyseek.config import IndexConfig
    from polyseek.scale.ray_ingest import RayEngine

    folder = Path(args.folder).resolve()
    cfg = IndexConfig(instance=not args.no_instance)
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-ray-eq-"))
    load_start = load_avg()
    try:
        with quiet_logs():
            local = polyseek.open(tmp / "local", cfg)
            with Timer() as t_local:
                local.add([folder])
            ray_idx = polyseek.open(tmp / "ray", cfg)
            with Timer() as t_ray:
                ray_idx.add([folder], engine=RayEngine(num_cpus=args.ray_cpus))
        a1, u1, f1 = contents(local)
        a2, u2, f2 = contents(ray_idx)
        queries = args.query
        if not queries:
            words = collections.Counter(w.lower() for _, _, _, text in u1 for w in re.findall(r"[A-Za-z]{6,}", text or ""))
            queries = [w for w, _ in words.most_common(10)]
        same_top = sum([h.asset.id for h in local.search(q, k=5)] == [h.asset.id for h in ray_idx.search(q, k=5)]
                       for q in queries)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [["assets (id, content hash)", f"{len(a1)} local, {len(a2)} Ray", verdict(a1 == a2)],
            ["units (id, kind, page, text)", f"{len(u1)} local, {len(u2)} Ray", verdict(u1 == u2)],
            ["failures (path, reason)", f"{len(f1)} local, {len(f2)} Ray", verdict(f1 == f2)],
            [f"same top-5 ({len(queries)} queries)", f"{same_top}/{len(queries)}", verdict(same_top == len(queries))],
            ["run seconds (local / Ray incl. start-up)", f"{t_local.s:.0f} / {t_ray.s:.0f}", "–"]]
    name = folder.name if folder.name != "corpus" else folder.parent.name
    head = (f"`python bench/check_ray_equivalence.py {args.folder} --ray-cpus {args.ray_cpus}"
            f"{' --no-instance' if args.no_instance else ''}`.  \n"
            f"Machine: {machine_line(['polyseek', 'ray', 'lancedb'])}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end. Queries: {', '.join(queries)}.")
    emit(f"ray-equivalence-{name}", f"Ray run vs local run: {name}", [head, table(["check", "measured", "verdict"], rows)],
         write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
