"""Perceptual hashes of stored thumbnails, kept in `<index>/dupes/phash.npz` and synced by content hash.

pHash: a 64-bit DCT perceptual hash (Zauner 2010; the same recipe as the `imagehash` package). Pairs within a
Hamming threshold are found with multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012): split the hash into
4 chunks of 16 bits; two hashes within distance r agree to within r // 4 bits on at least one chunk, so only
chunk-neighbours are compared, not all n^2 pairs. Grouping and confirmation live in retrieve/dupes.py.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

CHUNKS = 4


def phash(image) -> int:
    """64-bit DCT perceptual hash of a PIL image: 32x32 grey, 2-D DCT, the 8x8 lowest frequencies against
    their median."""
    from PIL import Image
    from scipy.fft import dctn

    gray = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    low = dctn(np.asarray(gray, dtype=np.float64), type=2, norm="ortho")[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def phash_jpeg(data: bytes) -> int:
    """pHash of JPEG bytes (a stored thumbnail), decoded at reduced size: only 32x32 pixels are needed."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("L", (64, 64))
        return phash(im)


def hamming(a, b) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


def _small_masks(bits: int, radius: int) -> np.ndarray:
    """Every `bits`-bit value with at most `radius` bits set (the XOR masks of a Hamming ball)."""
    vals = np.arange(1 << bits, dtype=np.int64)
    return vals[np.bitwise_count(vals) <= radius]


def near_pairs(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """(i, j, distance) rows, i < j, for every pair of 64-bit hashes within `threshold` bits, by multi-index
    hashing; thresholds over 15 (a chunk radius over 3) fall back to a blocked exhaustive scan."""
    h = np.asarray(hashes, np.uint64)
    n = len(h)
    if n < 2:
        return np.zeros((0, 3), np.int64)
    if threshold >= 4 * CHUNKS:
        return _pairs_exhaustive(h, threshold)
    bits = 64 // CHUNKS
    masks = _small_masks(bits, threshold // CHUNKS)
    found = []
    for c in range(CHUNKS):
        chunk = ((h >> np.uint64(bits * c)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        order = np.argsort(chunk, kind="stable")
        vals = chunk[order]
        keys = (chunk[:, None] ^ masks[None, :]).ravel()
        lo = np.searchsorted(vals, keys, "left")
        cnt = np.searchsorted(vals, keys, "right") - lo
        total = int(cnt.sum())
        if not total:
            continue
        qi = np.repeat(np.repeat(np.arange(n), len(masks)), cnt)
        offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pj = order[np.repeat(lo, cnt) + offs]
        keep = qi < pj
        found.append(qi[keep] * n + pj[keep])
    if not found:
        return np.zeros((0, 3), np.int64)
    codes = np.unique(np.concatenate(found))
    i, j = codes // n, codes % n
    d = hamming(h[i], h[j])
    keep = d <= threshold
    return np.stack([i[keep], j[keep], d[keep]], axis=1)


def _pairs_exhaustive(h: np.ndarray, threshold: int, block: int = 1024) -> np.ndarray:
    out = []
    for s in range(0, len(h), block):
        d = hamming(h[s:s + block, None], h[None, :])
        i, j = np.nonzero(d <= threshold)
        i = i + s
        keep = i < j
        out.append(np.stack([i[keep], j[keep], d[i[keep] - s, j[keep]]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 3), np.int64)


@dataclass
class HashTable:
    """pHash of every asset with a thumbnail (of the given types), in sync with the store."""

    ids: list[str]
    content: list[str]  # the asset's content hash when its pHash was computed
    hashes: np.ndarray  # uint64

    @staticmethod
    def load_or_build(store, folder: Path, types: Sequence[str]) -> "HashTable":
        """The table cached in `folder` (`<index>/dupes`), brought up to date with `store`: new or changed assets
        are hashed, removed ones dropped."""
        path = Path(folder) / "phash.npz"
        cached: dict[str, tuple[str, int]] = {}
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    cached = {i: (c, int(v)) for i, c, v in zip(z["ids"].tolist(), z["content"].tolist(),
                                                                 z["hashes"].tolist())}
            except (OSError, ValueError, KeyError):
                cached = {}  # a damaged cache is rebuilt
        assets = store.asset_index(types=list(types))
        todo = [a for a, v in assets.items() if a not in cached or cached[a][0] != v["hash"]]
        fresh: dict[str, tuple[str, int]] = {}
        for aid, thumb in store.thumbnails(todo).items():
            try:
                fresh[aid] = (assets[aid]["hash"], phash_jpeg(thumb))
            except OSError:
                continue  # an unreadable thumbnail: the asset is left out of duplicate detection
        keep = {a: cached[a] for a in assets if a in cached and a not in todo}
        keep.update(fresh)
        ids = sorted(keep)
        table = HashTable(ids, [keep[a][0] for a in ids], np.asarray([keep[a][1] for a in ids], np.uint64))
        if fresh or len(keep) != len(cached):
            table.save(path)
        return table

    def save(self, path: Path) -> None:
        """Cache the table; on a full or read-only disk the cache is skipped (a reader must not fail for it)."""
        import logging

        from ..errors import StorageError
        from .fsio import fault_point, storage_guard

        tmp = path.with_name(f".phash.{os.getpid()}.{threading.get_ident()}.npz")
        try:
            with storage_guard(path.parent.parent, "caching image hashes", lambda: tmp.unlink(missing_ok=True)):
                path.parent.mkdir(parents=True, exist_ok=True)
                fault_point("dupes.save", path)
                np.savez(tmp, ids=np.asarray(self.ids, dtype=str), content=np.asarray(self.content, dtype=str),
                         hashes=self.hashes)
                os.replace(tmp, path)
        except StorageError as e:
            logging.getLogger(__name__).warning("%s (the image hashes are recomputed next time)", e)


