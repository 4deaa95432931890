"""GPU ingest: JPEG files → vectors in the store, beside the model-only limit measured in the same run.

Usage (one command, on a machine with a CUDA GPU and torchvision matching its torch):
    python bench/bench_gpu_ingest.py --device cuda                  # 50,000 JPEGs, ViT-B/32, batch 1024
    python bench/bench_gpu_ingest.py --device cuda --model vit-l-14 # the large tower
    python bench/bench_gpu_ingest.py --device cpu --images 64 --batch 16 --no-write   # smoke run of the same path

The vision tower is the real architecture (transformers `CLIPVisionModelWithProjection` from a ViT-B/32 or
ViT-L/14 config) with RANDOMLY INITIALISED weights: no weights can be downloaded here, and throughput does not
depend on the weights. Inputs are JPEGs written by this script (distinct textured images, 640x480 like COCO
photos, quality 90, then copied to reach --images files). The full path is `polyseek.scale.gpu_ingest.ingest_jpegs`:
threads read and hash the files, nvJPEG decodes them in batches on the GPU (torchvision.io.decode_jpeg; Pillow
when torchvision is missing, and the table says so), resize + centre crop + normalise run on the GPU, the tower
runs in fp16, and a writer thread commits assets and vectors to a LanceDB store in batches.
The model-only limit: the same tower on random fp16 pixel batches already on the GPU.

Target (issue 14) on one H200 with ViT-B/32: >= 15,000 images/s from files to the store, > 50% of model-only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import Timer, emit, load_avg, machine_line, quiet_logs, table, verdict

MODELS = {
    "vit-b-32": {},  # VisionTower.random's defaults: openai/clip-vit-base-patch32's vision config
    "vit-l-14": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                 "patch_size": 14, "projection_dim": 768},
}


def make_jpegs(folder: Path, n: int, unique: int, size=(640, 480)) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = []
    for i in range(min(unique, n)):
        small = rng.integers(0, 255, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize(size, Image.BICUBIC)  # smooth texture: JPEG sizes like photos
        p = folder / f"u{i:05d}.jpg"
        im.save(p, quality=90)
        base.append(p)
    out = list(base)
    for i in range(len(base), n):
        p = folder / f"c{i:06d}.jpg"
        shutil.copyfile(base[i % len(base)], p)
        out.append(p)
    return out


def model_only(tower, batch: int, seconds: float) -> float:
    import torch

    x = torch.randn(batch, 3, tower.size, tower.size, device=tower.device, dtype=tower.dtype)
    for _ in range(3):
        tower.encode(x)
    sync = torch.cuda.synchronize if str(tower.device).startswith("cuda") else (lambda: None)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tower.encode(x)
        n += batch
    sync()
    return n / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", choices=sorted(MODELS), default="vit-b-32")
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--unique", type=int, default=2_000, help="distinct JPEGs written; the rest are copies")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--readers", type=int, default=os.cpu_count() or 4, help="file-reading threads")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of the model-only measurement")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from polyseek.scale.gpu_ingest import VisionTower, gpu_decoder_available, ingest_jpegs
    from polyseek.store.lance import LanceStore

    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="polyseek-bench-gpu-ingest-"))
    try:
        with Timer() as t_make:
            paths = make_jpegs(tmp / "jpegs", args.images, args.unique)
        print(f"{len(paths)} JPEGs written in {t_make.s:.0f}s", flush=True)
        torch.manual_seed(0)
        tower = VisionTower.random(args.device, config=MODELS[args.model])
        limit = model_only(tower, args.batch, args.seconds)
        print(f"model only: {limit:,.0f} images/s", flush=True)
        # Warm the path (cuDNN/nvJPEG handles, allocator) on a small store that is then thrown away.
        warm = LanceStore(tmp / "warm", {"vec_text": 384, "vec_visual": tower.dim})
        with quiet_logs():
            ingest_jpegs(warm, paths[: args.batch * 2], tower, batch=args.batch, readers=args.readers)
        store = LanceStore(tmp / "lance", {"vec_text": 384, "vec_visual": tower.dim})
        with Timer() as t, quiet_logs():
            rep = ingest_jpegs(store, paths, tower, batch=args.batch, readers=args.readers)
        rate = rep.indexed / t.s
        rows_in_store = store.count_units()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gpu, why = gpu_decoder_available(args.device)
    dev = torch.cuda.get_device_name() if str(args.device).startswith("cuda") else "CPU"
    head = (f"`python bench/bench_gpu_ingest.py --device {args.device} --model {args.model} --images {args.images} "
            f"--batch {args.batch}`.  \n"
            f"Machine: {machine_line(['polyseek', 'torch', 'torchvision', 'transformers', 'lancedb'])}; device: {dev}.  \n"
            f"Load average (1/5/15 min): {load_start} at start, {load_avg()} at end.\n\n"
            f"Randomly initialised weights of the real {args.model} architecture (throughput does not depend on "
            f"the weights). Decoder: {rep.decoder}{'' if gpu else ' (' + why + ')'}. "
            f"{rows_in_store:,} rows in the store after the run; {len(rep.failed)} failed.")
    rows = [[f"{args.model}, fp16, batch {args.batch}", "model only (pixels already on the GPU)", f"{limit:,.0f}", "–"],
            [f"{args.model}, fp16, batch {args.batch}", "JPEG files → vectors in the store", f"{rate:,.0f}",
             f"{rate / limit:.0%}"]]
    checks = [["files → store >= 15,000 images/s (H200, ViT-B/32)", f"{rate:,.0f}",
               verdict(rate >= 15_000) if args.model == "vit-b-32" else "–"],
              ["> 50% of model-only", f"{rate / limit:.0%}", verdict(rate / limit > 0.5)]]
    emit("ingest-gpu", "GPU ingest: JPEG files to vectors", [head, table(["model", "path", "images/s", "of model-only"], rows),
                                                             table(["target", "measured", "verdict"], checks)],
         write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
