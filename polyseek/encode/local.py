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
INDEX_CORNERS = 1000  # complementary corner keypoints per indexed image (queries pass corners=0)
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
    n_corners: int = 0  # the last n_corners features come from the complementary corner detector

    @property
    def n_sift(self) -> int:
        return len(self) - self.n_corners

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
    corners: int = INDEX_CORNERS,
) -> LocalFeatures:
    """SIFT features of a PIL image (EXIF orientation already applied), at most `max_features`, spread over a
    `grid` x `grid` partition of the image (grid=1: simply the strongest).

    The image is analysed with its long side at most `max_side` pixels; `min_side` upscales small images.
    `contrast` is SIFT's contrast threshold: lower than OpenCV's 0.04 so dim or low-contrast regions still
    yield keypoints. `corners` > 0 appends up to that many complementary corner keypoints with SIFT descriptors
    (see `corner_features`), counted in `n_corners`; an index stores them, a query extracts them only for a
    second chance.
    """
    arr, work_scale = to_gray_array(image, max_side=max_side, min_side=min_side)
    size = (int(image.size[0]), int(image.size[1]))
    if min(arr.shape) < 8:
        return LocalFeatures.empty(size, work_scale)
    sift = _sift(max_features * 3 if grid > 1 else max_features, contrast)
    if corners <= 0:
        kps, desc = sift.detectAndCompute(arr, None)
        if desc is None or not kps:
            return LocalFeatures.empty(size, work_scale)
        order = _balanced(np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2),
                          np.array([k.response for k in kps], dtype=np.float32), arr.shape, max_features, max(1, grid))
        return _features([kps[i] for i in order], desc[order], size, work_scale)
    # With corners: detect, keep the balanced subset, add the corners that repeat none of its keypoints, and
    # describe them all in one pass (SIFT's descriptor pass builds its own scale space, ~20 ms per call).
    kps = list(sift.detect(arr, None))
    if kps:
        kps = [kps[i] for i in _balanced(np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2),
                                         np.array([k.response for k in kps], dtype=np.float32), arr.shape,
                                         max_features, max(1, grid))]
    ckps = _corner_keypoints(arr, corners)
    if kps and ckps:
        ckps = [ckps[i] for i in _not_repeating(np.array([k.pt for k in kps], np.float32),
                                                np.array([k.size for k in kps], np.float32),
                                                np.array([k.pt for k in ckps], np.float32),
                                                np.array([k.size for k in ckps], np.float32))]
    if not kps and not ckps:
        return LocalFeatures.empty(size, work_scale)
    out_kps, desc = sift.compute(arr, kps + ckps)
    if desc is None or len(out_kps) != len(kps) + len(ckps):
        raise FeatureError("SIFT described a different number of keypoints than it was given")
    f = _features(out_kps, desc, size, work_scale)
    return LocalFeatures(f.xy, f.size, f.angle, f.desc, size, work_scale, n_corners=len(ckps))


def _features(kps, desc, size: tuple[int, int], work_scale: float) -> LocalFeatures:
    """LocalFeatures of OpenCV keypoints and their descriptors, positions mapped to given pixels."""
    pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    # Keypoint centres are in working pixels with the pixel-centre convention; map to given pixels.
    xy = ((pts + 0.5) * work_scale - 0.5).astype(np.float32)
    sizes = np.array([k.size for k in kps], dtype=np.float32) * work_scale
    angles = np.array([k.angle for k in kps], dtype=np.float32)
    d = np.clip(np.rint(desc), 0, 255).astype(np.uint8).reshape(-1, DESC_DIM)
    return LocalFeatures(xy, sizes.astype(np.float16), angles.astype(np.float16), d, size, float(work_scale))


