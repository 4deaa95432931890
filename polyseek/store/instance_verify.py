"""Geometric verification of shortlisted images: visual-word correspondences, then RANSAC.

Tentative matches are pairs of features that share a visual word (the query side is multiply assigned, Jegou et
al. 2010) and whose RootSIFT vectors are close; the best pair per query feature and per indexed feature is kept.
A similarity transform (rotation, uniform scale, translation) is fitted with RANSAC (Fischler & Bolles 1981),
as in Philbin et al. 2007's spatial re-ranking; the score is the number of inliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..encode.local import rootsift


@dataclass
class Candidate:
    """What verification needs from one indexed image."""

    row: int  # global image row in the index
    words: np.ndarray  # (n,) int32
    desc: np.ndarray  # (n, 128) uint8
    xy: np.ndarray  # (n, 2) float32, indexed-image pixels
    work_scale: float
    sa: np.ndarray | None = None  # (n, 2) keypoint size (indexed-image pixels) and angle (degrees)


@dataclass
class Verified:
    row: int
    inliers: int
    affine: np.ndarray  # (2, 3) query (working crop) pixels -> indexed-image pixels


def tentative_matches(
    q_words: np.ndarray, q_root: np.ndarray, cands: list[Candidate], *, min_sim: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each candidate, (query feature indices, candidate feature indices) of tentative one-to-one matches.

    `q_words` is (nq, m): the m nearest words of each query feature.
    """
    nq, m = q_words.shape
    flat_w = q_words.reshape(-1)
    flat_q = np.repeat(np.arange(nq), m)
    order = np.argsort(flat_w, kind="stable")
    sw, sq = flat_w[order], flat_q[order]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if not cands:
        return out
    words = np.concatenate([c.words for c in cands])
    owner = np.concatenate([np.full(len(c.words), i, np.int32) for i, c in enumerate(cands)])
    local = np.concatenate([np.arange(len(c.words)) for c in cands])
    lo = np.searchsorted(sw, words, "left")
    hi = np.searchsorted(sw, words, "right")
    cnt = hi - lo
    has = cnt > 0
    if not has.any():
        return [(np.zeros(0, np.int64), np.zeros(0, np.int64)) for _ in cands]
    db_idx = np.repeat(np.nonzero(has)[0], cnt[has])  # index into the concatenation
    # Position inside each run of equal query words.
    run_start = np.repeat(lo[has], cnt[has])
    offs = np.arange(len(db_idx)) - np.repeat(np.cumsum(cnt[has]) - cnt[has], cnt[has])
    q_idx = sq[run_start + offs]
    # Same word through multiple assignment can pair a (q, db) twice; keep one.
    key = db_idx.astype(np.int64) * nq + q_idx
    key, first = np.unique(key, return_index=True)
    db_idx, q_idx = db_idx[first], q_idx[first]
    all_desc = [c.desc for c in cands]
    db_desc = np.empty((len(db_idx), q_root.shape[1]), np.uint8)
    own = owner[db_idx]
    loc = local[db_idx]
    for i in np.unique(own):
        sel = own == i
        db_desc[sel] = all_desc[i][loc[sel]]
    sim = np.einsum("ij,ij->i", q_root[q_idx], rootsift(db_desc))
    keep = sim >= min_sim
    own, loc, q_idx, sim = own[keep], loc[keep], q_idx[keep], sim[keep]
    # One-to-one: best pair per (candidate, query feature), then per (candidate, indexed feature).
    own, q_idx, loc, sim = _best_per(own, q_idx, sim, loc)
    own, loc, q_idx, sim = _best_per(own, loc, sim, q_idx)
    o = np.argsort(own, kind="stable")
    own, loc, q_idx = own[o], loc[o], q_idx[o]
    bounds = np.searchsorted(own, np.arange(len(cands) + 1))
    return [(q_idx[bounds[i] : bounds[i + 1]], loc[bounds[i] : bounds[i + 1]]) for i in range(len(cands))]


def _best_per(own: np.ndarray, key: np.ndarray, sim: np.ndarray, other: np.ndarray):
    """Keep, for each (own, key), the row with the highest sim."""
    o = np.lexsort((-sim, key, own))
    own, key, sim, other = own[o], key[o], sim[o], other[o]
    first = np.ones(len(own), bool)
    first[1:] = (own[1:] != own[:-1]) | (key[1:] != key[:-1])
    return own[first], key[first], other[first], sim[first]


_ANGLE_BIN = 30.0  # degrees
_SCALE_BIN = 0.5  # octaves


def _frame_consensus(q_sa: np.ndarray, d_sa: np.ndarray) -> np.ndarray:
    """Indices of the matches whose rotation and scale change (from keypoint angle and size) lie in the 3x3
    bins around the densest 2x2 window of a (30 degree, half octave) histogram: a true match's inliers agree
    within SIFT's frame noise, random matches spread over the histogram (Lowe 2004's Hough step)."""
    q = np.asarray(q_sa, np.float32)
    dang = np.mod(d_sa[:, 1] - q[:, 1], 360.0)
    dls = np.log2(np.maximum(d_sa[:, 0], 1e-3) / np.maximum(q[:, 0], 1e-3))
    na = int(round(360.0 / _ANGLE_BIN))
    ab = np.minimum((dang / _ANGLE_BIN).astype(np.int64), na - 1)
    sb = np.clip(np.floor(dls / _SCALE_BIN).astype(np.int64) + 16, 0, 31)
    h = np.zeros((na, 32), np.int32)
    np.add.at(h, (ab, sb), 1)
    w = h + np.roll(h, -1, axis=0)
    w[:, :-1] += w[:, 1:]
    a0, s0 = np.unravel_index(int(np.argmax(w)), w.shape)
    da = np.mod(ab - a0 + 1, na)  # window a0..a0+1, widened by one bin each way: -1..2 -> 0..3
    ds = sb - s0
    return np.nonzero((da <= 3) & (ds >= -1) & (ds <= 2))[0]


