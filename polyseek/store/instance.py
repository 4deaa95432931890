"""Instance-level visual search: find the indexed images that contain a query image or a crop of it.

Pipeline (Sivic & Zisserman 2003 "Video Google"; Philbin et al. 2007): SIFT/RootSIFT local features →
visual words from a vocabulary tree learned on the corpus → tf-idf inverted file for a shortlist →
geometric verification (RANSAC similarity) of the shortlist, scored by inliers. Mirrored queries are handled
by also searching with the mirrored query and keeping the better match per image.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from ..encode.local import (
    LocalFeatures,
    concat_features,
    corner_features,
    extract_local_features,
    mirror_features,
    rootsift,
    to_gray_array,
    with_corners,
)
from ..errors import IndexMismatchError, QueryError
from ..imageio import clip_box, load_query_image
from . import instance_segments as store
from .instance_verify import Candidate, verify, verify_ratio
from .instance_vocab import Vocabulary


@dataclass(frozen=True, kw_only=True)
class InstanceConfig:
    """Settings of an instance index; stored in its manifest so reopening needs no flags."""

    max_side: int = 640  # long side at which features are extracted (indexed images and queries)
    max_features: int = 1500  # per indexed image, spread over a grid so small regions keep features
    contrast: float = 0.02  # SIFT contrast threshold
    grid: int = 4
    query_min_side: int = 160  # small query crops are upscaled to this long side (at most 3x; 0: never) ...
    query_both_scales: bool = True  # ... and also keep the features detected at their own scale
    query_max_features: int = 1000
    query_min_features: int = 150  # a query with fewer features (blurred by downscaling, flat, washed out) ...
    retry_contrast: float = 0.005  # ... is detected again with this lower SIFT contrast threshold
    features_per_word: int = 40  # vocabulary size ~ corpus features / this ...
    max_words: int = 16384  # ... capped here
    min_words: int = 64
    sample_per_word: int = 30  # descriptors sampled per word to train the vocabulary
    shortlist: int = 30  # (image, query variant) pairs verified per query
    multi_assign: int = 3  # words per query feature for tentative matches
    coarse_probe: int = 2  # vocabulary-tree cells searched for those words
    min_inliers: int = 8
    min_sim: float = 0.8  # RootSIFT cosine for a tentative match
    ransac_px: float = 6.0  # RANSAC threshold in working pixels of the indexed image
    mirror: bool = True  # also search with the mirrored query
    frame_vote: bool = True  # prefilter RANSAC input by the rotation/scale its keypoint frames agree on
    rescue_shortlist: int = 500  # when nothing verifies: this many images re-verified by descriptor matching ...
    rescue_budget: int = 400_000_000  # ... within this many (query feature, indexed feature) comparisons (~0.7 s
    # of one core; every image of a few-hundred-image corpus: a small crop's photo ranks anywhere by tf-idf)
    rescue_ratio: float = 0.8  # Lowe's ratio test for that second chance
    deep_shortlist: int = 250  # when nothing verifies: this many (variant, image) pairs, ranked with every
    # assigned word, are verified again by word correspondences ...
    deep_budget: int = 600_000  # ... within this many indexed features
    weak_min_inliers: int = 4  # ... and in that second chance a match needs this many inliers, frames agreeing,
    weak_margin: int = 2  # ... and this many more than any other image (else nothing is returned)
    corner_budget: int = 1_200_000_000  # when still nothing: the rescue again with corner features on both sides,
    # within this many comparisons (every image of a few-hundred-image corpus; 0: never)

    @staticmethod
    def from_dict(d: dict) -> "InstanceConfig":
        known = set(InstanceConfig.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise IndexMismatchError(
                f"instance index config has unknown keys {sorted(unknown)}; it was written by a newer polyseek"
            )
        return InstanceConfig(**d)


@dataclass
class InstanceMatch:
    """One verified match: the indexed unit, its inlier count, and where the query lies in it."""

    unit_id: str
    score: float  # inlier count (higher is better)
    inliers: int
    box: list[float]  # [x, y, w, h] of the matched region, pixels of the indexed image as given
    transform: list[list[float]]  # 3x3: query image pixels -> indexed image pixels
    mirrored: bool = False  # the match was found with the mirrored query
    bow: float = 0.0  # tf-idf shortlist score, kept for explanation and fusion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _QueryVariant:
    feats: LocalFeatures
    root: np.ndarray
    words: np.ndarray  # (n, multi) nearest first
    to_query: np.ndarray  # 3x3: variant pixels -> query image pixels
    mirrored: bool

    @property
    def sa(self) -> np.ndarray:
        return np.stack([self.feats.size.astype(np.float32), self.feats.angle.astype(np.float32)], axis=1)


@dataclass
class _Bow:
    """tf-idf image x word matrix over every row of every segment (dead rows are empty)."""

    matrix: Any  # scipy.sparse.csc_matrix (rows, words), rows L2-normalised
    idf: np.ndarray
    seg_of_row: np.ndarray
    local_row: np.ndarray
    live: np.ndarray  # (rows,) bool: not removed


class InstanceIndex:
    """Local-feature index of images, persisted in one folder. Use `InstanceIndex.open(folder)`."""

    def __init__(self, folder: str, config: InstanceConfig, manifest: dict | None):
        self.folder = folder
        self.config = config
        self._lock = threading.RLock()
        self._segments: list[store.Segment] = []
        self._pending: dict[str, LocalFeatures] = {}
        self._where: dict[str, tuple[int, int]] = {}  # unit id -> (segment index, row)
        self._vocab: Vocabulary | None = None
        self._vocab_file: str | None = None
        self._vocab_features = 0  # live features when the vocabulary was trained
        self._next_file = 1
        self._bow: _Bow | None = None
        self._dirty = False
        if manifest is not None:
            self._load(manifest)

    # ----- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, config: InstanceConfig | None = None) -> "InstanceIndex":
        """Open the index in `folder` (created if missing). A stored config wins over `config`."""
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        manifest = store.read_manifest(folder)
        if manifest is None:
            return cls(folder, config or InstanceConfig(), None)
        if manifest.get("format") not in store.READABLE_FORMATS:
            raise IndexMismatchError(
                f"{folder}: instance index format {manifest.get('format')!r}, this polyseek reads "
                f"{list(store.READABLE_FORMATS)}; rebuild the index"
            )
        return cls(folder, InstanceConfig.from_dict(manifest["config"]), manifest)

    def _load(self, manifest: dict) -> None:
        self._next_file = int(manifest["next_file"])
        self._vocab_file = manifest.get("vocab")
        self._vocab_features = int(manifest.get("vocab_features", 0))
        if self._vocab_file:
            self._vocab = Vocabulary.load(os.path.join(self.folder, self._vocab_file))
        for entry in manifest["segments"]:
            self._segments.append(store.load_segment(self.folder, entry))
        self._reindex_where()

    def _reindex_where(self) -> None:
        self._where = {}
        for si, seg in enumerate(self._segments):
            for r in seg.live_rows():
                self._where[seg.ids[r]] = (si, int(r))

    # ----- writes ----------------------------------------------------------------------------------------
    def add(self, unit_id: str, feats: LocalFeatures) -> None:
        """Buffer the features of one image; a unit id already present is replaced. Visible to search at once,
        durable after `commit()`."""
        if not isinstance(feats, LocalFeatures):
            raise TypeError(f"add() takes LocalFeatures (from extract_local_features), got {type(feats).__name__}")
        with self._lock:
            self._drop(unit_id)
            self._pending[unit_id] = feats
            self._dirty = True

    def remove(self, unit_ids: Iterable[str]) -> int:
        """Remove units (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            n = sum(self._drop(uid) for uid in ([unit_ids] if isinstance(unit_ids, str) else unit_ids))
            if n:
                self._dirty = True
                self._bow = None
            return n

    def _drop(self, uid: str) -> bool:
        if self._pending.pop(uid, None) is not None:
            return True
        loc = self._where.pop(uid, None)
        if loc is None:
            return False
        self._segments[loc[0]].dead.add(loc[1])
        self._bow = None
        return True

    def commit(self) -> None:
        """Persist everything added and removed so far; atomic (new files, then the manifest is replaced)."""
        with self._lock:
            if not self._dirty and store.read_manifest(self.folder) is not None:
                return
            self._materialize()
            self._maybe_compact()
            if self._vocab is not None and self._vocab_file is None:
                self._vocab_file = f"vocab-{self._take_file():06d}.npz"
                self._vocab.save(os.path.join(self.folder, self._vocab_file))
            for seg in self._segments:
                if seg.name is None:
                    store.write_segment(self.folder, seg, f"seg-{self._take_file():06d}")
                if seg.words is not None and seg.words_file is None:
                    seg.words_file = f"{seg.name}.w{self._take_file():06d}.npy"
                    store.save_array(self.folder, seg.words_file, seg.words)
            manifest = {
                "format": store.FORMAT_VERSION,
                "config": asdict(self.config),
                "next_file": self._next_file,
                "vocab": self._vocab_file,
                "vocab_features": self._vocab_features,
                "segments": [
                    {"name": s.name, "ids": s.ids, "dead": sorted(int(r) for r in s.dead), "words": s.words_file}
                    for s in self._segments
                ],
            }
            store.write_manifest(self.folder, manifest)
            keep = {store.MANIFEST} | ({self._vocab_file} if self._vocab_file else set())
            for seg in self._segments:
                keep.update(store.segment_files(seg))
            store.collect_garbage(self.folder, keep)
            # Reopen what was just written as memory maps so the index does not hold it all in RAM.
            self._segments = [store.load_segment(self.folder, e) for e in manifest["segments"]]
            self._reindex_where()
            self._bow = None
            self._dirty = False

    def _take_file(self) -> int:
        n = self._next_file
        self._next_file += 1
        return n

    def _maybe_compact(self) -> None:
        total = sum(s.n_rows for s in self._segments)
        dead = sum(len(s.dead) for s in self._segments)
        if len(self._segments) > 8 or (total and dead > 0.3 * total):
            merged = store.Segment.merge(self._segments)
            self._segments = [merged] if merged.n_rows else []
            self._reindex_where()
            self._bow = None

    # ----- vocabulary and inverted file --------------------------------------------------------------------
    def _materialize(self) -> None:
        """Turn pending adds into an in-memory segment with words; (re)train the vocabulary when the corpus
        has no vocabulary yet or has doubled since it was trained."""
        if self._pending:
            seg = store.Segment.from_features(list(self._pending.items()))
            self._pending = {}
            self._segments.append(seg)
            si = len(self._segments) - 1
            for r, uid in enumerate(seg.ids):
                self._where[uid] = (si, r)
            self._bow = None
        live = sum(s.n_live_features(corners=False) for s in self._segments)  # the vocabulary is SIFT's
        if live == 0:
            return
        target = self._target_words(live)
        if self._vocab is None or (live >= 2 * self._vocab_features and target > self._vocab.size):
            self._train_vocab(live, target)
        for seg in self._segments:
            if seg.words is None:
                seg.words = self._assign_all(seg)
                seg.words_file = None

    def _target_words(self, live: int) -> int:
        c = self.config
        return int(min(c.max_words, max(c.min_words, live // c.features_per_word)))

    def _train_vocab(self, live: int, n_words: int) -> None:
        rng = np.random.default_rng(0)
        n_sample = min(live, n_words * self.config.sample_per_word, 600_000)
        parts = []
        for seg in self._segments:
            rows = seg.live_rows()
            if not len(rows):
                continue
            idx = np.concatenate([np.arange(seg.off[r], seg.sift_end(r)) for r in rows])
            take = max(1, round(n_sample * len(idx) / live))
            parts.append(np.asarray(seg.desc[np.sort(rng.choice(idx, min(take, len(idx)), replace=False))]))
        self._vocab = Vocabulary.train(rootsift(np.concatenate(parts)), n_words)
        self._vocab_file = None
        self._vocab_features = live
        for seg in self._segments:
            seg.words = None
            seg.words_file = None
        self._bow = None

    def _assign_all(self, seg: store.Segment, chunk: int = 50_000) -> np.ndarray:
        """Words of a segment's SIFT features; corner features get -1 (they are matched by descriptor only, in
        the last second chance, and stay out of the inverted file)."""
        out = np.full(len(seg.desc), -1, np.int32)
        sift = np.nonzero(~seg.corner_mask())[0]
        for s in range(0, len(sift), chunk):
            idx = sift[s : s + chunk]
            out[idx] = self._vocab.assign(rootsift(np.asarray(seg.desc[idx])))
        return out

    def _build_bow(self) -> _Bow:
        from scipy.sparse import csr_matrix

        rows, cols, seg_of_row, local_row, live = [], [], [], [], []
        n_rows = 0
        for si, seg in enumerate(self._segments):
            counts = np.diff(seg.off)
            r = np.repeat(np.arange(seg.n_rows), counts)
            w = np.asarray(seg.words)
            keep = w >= 0  # corner features have no word
            if seg.dead:
                keep &= ~np.isin(r, list(seg.dead))
            rows.append(r[keep] + n_rows)
            cols.append(w[keep])
            alive = np.ones(seg.n_rows, bool)
            alive[list(seg.dead)] = False
            live.append(alive)
            seg_of_row.append(np.full(seg.n_rows, si, np.int32))
            local_row.append(np.arange(seg.n_rows))
            n_rows += seg.n_rows
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int32)
        k = self._vocab.size
        tf = csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_rows, k))
        tf.sum_duplicates()
        n_live = max(1, len(self._where))
        df = np.bincount(tf.indices, minlength=k)
        idf = np.log1p(n_live / np.maximum(df, 1)).astype(np.float32)  # > 0 even for words in every image
        tf.data = np.sqrt(tf.data) * idf[tf.indices]  # sqrt tempers bursts (repeated textures)
        norms = np.sqrt(np.asarray(tf.multiply(tf).sum(axis=1)).ravel())
        tf = csr_matrix(tf.multiply(1.0 / np.maximum(norms, 1e-9)[:, None]))
        return _Bow(
            tf.tocsc(),
            idf,
            np.concatenate(seg_of_row) if seg_of_row else np.zeros(0, np.int32),
            np.concatenate(local_row) if local_row else np.zeros(0, np.int64),
            np.concatenate(live) if live else np.zeros(0, bool),
        )

    # ----- search ----------------------------------------------------------------------------------------
    def search(self, image, bbox=None, k: int = 10) -> list[InstanceMatch]:
        """Indexed images containing `image` (or its `bbox` crop, [x, y, w, h] pixels), best first.

        Only geometrically verified matches are returned. Raises QueryError for an unreadable, tiny or blank
        query image.
        """
        image = load_query_image(image, min_side=1)
        crop, offset = _crop(image, bbox)
        with self._lock, _one_blas_thread():
            self._materialize()
            attempts = self._query_attempts(crop, offset)
            if self._vocab is None or not self._where:
                return []
            if self._bow is None:
                self._bow = self._build_bow()
            bow = self._bow
            for variants in attempts:
                best = self._search_variants(bow, variants)
                if best:
                    break
            if not best and self.config.corner_budget > 0 and self._has_corners():
                best = self._corner_chance(bow, crop, offset, attempts[0][0].feats)
            matches = [self._match(bow, row, *val, crop_box=(offset, crop.size)) for row, val in best.items()]
        matches.sort(key=lambda m: (-m.inliers, -m.bow))
        return matches[:k]

    def verify_units(self, image, unit_ids, bbox=None) -> dict[str, int]:
        """Inlier counts of the query image (or its crop) against the given indexed units: geometric verification
        of candidates another signal found (the `geometric` reranker). Units with no features or no verified
        match are absent."""
        image = load_query_image(image, min_side=1)
        crop, offset = _crop(image, bbox)
        unit_ids = list(unit_ids)
        out: dict[str, int] = {}
        with self._lock, _one_blas_thread():
            self._materialize()
            variants = [v for attempt in self._query_attempts(crop, offset) for v in attempt]
            if self._vocab is None:
                return out
            cands = []
            for i, u in enumerate(unit_ids):
                loc = self._where.get(u)
                if loc is None:
                    continue
                seg, r = self._segments[loc[0]], loc[1]
                a, b = int(seg.off[r]), seg.sift_end(r)
                cands.append(Candidate(i, np.asarray(seg.words[a:b]), np.asarray(seg.desc[a:b]),
                                       np.asarray(seg.xy[a:b]), float(seg.meta[r, 2]), np.asarray(seg.sa[a:b])))
            for v in variants:
                found = verify(v.words, v.root, v.feats.xy, cands, min_sim=self.config.min_sim,
                               min_inliers=self.config.min_inliers, threshold_px=self.config.ransac_px,
                               q_sa=v.sa if self.config.frame_vote else None)
                for ver in found:
                    u = unit_ids[ver.row]
                    out[u] = max(out.get(u, 0), int(ver.inliers))
        return out

    def _search_variants(self, bow: _Bow, variants: list["_QueryVariant"]) -> dict:
        """Verified matches (image row -> best) of one set of query variants: first pass, then second chances."""
        # One shortlist over (variant, image) pairs: a mirrored query spends it on the mirrored variant.
        scores = np.stack([self._bow_scores(bow, v.words[:, 0]) for v in variants])
        best: dict[int, tuple[int, np.ndarray, bool, float]] = {}
        for vi, rows in self._shortlist(scores, self.config.shortlist):
            v = variants[vi]
            cands = [self._candidate(bow, int(g)) for g in rows]
            found = verify(
                v.words,
                v.root,
                v.feats.xy,
                cands,
                min_sim=self.config.min_sim,
                min_inliers=self.config.min_inliers,
                threshold_px=self.config.ransac_px,
                q_sa=v.sa if self.config.frame_vote else None,
            )
            self._keep_best(best, found, v, vi, scores)
        if not best and self.config.deep_shortlist > 0:
            self._deep(bow, variants, best)
        if not best and self.config.rescue_shortlist > 0:
            self._rescue(bow, variants, scores, best)
        return best

    @staticmethod
    def _shortlist(scores: np.ndarray, n: int, skip: int = 0):
        """(variant, image rows) of the (variant, image) pairs ranked skip..n by tf-idf score."""
        flat = scores.ravel()
        n_short = min(n, int((flat > 0).sum()))
        if n_short <= skip:
            return []
        top = np.argsort(-flat, kind="stable")[skip:n_short] if n_short < len(flat) else np.argsort(-flat)[skip:]
        out = []
        for vi in range(scores.shape[0]):
            rows = top[top // scores.shape[1] == vi] % scores.shape[1]
            if len(rows):
                out.append((vi, np.sort(rows)))
        return out

    @staticmethod
    def _keep_best(best, found, v: "_QueryVariant", vi: int, scores: np.ndarray) -> None:
        for ver in found:
            prev = best.get(ver.row)
            if prev is None or ver.inliers > prev[0]:
                t = np.vstack([ver.affine, [0.0, 0.0, 1.0]]) @ np.linalg.inv(v.to_query)
                best[ver.row] = (ver.inliers, t, v.mirrored, float(scores[vi, ver.row]))

    def _deep(self, bow: _Bow, variants: list["_QueryVariant"], best: dict) -> None:
        """Second chance when nothing verified, for small and degraded crops: a crop covering 1-2 % of a photo
        meets only 10-30 of its indexed features, so its match (a) ranks low in a tf-idf shortlist scored with
        one word per feature and (b) rarely reaches `min_inliers`. So: rank images by tf-idf over every assigned
        word (multiple assignment, Jegou et al. 2010), verify the best `deep_shortlist` pairs (within
        `deep_budget` indexed features) with the keypoint frames required to agree (Lowe 2004's Hough vote),
        and accept a clear winner with `weak_min_inliers` (see `_accept_weak`)."""
        c = self.config
        soft = np.stack([self._bow_scores(bow, v.words.reshape(-1)) for v in variants])
        pairs = self._shortlist(soft, c.deep_shortlist)
        budget = c.deep_budget
        weak: dict = {}
        for vi, rows in pairs:
            v = variants[vi]
            cands = []
            for g in rows[np.argsort(-soft[vi, rows], kind="stable")]:
                cand = self._candidate(bow, int(g))
                budget -= len(cand.words)
                if budget < 0:
                    break
                cands.append(cand)
            found = verify(v.words, v.root, v.feats.xy, cands, min_sim=c.min_sim,
                           min_inliers=max(3, c.weak_min_inliers - c.weak_margin), threshold_px=c.ransac_px, q_sa=v.sa)
            self._keep_best(weak, found, v, vi, soft)
            if budget < 0:
                break
        self._accept_weak(best, weak)

    def _accept_weak(self, best: dict, weak: dict) -> None:
        """Move second-chance matches into `best`: all that reach `min_inliers`; otherwise only a clear winner,
        `weak_min_inliers` or more and `weak_margin` ahead of the runner-up. A handful of consistent inliers is
        what a small crop of the right image gives, but also what a large unrelated query finds by chance in
        several images at once; the margin tells the two apart."""
        c = self.config
        strong = {r: v for r, v in weak.items() if v[0] >= c.min_inliers}
        if strong:
            best.update(strong)
            return
        ranked = sorted(weak.items(), key=lambda kv: -kv[1][0])
        if not ranked or ranked[0][1][0] < c.weak_min_inliers:
            return
        runner_up = ranked[1][1][0] if len(ranked) > 1 else 0
        if ranked[0][1][0] >= runner_up + c.weak_margin:
            best[ranked[0][0]] = ranked[0][1]

    def _rescue(self, bow: _Bow, variants: list["_QueryVariant"], scores: np.ndarray, best: dict, *,
                corners: bool = False) -> None:
        """Second chance when word correspondences verified nothing: the best `rescue_shortlist` (variant, image)
        pairs by tf-idf, in order and within `rescue_budget` descriptor comparisons, are verified by direct
        descriptor matching with the ratio test. With `corners`, the indexed images' corner features take part
        too (the query variants then carry theirs) within `corner_budget`."""
        c = self.config
        flat = scores.ravel()
        # With corners, images sharing no word with the query come last but still come: a crop that holds few
        # SIFT keypoints may share none with its photo (removed images never come).
        if corners:
            flat = np.where(np.tile(bow.live, scores.shape[0]), flat, -1.0)
        n = min(c.rescue_shortlist, int((flat >= 0).sum()) if corners else int((flat > 0).sum()))
        if n == 0:
            return
        top = np.argsort(-flat, kind="stable")[:n]
        n_img = scores.shape[1]
        budget = c.corner_budget if corners else c.rescue_budget
        todo: dict[int, list[int]] = {}
        weak: dict = {}
        for pair in top:
            vi, g = int(pair // n_img), int(pair % n_img)
            seg = self._segments[int(bow.seg_of_row[g])]
            r = int(bow.local_row[g])
            n_feat = int(seg.off[r + 1]) - int(seg.off[r]) if corners else seg.sift_end(r) - int(seg.off[r])
            cost = len(variants[vi].feats) * n_feat
            if cost > budget:
                break
            budget -= cost
            todo.setdefault(vi, []).append(g)
        for vi, rows in todo.items():
            v = variants[vi]
            found = verify_ratio(
                v.root,
                v.feats.xy,
                [self._candidate(bow, g, corners) for g in rows],
                ratio=c.rescue_ratio,
                min_inliers=max(3, c.weak_min_inliers - c.weak_margin),
                threshold_px=c.ransac_px,
                q_sa=v.sa,
                strong_inliers=c.min_inliers,
            )
            self._keep_best(weak, found, v, vi, scores)
        self._accept_weak(best, weak)

    def _has_corners(self) -> bool:
        return any(seg.meta[:, 3].any() for seg in self._segments)

    def _corner_chance(self, bow: _Bow, crop, offset: tuple[int, int], feats: LocalFeatures) -> dict:
        """Last chance when nothing verified: the query's SIFT features `feats` plus its corner features, matched
        by descriptor against the indexed images' SIFT and corner features (`_rescue` with corners). A crop of
        1-2 % of a photo meets only a handful of the photo's SIFT keypoints; the corners the index keeps beside
        them are what gives such a crop enough inliers (docs/benchmarks.md, hard crops)."""
        variants = self._query_variants(with_corners(feats, self._query_corners(crop)), crop, offset)
        scores = np.stack([self._bow_scores(bow, v.words[:, 0]) for v in variants])
        best: dict = {}
        self._rescue(bow, variants, scores, best, corners=True)
        return best

    def _query_corners(self, crop) -> LocalFeatures:
        """Corner features of the query, at the scales `_query_features` detects SIFT at."""
        c = self.config
        arr, ws = to_gray_array(crop, max_side=c.max_side, min_side=c.query_min_side)
        size = (int(crop.size[0]), int(crop.size[1]))
        out = corner_features(arr, size, ws, c.query_max_features)
        if c.query_both_scales and max(crop.size) < c.query_min_side and ws < 1.0:
            arr, ws = to_gray_array(crop, max_side=c.max_side)
            out = concat_features(out, corner_features(arr, size, ws, c.query_max_features))
        return out

    def _query_attempts(self, crop, offset: tuple[int, int]) -> list[list[_QueryVariant]]:
        """The query's variants, then, for a feature-poor query, the variants of a second detection at a lower
        contrast threshold, searched only when the first verifies nothing. Downscaling, recompression and
        contrast changes push the query's structure below the threshold its indexed copy passed; the lower
        threshold brings those keypoints back (adaptive keypoint count), but also noise keypoints, so it never
        replaces a detection that works."""
        c = self.config
        sets = [self._query_features(crop, c.contrast)]
        if len(sets[0]) < c.query_min_features and c.retry_contrast < c.contrast:
            retry = self._query_features(crop, c.retry_contrast)
            if len(retry) > len(sets[0]):
                sets.append(retry)
        sets = [f for f in sets if len(f) >= 3]
        if not sets:
            raise QueryError(
                "the query image has no distinctive detail (blank, flat or too small); instance search needs "
                "texture, edges or text - try a larger crop"
            )
        return [self._query_variants(f, crop, offset) for f in sets]

    def _query_variants(self, feats: LocalFeatures, crop, offset: tuple[int, int]) -> list[_QueryVariant]:
        c = self.config
        out = []
        shift = np.array([[1.0, 0, offset[0]], [0, 1, offset[1]], [0, 0, 1]])
        w = crop.size[0]
        for mirrored in [False, True] if c.mirror else [False]:
            f = mirror_features(feats) if mirrored else feats
            root = rootsift(f.desc)
            if self._vocab is None:
                words = np.zeros((len(f), 1), np.int32)
            else:
                words = self._vocab.assign(root, multi=c.multi_assign, coarse_probe=c.coarse_probe)
            # Variant pixels -> query image pixels: undo the mirror (pixel centres), then the crop offset.
            m = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]]) if mirrored else np.eye(3)
            out.append(_QueryVariant(f, root, words, shift @ m, mirrored))
        return out

    def _query_features(self, crop, contrast: float) -> LocalFeatures:
        """The query's features; a small query (upscaled for detection) also keeps those detected at its own
        scale. Upscaling brings back keypoints a downscaled crop lost, but moves and reshapes the ones an
        unscaled crop shares with its photo (measured on hard crops: each scale alone misses queries the other
        finds); verification counts an indexed keypoint once, so the union adds no double inliers."""
        c = self.config
        up = extract_local_features(crop, max_side=c.max_side, max_features=c.query_max_features,
                                    min_side=c.query_min_side, contrast=contrast, grid=c.grid, corners=0)
        if not c.query_both_scales or max(crop.size) >= c.query_min_side or up.work_scale >= 1.0:
            return up
        own = extract_local_features(crop, max_side=c.max_side, max_features=c.query_max_features, min_side=0,
                                     contrast=contrast, grid=c.grid, corners=0)
        return concat_features(up, own)

    @staticmethod
    def _bow_scores(bow: _Bow, words: np.ndarray) -> np.ndarray:
        uw, cnt = np.unique(words, return_counts=True)
        q = np.sqrt(cnt).astype(np.float32) * bow.idf[uw]
        return np.asarray(bow.matrix[:, uw] @ q).ravel()

    def _candidate(self, bow: _Bow, g: int, corners: bool = False) -> Candidate:
        seg = self._segments[int(bow.seg_of_row[g])]
        r = int(bow.local_row[g])
        a, b = int(seg.off[r]), (int(seg.off[r + 1]) if corners else seg.sift_end(r))
        return Candidate(g, np.asarray(seg.words[a:b]), np.asarray(seg.desc[a:b]), np.asarray(seg.xy[a:b]),
                         float(seg.meta[r, 2]), np.asarray(seg.sa[a:b]))

    def _match(self, bow: _Bow, row, inliers, t, mirrored, score, *, crop_box) -> InstanceMatch:
        seg = self._segments[int(bow.seg_of_row[row])]
        r = int(bow.local_row[row])
        (ox, oy), (cw, ch) = crop_box
        corners = np.array([[ox, oy, 1], [ox + cw, oy, 1], [ox + cw, oy + ch, 1], [ox, oy + ch, 1]], float)
        p = corners @ t.T
        p = p[:, :2] / p[:, 2:3]
        w, h = float(seg.meta[r, 0]), float(seg.meta[r, 1])
        x0, y0 = np.clip(p.min(axis=0), 0, [w, h])
        x1, y1 = np.clip(p.max(axis=0), 0, [w, h])
        box = [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)]
        return InstanceMatch(
            seg.ids[r], float(inliers), int(inliers), box, [[float(v) for v in row_] for row_ in t], mirrored, score
        )

    # ----- introspection ---------------------------------------------------------------------------------
    def unit_ids(self) -> set[str]:
        with self._lock:
            return set(self._where) | set(self._pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._where) + len(self._pending)

    def __contains__(self, unit_id: str) -> bool:
        with self._lock:
            return unit_id in self._where or unit_id in self._pending

    def stats(self) -> dict[str, Any]:
        with self._lock:
            disk = 0
            for fn in os.listdir(self.folder):
                disk += os.path.getsize(os.path.join(self.folder, fn))
            feats = sum(s.n_live_features() for s in self._segments) + sum(len(f) for f in self._pending.values())
            n = len(self)
            return {
                "images": n,
                "features": feats,
                "bytes": disk,
                "bytes_per_image": disk / n if n else 0.0,
                "codebook_size": self._vocab.size if self._vocab is not None else 0,
                "segments": len(self._segments),
                "pending": len(self._pending),
                "dirty": self._dirty,
            }


_BLAS = None


def _one_blas_thread():
    """A context in which BLAS runs on one thread. A query's products are small (a GEMM per vocabulary cell, per
    candidate); a BLAS thread pool adds more synchronisation than it saves on them, several times the CPU on a
    busy machine (measured: word assignment 52 -> 10 ms CPU). No-op without threadpoolctl."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except Exception:  # not installed, or no introspectable BLAS
            _BLAS = False
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")


_MIN_QUERY_SIDE = 16


def _crop(image, bbox) -> tuple[Any, tuple[int, int]]:
    """The query region (clipped to the image) and its top-left offset in the query image."""
    x0, y0, x1, y1 = (0, 0, *image.size) if bbox is None else clip_box(image.size, bbox)
    if x1 - x0 < _MIN_QUERY_SIDE or y1 - y0 < _MIN_QUERY_SIDE:
        raise QueryError(
            f"the query region is {x1 - x0}x{y1 - y0} pixels; instance search needs at least "
            f"{_MIN_QUERY_SIDE}x{_MIN_QUERY_SIDE}"
        )
    region = image if (x0, y0, x1, y1) == (0, 0, *image.size) else image.crop((x0, y0, x1, y1))
    return region, (x0, y0)
