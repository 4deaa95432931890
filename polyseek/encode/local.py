"""Local visual features for instance-level search: SIFT keypoints with compact uint8 descriptors.

SIFT (Lowe 2004) is detected on a downscaled grey copy; descriptors are kept as the uint8 values OpenCV
computes and turned into RootSIFT (Arandjelovic & Zisserman 2012) only when compared. Keypoint positions are
stored in the pixel coordinates of the image as given, so boxes need no rescaling later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import PolyseekError

DESC_DIM = 128
_local = threading.local()


class FeatureError(PolyseekError, ValueError):
    """An image could not be turned into local features (not an image, or no pixels)."""


@dataclass(frozen=True)
class LocalFeatures:
    """Local features of one image; positions in pixels of the image as given (before downscaling)."""

    xy: np.ndarray  # (n, 2) float32
    size: np.ndarray  # (n,) float16, keypoint diameter in given pixels
    angle: np.ndarray  # (n,) float16, degrees
    desc: np.ndarray  # (n, 128) uint8 SIFT
    image_size: tuple[int, int]  # (width, height) of the image as given
    work_scale: float  # given pixels per working pixel (> 1 when the image was downscaled)

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    @staticmethod
    def empty(image_size: tuple[int, int], work_scale: float = 1.0) -> "LocalFeatures":
        return LocalFeatures(
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.float16),
            np.zeros(0, np.float16),
            np.zeros((0, DESC_DIM), np.uint8),
            image_size,
            work_scale,
        )


def _sift(n_detect: int, contrast: float):
    cache = getattr(_local, "sift", None)
    if cache is None:
        cache = _local.sift = {}
    key = (n_detect, contrast)
    if key not in cache:
        import cv2

        cache[key] = cv2.SIFT_create(nfeatures=n_detect, contrastThreshold=contrast)
    return cache[key]


def _balanced(pts: np.ndarray, response: np.ndarray, shape: tuple[int, int], keep: int, grid: int) -> np.ndarray:
    """Indices of `keep` keypoints, strongest first within each cell of a grid x grid partition, taken round-robin
    across cells: small regions (the crops users search with) keep features even when the strongest keypoints of
    the image crowd elsewhere."""
    h, w = shape
    cell = (np.minimum((pts[:, 1] * grid / h).astype(int), grid - 1) * grid
            + np.minimum((pts[:, 0] * grid / w).astype(int), grid - 1))
    order = np.lexsort((-response, cell))
    cs = cell[order]
    first = np.searchsorted(cs, cs, "left")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - first
    return np.lexsort((-response, rank))[:keep]


def rootsift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT: L1-normalise, then square-root; the result has unit L2 norm (float32)."""
    d = np.asarray(desc, dtype=np.float32)
    d = d / (d.sum(axis=1, keepdims=True) + 1e-7)
    return np.sqrt(d)


def to_gray_array(image, *, max_side: int = 640, min_side: int = 0) -> tuple[np.ndarray, float]:
    """Grey uint8 array of `image` resized so its long side is <= max_side (and >= min_side, upscaling
    small images by at most 3x); returns the array and the given-pixels-per-working-pixel factor."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise FeatureError(f"expected a PIL image, got {type(image).__name__}; open the file with PIL.Image.open")
    w, h = image.size
    if w < 1 or h < 1:
        raise FeatureError(f"image has no pixels ({w}x{h})")
    long_side = max(w, h)
    target = long_side
    if long_side > max_side:
        target = max_side
    elif min_side and long_side < min_side:
        target = min(min_side, long_side * 3)
    gray = image.convert("L")
    if target != long_side:
        f = target / long_side
        size = (max(1, round(w * f)), max(1, round(h * f)))
        resample = Image.Resampling.BICUBIC if f > 1 else Image.Resampling.BILINEAR
        # reducing_gap keeps large downscales fast without aliasing.
        gray = gray.resize(size, resample, reducing_gap=2.0 if f < 0.5 else None)
    arr = np.asarray(gray, dtype=np.uint8)
    return arr, long_side / max(arr.shape)


def extract_local_features(
    image,
    *,
    max_side: int = 640,
    max_features: int = 1500,
    min_side: int = 0,
    contrast: float = 0.02,
    grid: int = 4,
) -> LocalFeatures:
    """SIFT features of a PIL image (EXIF orientation already applied), at most `max_features`, spread over a
    `grid` x `grid` partition of the image (grid=1: simply the strongest).

    The image is analysed with its long side at most `max_side` pixels; `min_side` upscales small images.
    `contrast` is SIFT's contrast threshold: lower than OpenCV's 0.04 so dim or low-contrast regions still
    yield keypoints.
    """
    arr, work_scale = to_gray_array(image, max_side=max_side, min_side=min_side)
    size = (int(image.size[0]), int(image.size[1]))
    if min(arr.shape) < 8:
        return LocalFeatures.empty(size, work_scale)
    kps, desc = _sift(max_features * 3 if grid > 1 else max_features, contrast).detectAndCompute(arr, None)
    if desc is None or not kps:
        return LocalFeatures.empty(size, work_scale)
    all_pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    response = np.array([k.response for k in kps], dtype=np.float32)
    order = _balanced(all_pts, response, arr.shape, max_features, max(1, grid))
    pts = all_pts[order]
    # Keypoint centres are in working pixels with the pixel-centre convention; map to given pixels.
    xy = ((pts + 0.5) * work_scale - 0.5).astype(np.float32)
    sizes = np.array([kps[i].size for i in order], dtype=np.float32) * work_scale
    angles = np.array([kps[i].angle for i in order], dtype=np.float32)
    d = np.clip(np.rint(desc[order]), 0, 255).astype(np.uint8)
    return LocalFeatures(xy, sizes.astype(np.float16), angles.astype(np.float16), d, size, float(work_scale))


def concat_features(a: LocalFeatures, b: LocalFeatures) -> LocalFeatures:
    """Features of one image detected twice (e.g. at two scales), as one set; positions are in the same given
    pixels, so only `work_scale` (kept from `a`) loses meaning."""
    if a.image_size != b.image_size:
        raise FeatureError(f"features of different images ({a.image_size} and {b.image_size}) cannot be joined")
    return LocalFeatures(np.concatenate([a.xy, b.xy]), np.concatenate([a.size, b.size]),
                         np.concatenate([a.angle, b.angle]), np.concatenate([a.desc, b.desc]), a.image_size,
                         a.work_scale)


# SIFT's descriptor is a 4x4 grid (rows, columns) of 8-bin orientation histograms in the keypoint's frame.
# Mirroring the image left-right reverses the grid rows and negates the orientation bins (checked against
# OpenCV: median RootSIFT cosine 0.999 between mirrored-image descriptors and permuted ones).
_GRID = np.arange(DESC_DIM).reshape(4, 4, 8)
MIRROR_PERMUTATION = _GRID[::-1, :, (-np.arange(8)) % 8].reshape(-1)


def mirror_features(f: LocalFeatures) -> LocalFeatures:
    """The features the left-right mirrored image would have, without detecting again."""
    w = f.image_size[0]
    xy = f.xy.copy()
    xy[:, 0] = (w - 1) - xy[:, 0]
    angle = ((180.0 - f.angle.astype(np.float32)) % 360.0).astype(np.float16)
    return LocalFeatures(xy, f.size, angle, np.ascontiguousarray(f.desc[:, MIRROR_PERMUTATION]), f.image_size,
                         f.work_scale)