def fit_similarity(
    q_xy: np.ndarray, db_xy: np.ndarray, *, threshold: float, min_inliers: int, max_iters: int = 1000
) -> tuple[int, np.ndarray | None]:
    """RANSAC similarity transform from query points to indexed points; (inliers, 2x3 affine or None)."""
    import cv2

    if len(q_xy) < max(min_inliers, 3):
        return 0, None
    a, mask = cv2.estimateAffinePartial2D(
        q_xy.astype(np.float32),
        db_xy.astype(np.float32),
        method=cv2.RANSAC,
        ransacReprojThreshold=float(threshold),
        maxIters=max_iters,
        confidence=0.995,
        refineIters=10,
    )
    if a is None or mask is None:
        return 0, None
    scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    if not (0.02 < scale < 50.0):
        return 0, None
    mask = mask.ravel().astype(bool)
    # Inliers that are one point repeated (a texture's echo) do not make a match: count distinct positions.
    pts = np.unique(np.round(db_xy[mask] / max(threshold, 1.0)).astype(np.int64), axis=0)
    return int(min(mask.sum(), len(pts))), a


def verify(
    q_words: np.ndarray,
    q_root: np.ndarray,
    q_xy: np.ndarray,
    cands: list[Candidate],
    *,
    min_sim: float = 0.75,
    min_inliers: int = 10,
    threshold_px: float = 6.0,
    q_sa: np.ndarray | None = None,
) -> list[Verified]:
    """Verified candidates (inliers >= min_inliers), in the order given.

    With `q_sa` (query keypoint sizes and angles) and candidates' `sa`, tentative matches first vote for the
    rotation and scale change their keypoint frames imply; a candidate whose matches do not agree on one is
    dropped without RANSAC, and RANSAC only sees the matches near the winning vote.
    """
    out = []
    for cand, (qi, di) in zip(cands, tentative_matches(q_words, q_root, cands, min_sim=min_sim)):
        if len(qi) < min_inliers:
            continue
        if q_sa is not None and cand.sa is not None:
            agree = _frame_consensus(q_sa[qi], np.asarray(cand.sa[di], np.float32))
            if len(agree) < min_inliers:
                continue
            qi, di = qi[agree], di[agree]
        v = _verified(cand, q_xy[qi], cand.xy[di], threshold_px, min_inliers)
        if v is not None:
            out.append(v)
    return out


def _verified(cand: Candidate, q_pts: np.ndarray, db_pts: np.ndarray, threshold_px: float,
              min_inliers: int) -> Verified | None:
    """RANSAC over one candidate's correspondences; the Verified match, or None below `min_inliers`."""
    n, a = fit_similarity(q_pts, db_pts, threshold=threshold_px * cand.work_scale, min_inliers=min_inliers)
    return Verified(cand.row, n, a) if a is not None and n >= min_inliers else None


def verify_ratio(
    q_root: np.ndarray,
    q_xy: np.ndarray,
    cands: list[Candidate],
    *,
    ratio: float = 0.8,
    min_inliers: int = 8,
    threshold_px: float = 6.0,
    q_sa: np.ndarray | None = None,
    strong_inliers: int | None = None,
) -> list[Verified]:
    """Verification by direct descriptor matching (Lowe's ratio test on RootSIFT, one-to-one), then RANSAC;
    with `q_sa` and candidates' `sa`, only the matches whose keypoint frames agree (as in `verify`), unless
    RANSAC over all of them already finds `strong_inliers`.

    Costs a (query features x candidate features) product per candidate, so it is kept for a second chance when
    word correspondences verified nothing: small, blurred or recompressed queries whose features quantise to
    different words than their matches do.
    """
    out = []
    nq = len(q_root)
    if nq < max(min_inliers, 3):
        return out
    rows = np.arange(nq)
    for cand in cands:
        if len(cand.desc) < 2:
            continue
        s = q_root @ rootsift(cand.desc).T  # cosine of unit vectors
        # Best and second best per row: two max passes cost a tenth of an argpartition over the row.
        nn = np.argmax(s, axis=1)
        s1 = s[rows, nn]
        s[rows, nn] = -np.inf
        s_2 = s.max(axis=1)
        d1 = np.sqrt(np.maximum(2.0 - 2.0 * s1, 0.0))
        d2 = np.sqrt(np.maximum(2.0 - 2.0 * s_2, 0.0))
        good = np.nonzero(d1 < ratio * d2)[0]
        if len(good) < min_inliers:
            continue
        # One-to-one: the closest query feature per indexed feature.
        o = np.lexsort((-s1[good], nn[good]))
        g = good[o]
        keep = np.ones(len(g), bool)
        keep[1:] = nn[g][1:] != nn[g][:-1]
        g = g[keep]
        if q_sa is not None and cand.sa is not None and len(g) >= min_inliers:
            if strong_inliers is not None:  # RANSAC alone decides a strong match, as without frames
                v = _verified(cand, q_xy[g], cand.xy[nn[g]], threshold_px, strong_inliers)
                if v is not None:
                    out.append(v)
                    continue
            g = g[_frame_consensus(q_sa[g], np.asarray(cand.sa[nn[g]], np.float32))]
        if len(g) < min_inliers:
            continue
        v = _verified(cand, q_xy[g], cand.xy[nn[g]], threshold_px, min_inliers)
        if v is not None:
            out.append(v)
    return out
