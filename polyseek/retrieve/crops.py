"""Multi-round, multi-scale crop search: one query image becomes many searches, evidence is pooled per result.

Real query images are cluttered, so one whole-image query rarely finds every thing they show; searching crops at
several scales does (Vision-DeepResearch, 2026; DeepMMSearch-R1's crop-and-search, 2025). This is the fixed
workflow, no LLM: propose crops (the whole image, salient regions, OCR text boxes, overlapping 2x2 and 3x3 grids),
search each with the image signals (instance, and visual when the index has it), issue the OCR text as a text query
through the text signals, then keep per result asset and signal the best crop's raw score and fuse the signals as a
normal search does. Each hit's `extra["crops"]` says which crop matched it, by which signal, and where.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..config import SearchConfig
from ..errors import MissingDependencyError, QueryError
from ..imageio import load_query_image
from ..store.sql import check_filters
from ..types import Hit, Query
from .base import SignalRun

log = logging.getLogger(__name__)

MAX_CROPS = 12
MIN_CROP_SIDE = 32  # smaller crops carry too few local features to verify a match
_ALNUM = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class Crop:
    """A region of the query image to search: `box` is [x, y, w, h] in query-image pixels."""

    box: tuple[int, int, int, int]
    source: str  # "whole", "salient", "text", "grid2", "grid3"
    text: str = ""  # the OCR text of a "text" crop

    def to_dict(self) -> dict[str, Any]:
        d = {"box": list(self.box), "source": self.source}
        if self.text:
            d["text"] = self.text
        return d


@dataclass
class CropSearch:
    """The hits of a crop search, with the crops tried and the OCR text that was searched."""

    hits: list[Hit]
    crops: list[Crop]
    text: str = ""  # OCR text issued as a text query ("" if none)
    failed: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # crop number, why it was skipped


# ---------------------------------------------------------------------------------------------- proposals

def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: Sequence[Sequence[float]], scores: Sequence[float], iou: float = 0.4) -> list[int]:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first."""
    keep: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(box_iou(boxes[i], boxes[j]) <= iou for j in keep):
            keep.append(i)
    return keep


def grid_crops(width: int, height: int, n: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """An n x n grid of crops, each `overlap` of a cell wider and taller than the cell, clamped to the image."""
    cw, ch = width / n, height / n
    w, h = min(width, round(cw * (1 + overlap))), min(height, round(ch * (1 + overlap)))
    out = []
    for j in range(n):
        for i in range(n):
            x = int(round(min(max(0.0, (i + 0.5) * cw - w / 2), width - w)))
            y = int(round(min(max(0.0, (j + 0.5) * ch - h / 2), height - h)))
            out.append((x, y, int(w), int(h)))
    return out


def salient_boxes(image, n: int = 3, work_side: int = 256) -> list[tuple[tuple[int, int, int, int], float]]:
    """Up to `n` salient regions ([x, y, w, h] in image pixels, score), from edge density.

    Cheap and model-free: connected components of a dilated Canny edge map (objects on a plainer background),
    plus sliding windows at two scales ranked by mean gradient energy relative to the image's (busy parts of a
    busy image); candidates are pooled and thinned by non-maximum suppression.
    """
    import cv2

    W, H = image.size
    f = min(1.0, work_side / max(W, H))
    gray = np.asarray(image.convert("L").resize((max(1, round(W * f)), max(1, round(H * f)))), dtype=np.uint8)
    h, w = gray.shape
    if min(h, w) < 16:
        return []
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    energy = np.sqrt(gx * gx + gy * gy)
    mean_e = float(energy.mean()) + 1e-6
    integral = cv2.integral(energy)

    def window_energy(x, y, bw, bh) -> float:
        s = integral[y + bh, x + bw] - integral[y, x + bw] - integral[y + bh, x] + integral[y, x]
        return float(s) / (bw * bh) / mean_e

    cands: list[tuple[tuple[int, int, int, int], float]] = []
    edges = cv2.Canny(gray, 60, 160)
    k = max(3, round(min(h, w) / 40)) | 1
    blobs = cv2.dilate(edges, np.ones((k, k), np.uint8))
    n_lab, _, stats, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    area = float(h * w)
    for x, y, bw, bh, _ in stats[1:n_lab]:
        frac = bw * bh / area
        if 0.02 <= frac <= 0.6 and min(bw, bh) >= 8:
            cands.append(((int(x), int(y), int(bw), int(bh)), window_energy(x, y, bw, bh) * np.sqrt(frac)))
    for frac in (0.5, 0.35):
        bw, bh = max(8, round(w * frac)), max(8, round(h * frac))
        step_x, step_y = max(1, bw // 3), max(1, bh // 3)
        for y in range(0, h - bh + 1, step_y):
            for x in range(0, w - bw + 1, step_x):
                cands.append(((x, y, bw, bh), window_energy(x, y, bw, bh) * np.sqrt(frac)))
    boxes = [c[0] for c in cands]
    scores = [c[1] for c in cands]
    out = []
    for i in nms(boxes, scores, 0.3)[:n]:
        x, y, bw, bh = boxes[i]
        out.append(((int(x / f), int(y / f), min(W, int(np.ceil(bw / f))), min(H, int(np.ceil(bh / f)))), scores[i]))
    return out


def text_crops(lines, width: int, height: int, n: int = 3) -> list[Crop]:
    """Crops around the largest OCR text lines, padded so the glyphs keep some context for local features."""
    out = []
    for line in sorted(lines, key=lambda l: -(l.bbox[2] * l.bbox[3]))[:n]:
        x, y, w, h = line.bbox
        pad = max(h * 0.5, 8.0)
        x0, y0 = max(0.0, x - pad), max(0.0, y - pad)
        x1, y1 = min(float(width), x + w + pad), min(float(height), y + h + pad)
        out.append(Crop((int(x0), int(y0), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0))), "text", line.text))
    return out


