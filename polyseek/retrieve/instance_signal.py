"""The `instance` signal: the image query (or its crop) matched by local features and verified geometrically.

Scores are inlier counts; each hit carries the matched region's box in its unit's coordinates (image
pixels, or PDF points for pages and figures), mapped from the pixels the features were extracted from.
"""

from __future__ import annotations

import json
import threading

import numpy as np

from ..types import Query
from .base import Retriever, SignalContext, SignalRun, signals


class InstanceRetriever(Retriever):
    name = "instance"
    query_modalities = frozenset({"image"})

    def __init__(self, index, store):
        self.index = index  # InstanceIndex
        self.store = store
        self._lock = threading.Lock()

    def retrieve(self, query: Query, depth: int, mask=None) -> SignalRun:
        with self._lock:
            matches = self.index.search(query.image, None, k=max(depth, 1) if mask is None else max(depth * 4, 50))
        rows = self.store.get_units([m.unit_id for m in matches], ["id", "asset_id", "bbox", "meta"])
        allowed = None if mask is None else set(np.asarray(mask).tolist())
        uids, aids, scores, extra = [], [], [], {}
        for m in matches:
            row = rows.get(m.unit_id)
            if row is None or (allowed is not None and m.unit_id not in allowed):
                continue  # stale feature entry (unit gone) or filtered out
            uids.append(m.unit_id)
            aids.append(row["asset_id"])
            scores.append(m.score)
            extra[m.unit_id] = {"match": {"box": to_unit_box(m.box, row), "inliers": int(m.inliers),
                                          "mirrored": bool(m.mirrored)}}
            if len(uids) >= depth:
                break
        return SignalRun(self.name, uids, aids, np.asarray(scores, np.float32), extra)


def to_unit_box(box, row) -> list[float]:
    """Map a box in feature-image pixels to the unit's coordinate frame (its bbox origin and scale)."""
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    px = meta.get("pixels")
    ub = row.get("bbox")
    if not px or ub is None:
        return [round(float(v), 2) for v in box]
    sx, sy = ub[2] / px[0], ub[3] / px[1]
    x, y, w, h = box
    return [round(ub[0] + x * sx, 2), round(ub[1] + y * sy, 2), round(w * sx, 2), round(h * sy, 2)]


@signals.register("instance")
def build_instance(ctx: SignalContext) -> InstanceRetriever | None:
    if not ctx.folder.config.instance:
        return None
    # Reopen: another process (an index run beside a server) may have committed features.
    return InstanceRetriever(ctx.folder.derived.instance_index(reopen=True), ctx.folder.store)