# Complementary corner keypoints. SIFT's difference-of-Gaussians detector leaves large parts of a photo nearly
# empty: a region covering 1-2 % of it (a 60-pixel crop) often holds 2-16 of its keypoints, too few to verify,
# and more features or a lower contrast threshold barely add any there (docs/benchmarks.md, hard crops). Corners
# (minimum eigenvalue of the structure tensor, Shi & Tomasi 1994) fire on every textured spot, so they are taken
# at three pyramid levels and balanced over a fine grid, then described with SIFT at a fixed size per level and
# the dominant gradient orientation (Lowe 2004), so they share SIFT's descriptor space and frame vote.
_CORNER_LEVELS = 3  # pyramid levels, half an octave apart
_CORNER_SIZE = 3.0  # keypoint diameter at level 0, working pixels (a SIFT keypoint of the finest scale)
# Per level, the (octave, layer) of SIFT's scale space the descriptor is computed in, packed as OpenCV packs it:
# blur grows with the level as a detected keypoint's would (sigma 1.6, 2.0, 3.2 pixels for sizes 3, 4.2, 6), and
# every call that describes corners starts its scale space at octave -1, so an index and a query describe a
# corner alike whatever else the call describes.
_CORNER_OCTAVE = ((-1, 3), (0, 1), (0, 3))
_CORNER_GRID = 16
_CORNER_BLOCK = 5  # structure-tensor window


def _corner_keypoints(arr: np.ndarray, n: int, grid: int = _CORNER_GRID) -> list:
    """Up to `n` multi-scale corner keypoints (OpenCV KeyPoints, working pixels) of the grey array `arr`."""
    import cv2

    h, w = arr.shape
    pts, sizes, resp, octv = [], [], [], []
    for lv in range(_CORNER_LEVELS):
        f = 2.0 ** (-lv / 2)
        lw, lh = round(w * f), round(h * f)
        if min(lw, lh) < 3 * _CORNER_BLOCK:
            break
        img = arr if lv == 0 else cv2.resize(arr, (lw, lh), interpolation=cv2.INTER_AREA)
        e = cv2.cornerMinEigenVal(img, _CORNER_BLOCK, 3)
        peak = (e == cv2.dilate(e, np.ones((5, 5), np.uint8))) & (e > 1e-4 * max(float(e.max()), 1e-9))
        m = 4  # a descriptor needs some context
        peak[:m], peak[-m:], peak[:, :m], peak[:, -m:] = False, False, False, False
        yy, xx = np.nonzero(peak)
        sx, sy = w / lw, h / lh
        pts.append(np.stack([(xx + 0.5) * sx - 0.5, (yy + 0.5) * sy - 0.5], axis=1))
        sizes.append(np.full(len(xx), _CORNER_SIZE * sx))
        resp.append(e[yy, xx])
        octv.append(np.full(len(xx), (_CORNER_OCTAVE[lv][0] & 255) | (_CORNER_OCTAVE[lv][1] << 8)))
    if not pts or not sum(len(p) for p in pts):
        return []
    p = np.concatenate(pts).astype(np.float32)
    s = np.concatenate(sizes).astype(np.float32)
    order = _balanced(p, np.concatenate(resp).astype(np.float32), (h, w), n, grid)
    p, s, o = p[order], s[order], np.concatenate(octv)[order]
    angles = _dominant_orientation(arr, p, s)
    return [cv2.KeyPoint(float(x), float(y), float(sz), float(a), 0.0, int(oc))
            for (x, y), sz, a, oc in zip(p, s, angles, o)]


def corner_features(arr: np.ndarray, image_size: tuple[int, int], work_scale: float, n: int) -> LocalFeatures:
    """Up to `n` multi-scale corner features of the grey working array `arr`, with SIFT descriptors; positions
    and sizes in given pixels (`work_scale` given pixels per working pixel); `n_corners` is 0 (a set of its
    own, to join with `with_corners`)."""
    kps = _corner_keypoints(arr, n)
    if not kps:
        return LocalFeatures.empty(image_size, work_scale)
    out, desc = _sift(1, 0.04).compute(arr, kps)
    if desc is None or not out:
        return LocalFeatures.empty(image_size, work_scale)
    return _features(out, desc, image_size, work_scale)


