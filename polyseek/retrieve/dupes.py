"""Near-duplicate images: a perceptual hash proposes pairs, instance matching confirms them.

Propose: a 64-bit DCT perceptual hash (pHash, Zauner 2010; the same recipe as the `imagehash` package) of each
stored thumbnail; pairs within a Hamming threshold are found with multi-index hashing (Norouzi, Punjani & Fleet,
CVPR 2012): split the hash into 4 chunks of 16 bits; two hashes within distance r agree to within r // 4 bits
on at least one chunk, so only chunk-neighbours are compared, not all n^2 pairs.
Confirm: search one image of the pair in the instance index (local features + RANSAC) and require the other among
the verified matches, with the query covering most of it at about the same extent (a crop of a photo, or a photo
that contains another, is not a duplicate). Hashes are cached in `<index>/dupes/phash.npz`, keyed by content hash.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import QueryError
from ..imageio import load_query_image
from ..store.hashes import HashTable, hamming, near_pairs, phash_jpeg

DEFAULT_THRESHOLD = 10  # bits of 64; resized / recompressed / brightened copies are usually under 6
DEFAULT_TYPES = ("image", "record")
_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------- confirmation

@dataclass
class DupePair:
    a: str
    b: str
    hamming: int
    confirmed: bool
    inliers: int = 0
    cover: float = 0.0  # share of b's area covered by the matched region of a
    extent: float = 0.0  # area of a projected into b / area of b (about 1 for a duplicate)
    box: list[float] | None = None  # the matched region in b's unit coordinates
    query: str = ""  # which of the two was searched

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cover"], d["extent"] = round(self.cover, 3), round(self.extent, 3)
        return d


@dataclass
class DupeGroup:
    assets: list[str]  # largest image first: the one to keep
    pairs: list[DupePair]

    def to_dict(self) -> dict[str, Any]:
        return {"assets": self.assets, "pairs": [p.to_dict() for p in self.pairs]}


@dataclass
class DupeReport:
    groups: list[DupeGroup]
    assets: int  # assets hashed
    candidates: int  # pairs proposed by the hash
    confirmed: int  # pairs confirmed by instance matching (all candidates when not confirming)
    verified: bool  # whether instance matching confirmed the pairs
    threshold: int
    seconds: float = 0.0
    rejected: list[DupePair] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [g.to_dict() for g in self.groups], "assets": self.assets, "candidates": self.candidates,
                "confirmed": self.confirmed, "verified": self.verified, "threshold": self.threshold,
                "seconds": round(self.seconds, 3), "rejected": [p.to_dict() for p in self.rejected]}


class _Matcher:
    """Instance searches of assets by their thumbnails, each run at most once."""

    def __init__(self, idx, min_cover: float):
        self.idx = idx
        self.ii = idx.derived.instance_index()
        self.min_cover = min_cover
        self._cache: dict[str, dict[str, tuple]] = {}

    def matches_of(self, image, k: int = 50) -> dict[str, tuple]:
        """asset id -> (inliers, cover, extent, box in unit coordinates, unit id) of its best verified match."""
        from .instance_signal import to_unit_box

        try:
            found = self.ii.search(image, None, k=k)
        except QueryError:  # flat image, no local features: nothing can be confirmed
            return {}
        rows = self.idx.store.get_units([m.unit_id for m in found], ["id", "asset_id", "bbox", "meta"])
        qw, qh = image.size
        corners = np.array([[0, 0, 1], [qw, 0, 1], [qw, qh, 1], [0, qh, 1]], float)
        out: dict[str, tuple] = {}
        for m in found:
            row = rows.get(m.unit_id)
            if row is None:
                continue
            meta = json.loads(row["meta"]) if row.get("meta") else {}
            px = meta.get("pixels")
            if not px:
                continue
            area = float(px[0]) * float(px[1])
            p = corners @ np.asarray(m.transform, float).T
            p = p[:, :2] / p[:, 2:3]
            x, y = p[:, 0], p[:, 1]
            extent = abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2 / area
            cover = float(m.box[2] * m.box[3]) / area
            aid = row["asset_id"]
            if aid not in out or m.inliers > out[aid][0]:
                out[aid] = (int(m.inliers), cover, extent, to_unit_box(m.box, row), m.unit_id)
        return out

    def of_asset(self, aid: str) -> dict[str, tuple]:
        if aid not in self._cache:
            self._cache[aid] = self.matches_of(thumbnail_image(self.idx, aid))
        return self._cache[aid]

    def accepts(self, cover: float, extent: float) -> bool:
        return cover >= self.min_cover and self.min_cover <= extent <= 1 / self.min_cover

    def confirm(self, a: str, b: str, dist: int) -> DupePair:
        best = DupePair(a, b, dist, False)
        for q, other in ((a, b), (b, a)):
            m = self.of_asset(q).get(other)
            if m is None:
                continue
            pair = DupePair(a, b, dist, self.accepts(m[1], m[2]), m[0], m[1], m[2], m[3], q)
            if pair.confirmed:
                return pair
            if pair.inliers > best.inliers:
                best = pair
        return best


def thumbnail_image(idx, aid: str):
    from PIL import Image

    data = idx.store.thumbnails([aid]).get(aid)
    if not data:
        raise QueryError(f"asset {aid!r} has no thumbnail")
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def find_duplicates(idx, threshold: int = DEFAULT_THRESHOLD, *, confirm: bool = True,
                    types: Sequence[str] = DEFAULT_TYPES, min_cover: float = 0.8, progress: bool = False) -> DupeReport:
    """Groups of near-identical images in `idx` (an IndexFolder or an Index; see the module docstring). Without instance features (or with
    `confirm=False`) the hash alone decides, and the report says so (`verified` is False)."""
    idx = getattr(idx, "folder", idx)
    if not 0 <= threshold <= 32:
        raise QueryError(f"threshold must be between 0 and 32 bits (of 64), got {threshold}")
    from ..progress import Progress

    t0 = time.perf_counter()
    prog = Progress(progress, "dupes", unit="pair")
    try:
        with prog.phase("hash images"), _lock:
            table = HashTable.load_or_build(idx.store, idx.path / "dupes", types)
        with prog.phase("find near pairs"):
            pairs = near_pairs(table.hashes, threshold)
        verified = bool(confirm and idx.config.instance)
        matcher = _Matcher(idx, min_cover) if verified else None
        kept: list[DupePair] = []
        rejected: list[DupePair] = []
        prog.total = len(pairs)
        if prog._bar is not None:
            prog._bar.reset(total=len(pairs))
        with prog.phase("verify pairs" if matcher else "group pairs", f"{len(pairs)} candidate(s)"):
            for i, j, d in sorted(pairs.tolist(), key=lambda r: (r[2], r[0], r[1])):
                a, b = table.ids[i], table.ids[j]
                p = matcher.confirm(a, b, int(d)) if matcher else DupePair(a, b, int(d), False)
                (kept if (p.confirmed or not matcher) else rejected).append(p)
                prog.step(1)
    finally:
        prog.close()
    groups = _group(idx, kept)
    return DupeReport(groups, len(table.ids), len(pairs), len(kept), verified, threshold,
                      time.perf_counter() - t0, rejected)


def _group(idx, pairs: list[DupePair]) -> list[DupeGroup]:
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        ra, rb = root(p.a), root(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for x in list(parent):
        members.setdefault(root(x), []).append(x)
    by_root: dict[str, list[DupePair]] = {}
    for p in pairs:
        by_root.setdefault(root(p.a), []).append(p)
    size = _pixels(idx, [a for m in members.values() for a in m])
    groups = [DupeGroup(sorted(m, key=lambda a: (-size.get(a, 0), a)), by_root[r]) for r, m in members.items()]
    groups.sort(key=lambda g: (-len(g.assets), g.assets[0]))
    return groups


def _pixels(idx, aids: list[str]) -> dict[str, int]:
    """Pixel count of each asset's image (from its unit's stored size), to pick the copy worth keeping."""
    if not aids:
        return {}
    t = idx.store.scan_units(["asset_id", "meta"], asset_ids=aids)
    out: dict[str, int] = {}
    for aid, meta in zip(t.column("asset_id").to_pylist(), t.column("meta").to_pylist()):
        px = (json.loads(meta) if meta else {}).get("pixels")
        if px:
            out[aid] = max(out.get(aid, 0), int(px[0]) * int(px[1]))
    return out


def is_near_duplicate(idx, image, threshold: int = DEFAULT_THRESHOLD, *, min_cover: float = 0.8,
                      types: Sequence[str] = DEFAULT_TYPES) -> str | None:
    """The id of an indexed asset that `image` (a PIL image or a path) nearly duplicates, or None: the hash
    proposes, instance matching confirms (hash only when the index has no instance features). For skip-at-ingest.
    `idx`: an IndexFolder or an Index."""
    idx = getattr(idx, "folder", idx)
    from ..ingest.common import thumbnail_jpeg

    img = load_query_image(image)
    thumb = thumbnail_jpeg(img, idx.config.ingest.thumbnail_size)  # hashed exactly as stored thumbnails are
    h = phash_jpeg(thumb)
    with _lock:
        table = HashTable.load_or_build(idx.store, idx.path / "dupes", types)
    if not table.ids:
        return None
    d = hamming(table.hashes, h)
    near = [(int(d[i]), table.ids[i]) for i in np.nonzero(d <= threshold)[0]]
    if not near:
        return None
    if not idx.config.instance:
        return min(near)[1]
    from PIL import Image

    with Image.open(io.BytesIO(thumb)) as im:
        matcher = _Matcher(idx, min_cover)
        found = matcher.matches_of(im.convert("RGB"))
    ok = [(-found[a][0], a) for _, a in near if a in found and matcher.accepts(found[a][1], found[a][2])]
    return min(ok)[1] if ok else None
