"""Honest result lists: no dense-only noise padded in to reach k, and a warning when a text query asks about what
images show while no visual encoder can see them.

Small, pure functions the ranking work (adaptive cutoffs, issue 11) can replace: `drop_weak_dense_tail` is the one
place a result is removed for being weak.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from ..types import Hit

# Cosine below which a hit that only the text-dense signal found is noise, per text encoder spec. Calibrated on
# vaswani (bench/calibrate_floor.py, docs/benchmarks.md): 0.15 drops 0.7% of the 2,083 relevant query-document
# pairs and 65% of random (non-relevant) pairs. An encoder without a calibrated floor keeps every hit.
DENSE_FLOORS: dict[str, float] = {"minilm": 0.15, "minilm?quantize=int8": 0.15}
DENSE_ONLY = frozenset({"dense"})


def dense_floor(text_encoder_spec: str | None) -> float | None:
    """The calibrated floor for this text encoder, or None when it has none."""
    return DENSE_FLOORS.get(text_encoder_spec or "")


def drop_weak_dense_tail(hits: Sequence[Hit], floor: float | None) -> list[Hit]:
    """Hits found by the text-dense signal alone with a cosine below `floor` are dropped; ranks renumbered.
    Hits with any other evidence (a keyword match, a visual or instance match) are kept whatever their dense score."""
    if floor is None:
        return list(hits)
    kept = [h for h in hits if not (set(h.signals) <= DENSE_ONLY and h.signals.get("dense", floor) < floor)]
    return [dataclasses.replace(h, rank=i) for i, h in enumerate(kept, 1)]


def visual_warnings(*, has_text: bool, has_visual_encoder: bool, image_assets: Callable[[], int],
                    type_filter: Sequence[str], hits: Sequence[Hit]) -> list[str]:
    """A warning when a text query targets images (a type filter asking for images, or image hits returned) and no
    visual encoder is configured: images then match only through their OCR text and file names."""
    if not has_text or has_visual_encoder:
        return []
    wants_images = "image" in type_filter or any(h.asset.type == "image" or h.unit.kind == "figure" for h in hits)
    n = image_assets() if wants_images else 0  # counted only when it matters: a scan of the assets table
    if not n:
        return []
    return [f"This index has no visual encoder: its {n} image(s) match text queries only through the "
            f"text found in them (OCR), not by what they show; re-index with "
            f"`--visual clip:MODEL` to search images by content"]