def _not_repeating(s_xy: np.ndarray, s_size: np.ndarray, c_xy: np.ndarray, c_size: np.ndarray,
                   radius: float = 1.5) -> np.ndarray:
    """Indices of the corners that do not repeat a SIFT keypoint (within `radius` pixels, size within 1.5x): a
    duplicate would make the ratio test reject both."""
    if not len(s_xy) or not len(c_xy):
        return np.arange(len(c_xy))
    from scipy.spatial import cKDTree

    keep = np.ones(len(c_xy), bool)
    for i, nb in enumerate(cKDTree(s_xy).query_ball_point(c_xy, radius)):
        if nb:
            ratio = s_size[nb] / max(float(c_size[i]), 1e-3)
            keep[i] = not bool(((ratio > 1 / 1.5) & (ratio < 1.5)).any())
    return np.nonzero(keep)[0]


def _dominant_orientation(arr: np.ndarray, pts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per keypoint, the peak of a Gaussian-weighted 36-bin histogram of gradient directions around it, in
    OpenCV SIFT's convention (degrees, y axis down), so SIFT's descriptor is computed in that frame."""
    import cv2

    a = arr.astype(np.float32)
    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    binned = (np.mod(np.degrees(np.arctan2(gy, gx)), 360.0) / 10.0).astype(np.int64) % 36
    h, w = a.shape
    out = np.zeros(len(pts), np.float32)
    radii = np.maximum(2, np.rint(sizes * 1.5)).astype(np.int64)
    for r in np.unique(radii):
        sel = np.nonzero(radii == r)[0]
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        g = np.exp(-(dx * dx + dy * dy) / (2.0 * (0.5 * r) ** 2)).ravel()
        cx = np.rint(pts[sel, 0]).astype(np.int64)[:, None] + dx.ravel()[None, :]
        cy = np.rint(pts[sel, 1]).astype(np.int64)[:, None] + dy.ravel()[None, :]
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        cx, cy = np.clip(cx, 0, w - 1), np.clip(cy, 0, h - 1)
        wgt = mag[cy, cx] * g[None, :] * inside
        hist = np.zeros((len(sel), 36), np.float32)
        np.add.at(hist, (np.repeat(np.arange(len(sel)), cx.shape[1]), binned[cy, cx].ravel()), wgt.ravel())
        smooth = sum(c * np.roll(hist, k, axis=1) for k, c in zip(range(-2, 3), (1, 4, 6, 4, 1)))
        out[sel] = np.argmax(smooth, axis=1) * 10.0
    return out


def with_corners(sift: LocalFeatures, corners: LocalFeatures) -> LocalFeatures:
    """`sift` followed by the corner features that do not repeat one of its keypoints (`_not_repeating`, in
    working pixels of `sift`)."""
    if not len(corners):
        return sift
    ws = max(sift.work_scale, 1e-6)
    keep = _not_repeating(sift.xy / ws, sift.size.astype(np.float32) / ws, corners.xy / ws,
                          corners.size.astype(np.float32) / ws)
    both = concat_features(sift, LocalFeatures(corners.xy[keep], corners.size[keep], corners.angle[keep],
                                               corners.desc[keep], corners.image_size, corners.work_scale))
    return LocalFeatures(both.xy, both.size, both.angle, both.desc, both.image_size, both.work_scale,
                         n_corners=len(keep))


def concat_features(a: LocalFeatures, b: LocalFeatures) -> LocalFeatures:
    """Features of one image detected twice (e.g. at two scales), as one set of SIFT features; positions are in
    the same given pixels, so only `work_scale` (kept from `a`) loses meaning."""
    if a.n_corners or b.n_corners:
        raise FeatureError("concat_features joins SIFT-only feature sets; add corners last (with_corners)")
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
                         f.work_scale, f.n_corners)