def propose_crops(image, *, max_crops: int = MAX_CROPS, ocr_lines: Sequence = (), n_salient: int = 3,
                  n_text: int = 2) -> list[Crop]:
    """Crops of `image` to search, most informative first, at most `max_crops`: the whole image, salient regions,
    OCR text lines, then an overlapping 2x2 and a 3x3 grid; near-identical crops and crops under 32 px are dropped."""
    W, H = image.size
    ordered: list[Crop] = [Crop((0, 0, W, H), "whole")]
    ordered += [Crop(b, "salient") for b, _ in salient_boxes(image, n_salient)]
    ordered += text_crops(ocr_lines, W, H, n_text)
    ordered += [Crop(b, "grid2") for b in grid_crops(W, H, 2)]
    ordered += [Crop(b, "grid3") for b in grid_crops(W, H, 3)]
    out: list[Crop] = []
    for c in ordered:
        if len(out) >= max_crops:
            break
        if min(c.box[2], c.box[3]) < MIN_CROP_SIDE:
            continue
        if any(box_iou(c.box, o.box) > 0.7 for o in out):
            continue
        out.append(c)
    return out


def read_query_text(image, engine: str = "rapidocr", min_score: float = 0.5) -> list:
    """OCR lines of the query image worth searching (confident, with at least two letters or digits)."""
    from ..ingest.ocr import get_engine

    return [l for l in get_engine(engine).read(image)
            if l.score >= min_score and len(_ALNUM.findall(l.text)) >= 2]


# ---------------------------------------------------------------------------------------------- search

def search_crops(idx, query: Query, config: SearchConfig | None = None, *, max_crops: int = MAX_CROPS,
                 ocr: bool | None = None) -> CropSearch:
    """Search `query.image` crop by crop and pool the evidence per result asset (see the module docstring).

    `ocr=None` reads text in the query image when the index was built with OCR; the text found is searched
    with the text signals, and its line boxes become crops. `query.text`, if given, is searched as well.
    """
    config = config or SearchConfig()
    if query.k < 1:
        raise QueryError("k must be at least 1")
    if query.image is None:
        raise QueryError("crop search needs a query image")
    check_filters(query.filters)
    image = load_query_image(query.image, query.bbox)  # decoded once; every crop is cut from these pixels
    searcher = idx.searcher()
    # The same signal choice and validation as a plain search: image signals for the crops, text-only signals
    # for the text read from the image and the query's own text.
    image_signals = searcher.pick_signals(Query(image=image), config)
    text_signals = [r for r in searcher.pick_signals(Query(text="x"), config) if r not in image_signals]

    use_ocr = idx.config.ingest.ocr if ocr is None else ocr
    lines = []
    if use_ocr:
        try:
            lines = read_query_text(image, idx.config.ingest.ocr_engine)
        except MissingDependencyError as e:
            if ocr:
                raise
            log.warning("crop search without OCR: %s", e)
    crops = propose_crops(image, max_crops=max_crops, ocr_lines=lines)
    ocr_text = " ".join(l.text for l in lines)

    mask = searcher.mask(query)
    depth = max(config.depth, query.k)
    # (crop number or None for the text query, text-query label, run)
    runs: list[tuple[int | None, str, SignalRun]] = []
    failed: list[tuple[int, str]] = []
    for ci, crop in enumerate(crops):
        x, y, w, h = crop.box
        sub = image if crop.source == "whole" else image.crop((x, y, x + w, y + h))
        q = Query(image=sub, k=query.k, filters=query.filters)
        for r in image_signals:
            try:
                runs.append((ci, "", r.retrieve(q, depth, mask=mask)))
            except QueryError as e:  # a flat crop has no local features; the other crops still count
                failed.append((ci, str(e)))
    texts = [("ocr", ocr_text)] if ocr_text else []
    if query.text and query.text.strip():
        texts.append(("query", query.text))
    for label, text in texts:
        q = Query(text=text, k=query.k, filters=query.filters)
        for r in text_signals:
            runs.append((None, label, r.retrieve(q, depth, mask=mask)))
    if not image_signals and not texts:
        raise QueryError("searching by image needs a visual signal, and none is available in this index; "
                         "re-index with a visual encoder (polyseek index --visual clip:MODEL ...)")
    if image_signals and len(failed) == len(crops) * len(image_signals) and not texts:
        raise QueryError(failed[0][1])  # no crop could be searched at all: say why, as a plain search would

    pooled = pool_runs([r for _, _, r in runs])
    shown = dataclasses.replace(query, image=image, bbox=None, text=" ".join(t for _, t in texts) or None)
    hits = searcher.assemble(shown, pooled, config, single=len(pooled) == 1)
    attach_evidence(hits, runs, crops, ocr_text, query.k)
    return CropSearch(hits, crops, ocr_text, failed)


