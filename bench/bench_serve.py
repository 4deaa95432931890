"""Load benchmark for `polyseek serve`: concurrent clients for a bounded time while an index run adds files.

Starts a real server on loopback over a fresh copy of an index (default: examples/ indexed into a temp folder),
runs N client threads (httpx) doing searches, asset/thumbnail/page fetches, and one writer thread that adds
files through POST /index the whole time. Prints requests/s, p50/p95/p99 latency per endpoint, and errors.

    python bench/bench_serve.py --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

QUERIES = ["invoice total", "solar panel efficiency", "street sign", "quarterly sales chart", "sourdough starter",
           "coral bleaching", "meteor shower", "bicycle chain", "honey", "temperature coefficient"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--examples", default=str(Path(__file__).resolve().parents[1] / "examples"))
    ap.add_argument("--new-files", type=int, default=40, help="Markdown files the writer adds, a few at a time")
    args = ap.parse_args()

    import httpx
    import uvicorn

    import polyseek
    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.serve.api import ServeConfig, create_app

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        print(f"indexing {args.examples} into {work}/index (no OCR) ...", file=sys.stderr)
        idx = polyseek.open(work / "index", IndexConfig(ingest=IngestConfig(ocr=False)))
        idx.add([args.examples])
        idx.close()
        incoming = work / "incoming"
        incoming.mkdir()
        words = " ".join(QUERIES).split()
        rng = random.Random(0)
        for i in range(args.new_files):
            body = " ".join(rng.choice(words) for _ in range(120))
            (incoming / f"note-{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")

        port = free_port()
        app = create_app(ServeConfig(index=work / "index", allow_roots=(incoming,)))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assets = httpx.get(base + "/assets?limit=100").json()["assets"]
        pdfs = [a["id"] for a in assets if a["type"] == "pdf"]
        images = [a["id"] for a in assets if a["type"] == "image"]

        lat: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        examples_of_errors: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def record(kind, t0, r=None, exc=None):
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                if exc is not None or r.status_code >= 400:
                    errors[kind] += 1
                    if len(examples_of_errors) < 5:
                        examples_of_errors.append(f"{kind}: {exc or (r.status_code, r.text[:200])}")
                else:
                    lat[kind].append(dt)

        def client(seed):
            rnd = random.Random(seed)
            with httpx.Client(base_url=base, timeout=60) as c:
                while time.monotonic() < stop:
                    roll = rnd.random()
                    t0 = time.perf_counter()
                    try:
                        if roll < 0.6:
                            kind = "search"
                            r = c.post("/search", json={"text": rnd.choice(QUERIES), "k": 10})
                        elif roll < 0.75 and images:
                            kind = "thumbnail"
                            r = c.get(f"/assets/{rnd.choice(images)}/thumbnail")
                        elif roll < 0.9 and pdfs:
                            kind = "pdf-page"
                            r = c.get(f"/assets/{rnd.choice(pdfs)}/file", params={"page": 1, "width": 360})
                        else:
                            kind = "status"
                            r = c.get("/status")
                        record(kind, t0, r)
                    except httpx.HTTPError as e:
                        record(kind, t0, exc=e)

        indexed = [0]

        def writer():
            files = sorted(incoming.iterdir())
            with httpx.Client(base_url=base, timeout=300) as c:
                for i in range(0, len(files), 4):
                    if time.monotonic() >= stop:
                        break
                    t0 = time.perf_counter()
                    try:
                        r = c.post("/index", json={"paths": [str(f) for f in files[i:i + 4]]})
                        record("index", t0, r)
                        if r.status_code == 200:
                            indexed[0] += r.json()["indexed"]
                    except httpx.HTTPError as e:
                        record("index", t0, exc=e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        threads.append(threading.Thread(target=writer))
        t_start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t_start
        server.should_exit = True
        t.join(10)

        total = sum(len(v) for v in lat.values())
        n_err = sum(errors.values())
        print(f"\n{args.clients} clients for {wall:.1f} s, writer added {indexed[0]} file(s) meanwhile")
        print(f"{'endpoint':<10} {'ok':>7} {'err':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for kind in sorted(set(lat) | set(errors)):
            xs = lat[kind]
            print(f"{kind:<10} {len(xs):>7} {errors[kind]:>5} {len(xs) / wall:>8.1f} {pct(xs, 50):>8.1f} "
                  f"{pct(xs, 95):>8.1f} {pct(xs, 99):>8.1f}")
        allx = [x for k, v in lat.items() if k != "index" for x in v]
        print(f"{'all reads':<10} {len(allx):>7} {n_err:>5} {len(allx) / wall:>8.1f} {pct(allx, 50):>8.1f} "
              f"{pct(allx, 95):>8.1f} {pct(allx, 99):>8.1f}")
        print(f"\nrequests/s {total / wall:.1f}   p50 {statistics.median(allx) if allx else float('nan'):.1f} ms   "
              f"p95 {pct(allx, 95):.1f} ms   errors {n_err}")
        for e in examples_of_errors:
            print("  error:", e)
        return 1 if n_err else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
