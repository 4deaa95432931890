"""On-disk segments of an instance index: plain .npy files (memory-mapped on open) named by a manifest.

A commit writes new files under fresh names, then replaces `manifest.json` atomically; files the manifest does
not name are garbage. A kill at any moment therefore leaves the previous manifest and everything it names intact.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..encode.local import DESC_DIM, LocalFeatures

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: meta has a 4th column, the image's corner features (the last ones of its rows)
READABLE_FORMATS = (1, 2)  # a format-1 index loads with no corner features (its second chance skips them)
_OURS = re.compile(r"^(seg-\d{6}\..+\.npy|vocab-\d{6}\.npz|manifest\.json)(\.tmp-\d+)?$")
_ARRAYS = ("xy", "sa", "desc", "off", "meta")


@dataclass
class Segment:
    """Features of a batch of images; rows are images, `off` slices their features."""

    ids: list[str]
    off: np.ndarray  # (m + 1,) int64
    xy: np.ndarray  # (n, 2) float32, pixels of the image as given
    sa: np.ndarray  # (n, 2) float16: keypoint size, angle
    desc: np.ndarray  # (n, 128) uint8
    meta: np.ndarray  # (m, 4) float32: width, height, work_scale, corner features (the last of the row's)
    words: np.ndarray | None = None  # (n,) int32 under the current vocabulary
    dead: set[int] = field(default_factory=set)
    name: str | None = None  # None until written
    words_file: str | None = None  # None until the current words are written

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    def live_rows(self) -> np.ndarray:
        alive = np.ones(self.n_rows, bool)
        if self.dead:
            alive[list(self.dead)] = False
        return np.nonzero(alive)[0]

    def n_live_features(self, *, corners: bool = True) -> int:
        counts = np.diff(self.off)
        if not corners:
            counts = counts - self.meta[:, 3].astype(np.int64)
        if self.dead:
            counts = counts.copy()
            counts[list(self.dead)] = 0
        return int(counts.sum())

    def sift_end(self, r: int) -> int:
        """End of row r's SIFT features (its corner features follow, up to off[r + 1])."""
        return int(self.off[r + 1]) - int(self.meta[r, 3])

    def corner_mask(self) -> np.ndarray:
        """(n,) bool: which features are corner features."""
        counts = np.diff(self.off)
        pos = np.arange(int(self.off[-1])) - np.repeat(self.off[:-1], counts)
        return pos >= np.repeat(counts - self.meta[:, 3].astype(np.int64), counts)

    @staticmethod
    def from_features(items: list[tuple[str, LocalFeatures]]) -> "Segment":
        counts = [len(f) for _, f in items]
        off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        def cat(arrs, shape, dtype):
            return np.concatenate(arrs).astype(dtype, copy=False) if arrs else np.zeros(shape, dtype)

        feats = [f for _, f in items]
        return Segment(
            ids=[uid for uid, _ in items],
            off=off,
            xy=cat([f.xy.reshape(-1, 2) for f in feats], (0, 2), np.float32),
            sa=cat([np.stack([f.size, f.angle], axis=1).reshape(-1, 2) for f in feats], (0, 2), np.float16),
            desc=cat([f.desc.reshape(-1, DESC_DIM) for f in feats], (0, DESC_DIM), np.uint8),
            meta=np.array([[f.image_size[0], f.image_size[1], f.work_scale, f.n_corners] for f in feats],
                          np.float32).reshape(-1, 4),
        )

    @staticmethod
    def merge(segs: list["Segment"]) -> "Segment":
        """One segment holding the live rows of `segs` (words kept)."""
        ids, offs, xy, sa, desc, meta, words = [], [0], [], [], [], [], []
        for s in segs:
            for r in s.live_rows():
                a, b = int(s.off[r]), int(s.off[r + 1])
                ids.append(s.ids[r])
                offs.append(offs[-1] + b - a)
                xy.append(s.xy[a:b])
                sa.append(s.sa[a:b])
                desc.append(s.desc[a:b])
                meta.append(s.meta[r])
                if s.words is not None:
                    words.append(s.words[a:b])
        have_words = all(s.words is not None for s in segs)
        return Segment(
            ids=ids,
            off=np.array(offs, np.int64),
            xy=np.concatenate(xy) if xy else np.zeros((0, 2), np.float32),
            sa=np.concatenate(sa) if sa else np.zeros((0, 2), np.float16),
            desc=np.concatenate(desc) if desc else np.zeros((0, DESC_DIM), np.uint8),
            meta=np.array(meta, np.float32).reshape(-1, 4),
            words=(np.concatenate(words) if words else np.zeros(0, np.int32)) if have_words else None,
        )


def save_array(folder: str, name: str, arr: np.ndarray) -> None:
    path = os.path.join(folder, name)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_segment(folder: str, seg: Segment, name: str) -> None:
    for key in _ARRAYS:
        save_array(folder, f"{name}.{key}.npy", getattr(seg, key))
    seg.name = name


def load_segment(folder: str, entry: dict, *, mmap: bool = True) -> Segment:
    name = entry["name"]
    mode = "r" if mmap else None
    arrs = {key: np.load(os.path.join(folder, f"{name}.{key}.npy"), mmap_mode=mode) for key in _ARRAYS}
    arrs["off"] = np.asarray(arrs["off"])
    arrs["meta"] = np.asarray(arrs["meta"])
    if arrs["meta"].shape[1] == 3:  # format 1: no corner features
        arrs["meta"] = np.concatenate([arrs["meta"], np.zeros((len(arrs["meta"]), 1), np.float32)], axis=1)
    words = None
    if entry.get("words"):
        words = np.asarray(np.load(os.path.join(folder, entry["words"]), mmap_mode=mode))
    seg = Segment(ids=list(entry["ids"]), words=words, dead=set(entry.get("dead", [])), name=name, **arrs)
    seg.words_file = entry.get("words")
    if len(seg.ids) + 1 != len(seg.off):
        raise ValueError(f"segment {name}: {len(seg.ids)} ids but {len(seg.off) - 1} rows")
    return seg


def write_manifest(folder: str, manifest: dict) -> None:
    path = os.path.join(folder, MANIFEST)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(folder)


def read_manifest(folder: str) -> dict | None:
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect_garbage(folder: str, keep: set[str]) -> None:
    """Delete our files that the manifest does not name (left by replaced segments or interrupted commits)."""
    for fn in os.listdir(folder):
        if _OURS.match(fn) and fn not in keep:
            try:
                os.remove(os.path.join(folder, fn))
            except FileNotFoundError:
                pass


def discard_uncommitted(folder: str) -> None:
    """Delete the files an interrupted commit wrote that the manifest on disk does not name (a full disk)."""
    manifest = read_manifest(folder)
    keep = {MANIFEST}
    if manifest is not None:
        keep |= {manifest["vocab"]} if manifest.get("vocab") else set()
        for entry in manifest.get("segments", []):
            keep.update(f"{entry['name']}.{key}.npy" for key in _ARRAYS)
            if entry.get("words"):
                keep.add(entry["words"])
    collect_garbage(folder, keep)


def segment_files(seg: Segment) -> list[str]:
    files = [f"{seg.name}.{key}.npy" for key in _ARRAYS]
    if seg.words_file:
        files.append(seg.words_file)
    return files


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on this platform (Windows)
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