def pool_runs(runs: Sequence[SignalRun]) -> list[SignalRun]:
    """One run per signal: each unit keeps its best raw score over the crops (and that crop's details)."""
    best: dict[str, dict[str, tuple[float, str, dict]]] = {}
    for r in runs:
        units = best.setdefault(r.signal, {})
        for uid, aid, s in zip(r.unit_ids, r.asset_ids, r.scores.tolist()):
            if uid not in units or s > units[uid][0]:
                units[uid] = (float(s), aid, r.extra.get(uid, {}))
    out = []
    for signal, units in best.items():
        order = sorted(units.items(), key=lambda kv: (-kv[1][0], kv[0]))
        out.append(SignalRun(signal, [u for u, _ in order], [v[1] for _, v in order],
                             np.asarray([v[0] for _, v in order], np.float32),
                             {u: v[2] for u, v in order if v[2]}))
    return out


def attach_evidence(hits: list[Hit], runs, crops: list[Crop], ocr_text: str, k: int) -> None:
    """Give each hit `extra["crops"]`: per crop (or text query) that found the hit's asset, the crop's box and
    origin, the signal, its raw score and rank, and the matched box in the result. Verified instance matches are
    always listed; other signals only where the asset made that crop's top k."""
    wanted = {h.asset.id for h in hits}
    ev: dict[str, list[dict[str, Any]]] = {a: [] for a in wanted}
    for ci, label, r in runs:
        seen: set[str] = set()
        rank = 0
        for uid, aid, s in zip(r.unit_ids, r.asset_ids, r.scores.tolist()):
            if aid in seen:
                continue
            seen.add(aid)
            rank += 1
            if aid not in wanted or (r.signal != "instance" and rank > k):
                continue
            e: dict[str, Any] = {"signal": r.signal, "score": round(float(s), 4), "rank": rank, "unit": uid}
            if ci is None:
                e.update(crop=None, source=label, text=ocr_text if label == "ocr" else "")
                boxes = [c.box for c in crops if c.source == "text"]
                if label == "ocr" and boxes:
                    e["box"] = list(boxes[0]) if len(boxes) == 1 else _union(boxes)
            else:
                e.update(crop=ci, source=crops[ci].source, box=list(crops[ci].box))
                if crops[ci].text:
                    e["text"] = crops[ci].text
            match = r.extra.get(uid, {}).get("match")
            if match:
                e["match"] = match.get("box")
                e["inliers"] = match.get("inliers")
            ev[aid].append(e)
    for h in hits:
        items = sorted(ev.get(h.asset.id, []), key=lambda e: (e["signal"] != "instance", -e["score"]))
        h.extra = {**h.extra, "crops": items,
                   "n_crops": len({e["crop"] for e in items if e["crop"] is not None})}


def _union(boxes) -> list[int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return [x0, y0, x1 - x0, y1 - y0]


def describe_evidence(e: dict[str, Any]) -> str:
    """One line for people: which crop matched, how, and where in the result."""
    if e.get("crop") is None:
        what = f"{e['source']} text {e.get('text', '')!r}"[:80]
    else:
        what = f"crop {e['crop']} ({e['source']}) at " + ",".join(str(int(v)) for v in e["box"])
    how = f"{e['signal']} score {e['score']:g} (rank {e['rank']})"
    where = " -> box " + ",".join(f"{v:.0f}" for v in e["match"]) if e.get("match") else ""
    return f"{what}: {how}{where}"
