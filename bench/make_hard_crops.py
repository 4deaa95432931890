"""Build a hard crop -> source image set from the coco-crops corpus (deterministic for a seed and style).

Usage:
    python bench/make_hard_crops.py --bench ../shared/bench/coco-crops --out bench/out/described-s3 --seed 3
    python bench/make_hard_crops.py --bench ../shared/bench/coco-crops --out bench/out/extreme-s1 --seed 1 \
        --style extreme

The corpus stays the shared one (`OUT/corpus` is a symlink to it), so the output folder has the coco-crops layout
(`queries/`, `queries.jsonl`, `qrels.tsv`, `corpus/`) and every tool that reads coco-crops reads it.

`--style described` (default) follows the description of issue 15's unseen set, which was built the way coco-crops
is (`../shared/bench/coco-crops/README.md`): a query is an object-like box padded by 10 % of its width and height
on every side, and `area_frac` is the box's share of the photo (as coco-crops' `area_frac` is the COCO object's):

- boxes of 1-2 %, 2-5 % and 5-25 % of the photo's area (a third each), aspect ratio 1:2 to 2:1, centred on strong
  local structure (a Shi-Tomasi corner drawn among the image's strongest) or on a uniformly random point, redrawn
  while the box is flatter than the flattest 2 % of coco-crops' 300 object windows (mean Sobel gradient, measured
  on the corpus at generation time): objects are not blank sky or wall, and the unseen set's crops were objects;
- one perturbation kind each, drawn uniformly from: none, downscale to 25-50 %, JPEG quality 10-25, rotation
  5-15 degrees either way (black corners), strong colour (brightness, contrast, saturation x0.5-1.6 and a colour
  cast), grayscale, a sub-window of 70-90 % per side, mirror; or (three times as often as one of those) two
  different ones in sequence, recorded as "a+b".

`--style extreme` is the first version (seeds 1 and 2 in docs/benchmarks.md), harder than that description: the
region itself covers 1-2 % (40 %), 2-5 % (30 %) or 5-25 % (30 %) with no padding, and random-point regions may be
flat (a third of its random 1-2 % misses are flatter than 98 % of coco-crops' objects). Same perturbations.

A query is never made smaller than 16 pixels a side (instance search's minimum): a downscale stops there.
Every random draw comes from one `random.Random(seed)`, so a seed and style reproduce the set byte for byte.
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

BANDS = {"extreme": [((0.01, 0.02), 0.4), ((0.02, 0.05), 0.3), ((0.05, 0.25), 0.3)],
         "described": [((0.01, 0.02), 1 / 3), ((0.02, 0.05), 1 / 3), ((0.05, 0.25), 1 / 3)]}
STYLES = tuple(BANDS)
PAD = 0.10  # coco-crops pads each object box by 10 % of its width / height on every side
FLAT_PERCENTILE = 2  # described style: boxes flatter than this percentile of coco-crops' object windows are redrawn
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


def mean_gradient(gray: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of a grey uint8 array, in grey levels per pixel: how much structure a region
    has (0 for a flat one)."""
    import cv2

    if min(gray.shape) < 3:
        return 0.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.sqrt(gx * gx + gy * gy).mean() / 8.0)


def flat_floor(bench: Path) -> float:
    """The FLAT_PERCENTILE-th percentile of the mean gradient of coco-crops' object windows (its queries.jsonl
    `bbox`, cut from the corpus photo before any perturbation)."""
    qrels = dict(line.split()[::2] for line in (bench / "qrels.tsv").read_text().splitlines() if line.strip())
    vals = []
    for line in (bench / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        x, y, w, h = q["bbox"]
        with Image.open(bench / "corpus" / f"{qrels[q['id']]}.jpg") as im:
            g = np.asarray(ImageOps.exif_transpose(im).convert("L"))
        vals.append(mean_gradient(g[y : y + h, x : x + w]))
    return float(np.percentile(vals, FLAT_PERCENTILE))


def _padded(box: list[float], w: int, h: int) -> list[int]:
    """coco-crops' crop window: the box padded by PAD of its size on every side, clipped, as [x, y, w, h]."""
    x, y, bw, bh = box
    x0, y0 = max(0, round(x - PAD * bw)), max(0, round(y - PAD * bh))
    x1, y1 = min(w, round(x + bw + PAD * bw)), min(h, round(y + bh + PAD * bh))
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]


def _described_region(img: Image.Image, rng: random.Random, centred_on: str, floor: float):
    """(crop window, object box share of the photo): an object-like box in a size band, with enough structure."""
    w, h = img.size
    gray = np.asarray(img.convert("L"))
    band = _band(rng, "described")
    pts = _structure_points(img) if centred_on == "structure" else None
    for _ in range(100):
        area = rng.uniform(*band) * w * h
        aspect = 2.0 ** rng.uniform(-1, 1)
        bw = min(w, max(MIN_SIDE, round((area * aspect) ** 0.5)))
        bh = min(h, max(MIN_SIDE, round(area / bw)))
        if pts is not None and len(pts):
            cx, cy = pts[rng.randrange(len(pts))]
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0 = int(min(max(0, round(cx - bw / 2)), w - bw))
        y0 = int(min(max(0, round(cy - bh / 2)), h - bh))
        if mean_gradient(gray[y0 : y0 + bh, x0 : x0 + bw]) >= floor:
            break
    return _padded([x0, y0, bw, bh], w, h), bw * bh / (w * h)


def _band(rng: random.Random, style: str) -> tuple[float, float]:
    r = rng.random()
    acc = 0.0
    for (lo, hi), p in BANDS[style]:
        acc += p
        if r < acc:
            return lo, hi
    return BANDS[style][-1][0]


def _region(img: Image.Image, rng: random.Random, centred_on: str) -> tuple[list[int], float]:
    """The extreme style's region (unpadded, possibly flat)."""
    w, h = img.size
    r = rng.random()
    acc = 0.0
    for (lo, hi), p in BANDS["extreme"]:
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


def make(bench: Path, out: Path, seed: int, n: int, style: str = "described") -> list[dict]:
    if style not in BANDS:
        raise ValueError(f"unknown style {style!r}; choose from: {', '.join(STYLES)}")
    floor = flat_floor(bench) if style == "described" else 0.0
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
        if style == "described":
            box, frac = _described_region(img, rng, centred_on, floor)
        else:
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
                     "size_band": band_name(frac), "centred_on": centred_on, "doc": src.stem,
                     **({"style": style} if style != "extreme" else {})})
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
    ap.add_argument("--style", choices=STYLES, default="described")
    args = ap.parse_args()
    rows = make(args.bench, args.out, args.seed, args.n, args.style)
    kinds: dict[str, int] = {}
    for r in rows:
        k = "combo" if "+" in r["perturbation"] else r["perturbation"]
        kinds[k] = kinds.get(k, 0) + 1
    bands: dict[str, int] = {}
    for r in rows:
        bands[r["size_band"]] = bands.get(r["size_band"], 0) + 1
    print(f"{len(rows)} queries in {args.out} (seed {args.seed}, {args.style}); kinds: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + "; area bands: "
          + ", ".join(f"{k} {v}" for k, v in sorted(bands.items())))


if __name__ == "__main__":
    main()
