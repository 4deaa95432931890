"""Build a hard crop -> source image set from the coco-crops corpus (deterministic for a seed).

Usage:
    python bench/make_hard_crops.py --bench ../shared/bench/coco-crops --out bench/out/hard-s1 --seed 1
    python bench/make_hard_crops.py --bench ../shared/bench/coco-crops --out bench/out/hard-s2 --seed 2

The corpus stays the shared one (`OUT/corpus` is a symlink to it), so the output folder has the coco-crops layout
(`queries/`, `queries.jsonl`, `qrels.tsv`, `corpus/`) and every tool that reads coco-crops reads it. Queries are:

- regions of 1-2 %, 2-5 % and 5-25 % of the photo's area (40 / 30 / 30 %), aspect ratio 1:2 to 2:1, centred on
  strong local structure (a Shi-Tomasi corner drawn among the image's strongest) or on a uniformly random point;
- one perturbation kind each, drawn uniformly from: none, downscale to 25-50 %, JPEG quality 10-25, rotation
  5-15 degrees either way (black corners), strong colour (brightness, contrast, saturation x0.5-1.6 and a colour
  cast), grayscale, a sub-window of 70-90 % per side, mirror; or (three times as often as one of those) two
  different ones in sequence, recorded as "a+b".

A query is never made smaller than 16 pixels a side (instance search's minimum): a downscale stops there.
Every random draw comes from one `random.Random(seed)`, so a seed reproduces the set byte for byte.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

BANDS = [((0.01, 0.02), 0.4), ((0.02, 0.05), 0.3), ((0.05, 0.25), 0.3)]
SINGLE = ["none", "downscale", "jpeg", "rotate", "color", "gray", "subwindow", "hflip"]
COMBO_WEIGHT = 3  # "two in sequence" is drawn this many times as often as one single kind
MIN_SIDE = 16


def band_name(area_frac: float) -> str:
    """The reporting band of a crop covering `area_frac` of its photo: <1%, 1-2%, 2-5% or >=5%."""
    for lo, hi in ((0.0, 0.01), (0.01, 0.02), (0.02, 0.05)):
        if area_frac < hi:
            return f"{lo * 100:g}-{hi * 100:g}%" if lo else f"<{hi * 100:g}%"
    return ">=5%"


def _structure_points(img: Image.Image) -> np.ndarray:
    import cv2

    g = np.asarray(img.convert("L"))
    pts = cv2.goodFeaturesToTrack(g, maxCorners=60, qualityLevel=0.05, minDistance=12)
    return np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2)


def _region(img: Image.Image, rng: random.Random, centred_on: str) -> tuple[list[int], float]:
    w, h = img.size
    r = rng.random()
    acc = 0.0
    for (lo, hi), p in BANDS:
        acc += p
        if r < acc:
            break
    area = rng.uniform(lo, hi) * w * h
    aspect = 2.0 ** rng.uniform(-1, 1)
    cw = min(w, max(MIN_SIDE, round((area * aspect) ** 0.5)))
    ch = min(h, max(MIN_SIDE, round(area / cw)))
    if centred_on == "structure":
        pts = _structure_points(img)
        cx, cy = (pts[rng.randrange(len(pts))] if len(pts) else (rng.uniform(0, w), rng.uniform(0, h)))
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    x0 = int(min(max(0, round(cx - cw / 2)), w - cw))
    y0 = int(min(max(0, round(cy - ch / 2)), h - ch))
    return [x0, y0, cw, ch], cw * ch / (w * h)


def perturb(img: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, dict, int]:
    """Apply one perturbation; returns the image, its parameters and the JPEG quality to save with (95 unless
    the kind is jpeg)."""
    w, h = img.size
    if kind == "none":
        return img, {}, 95
    if kind == "downscale":
        s = rng.uniform(0.25, 0.5)
        s = max(s, MIN_SIDE / min(w, h))  # never below the minimum query size
        if s >= 1:
            return img, {"scale": 1.0}, 95
        return img.resize((max(MIN_SIDE, round(w * s)), max(MIN_SIDE, round(h * s))), Image.Resampling.BICUBIC), \
            {"scale": round(s, 4)}, 95
    if kind == "jpeg":
        q = rng.randint(10, 25)
        return img, {"quality": q}, q
    if kind == "rotate":
        a = rng.uniform(5, 15) * rng.choice([-1, 1])
        return img.rotate(a, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0)), \
            {"angle_deg": round(a, 3)}, 95
    if kind == "color":
        b, c, s = (rng.uniform(0.5, 1.6) for _ in range(3))
        cast = [rng.uniform(0.7, 1.3) for _ in range(3)]
        img = ImageEnhance.Brightness(img).enhance(b)
        img = ImageEnhance.Contrast(img).enhance(c)
        img = ImageEnhance.Color(img).enhance(s)
        arr = np.asarray(img, np.float32) * np.asarray(cast, np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        return img, {"brightness": round(b, 3), "contrast": round(c, 3), "saturation": round(s, 3),
                     "cast": [round(v, 3) for v in cast]}, 95
    if kind == "gray":
        return img.convert("L").convert("RGB"), {}, 95
    if kind == "subwindow":
        fx, fy = rng.uniform(0.7, 0.9), rng.uniform(0.7, 0.9)
        sw, sh = max(MIN_SIDE, round(w * fx)), max(MIN_SIDE, round(h * fy))
        sw, sh = min(sw, w), min(sh, h)
        x, y = rng.randint(0, w - sw), rng.randint(0, h - sh)
        return img.crop((x, y, x + sw, y + sh)), {"window": [x, y, sw, sh]}, 95
    if kind == "hflip":
        return ImageOps.mirror(img), {}, 95
    raise ValueError(f"unknown perturbation {kind!r}; choose from: {', '.join(SINGLE)}")


def make(bench: Path, out: Path, seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    corpus = sorted((bench / "corpus").glob("*.jpg"))
    (out / "queries").mkdir(parents=True, exist_ok=True)
    link = out / "corpus"
    if not link.exists():
        os.symlink(os.path.abspath(bench / "corpus"), link)
    kinds = SINGLE + ["combo"] * COMBO_WEIGHT
    rows = []
    for i in range(1, n + 1):
        qid = f"hc{seed}-{i:04d}"
        src = rng.choice(corpus)
        with Image.open(src) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        centred_on = rng.choice(["structure", "random"])
        box, frac = _region(img, rng, centred_on)
        crop = img.crop((box[0], box[1], box[0] + box[2], box[1] + box[3]))
        kind = rng.choice(kinds)
        steps = rng.sample(SINGLE[1:], 2) if kind == "combo" else [kind]
        params, quality = [], 95
        for step in steps:
            crop, p, q = perturb(crop, step, rng)
            params.append(p)
            quality = min(quality, q)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=quality)
        (out / "queries" / f"{qid}.jpg").write_bytes(buf.getvalue())
        rows.append({"id": qid, "image": f"queries/{qid}.jpg", "perturbation": "+".join(steps),
                     "params": params if len(params) > 1 else params[0], "bbox": box, "area_frac": round(frac, 5),
                     "size_band": band_name(frac), "centred_on": centred_on, "doc": src.stem})
    with open(out / "queries.jsonl", "w") as f:
        for r in rows:  # the answer goes only to qrels.tsv
            f.write(json.dumps({k: v for k, v in r.items() if k != "doc"}) + "\n")
    with open(out / "qrels.tsv", "w") as f:
        for r in rows:
            f.write(f"{r['id']} 0 {r['doc']} 1\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, required=True, help="the coco-crops folder (its corpus/ is used)")
    ap.add_argument("--out", type=Path, required=True, help="output folder, outside the repo or git-ignored")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    rows = make(args.bench, args.out, args.seed, args.n)
    kinds: dict[str, int] = {}
    for r in rows:
        k = "combo" if "+" in r["perturbation"] else r["perturbation"]
        kinds[k] = kinds.get(k, 0) + 1
    bands: dict[str, int] = {}
    for r in rows:
        bands[r["size_band"]] = bands.get(r["size_band"], 0) + 1
    print(f"{len(rows)} queries in {args.out} (seed {args.seed}); kinds: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + "; area bands: "
          + ", ".join(f"{k} {v}" for k, v in sorted(bands.items())))


if __name__ == "__main__":
    main()
