"""The keyword index: BM25 over unit text in segments of term frequencies, saved in `<index>/keyword/`.

Segments hold postings (term → rows, term frequency) and document lengths, never scores: BM25 (Lucene's idf and
bm25s's term-frequency saturation, Lù 2024; Kamphuis et al. 2020) is computed at query time from statistics shared
by all segments (live documents, their average length, each term's document frequency), so an index grown by
segments scores exactly as one built at once, and k1 and b are query-time parameters, not part of the index. An
index run adds one segment for new and changed assets and marks the rows of changed and removed assets dead
(Lucene's segments and live-docs bitmaps); segments are merged when there are too many, and merged without the dead
rows when a third of the rows are dead.

The keyword index is derived data: it is stamped with the store version it reflects and keeps the content hash of
every asset it holds; a stale one is synced with the store by those hashes (or rebuilt), never trusted as it is.
On disk: `meta.json` (format, version, the files of this generation), written last by rename, names immutable
segment files; files no generation names are removed after the next save.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

STOPWORDS = "en"
FORMAT = 2  # on-disk format of keyword/ (1: one bm25s index of precomputed scores)
# Anserini's BM25 defaults (Yang, Fang & Lin 2017; Pyserini's baselines): less length normalisation than the usual
# b = 0.75, which favours short units more. On vaswani hybrid nDCG@10 goes 0.489 -> 0.511 (RRF), on both halves of the
# queries; bm25s's 1.5 / 0.75 were used before (docs/benchmarks.md, "Adaptive ranking").
K1, B = 0.9, 0.4
MAX_SEGMENTS = 8  # more than this: every segment but the largest is merged into one
MAX_DEAD_FRACTION = 1 / 3  # more dead rows than this: all segments are merged without them
REBUILD_FRACTION = 0.5  # syncing more than this share of the assets: rebuild from the store instead


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


class TermStemmer:
    """Word → stemmed term the way bm25s tokenises (its token pattern, lower case, English stopwords, Snowball),
    with a cache: snippets stem every word of every shown unit, so this must be cheap."""

    def __init__(self):
        import re

        from bm25s.tokenization import STOPWORDS_EN

        self._stem = _stemmer().stemWord
        self._stop = set(STOPWORDS_EN)
        self._pattern = re.compile(r"(?u)\b\w\w+\b")
        self._cache: dict[str, str | None] = {}

    def word(self, w: str) -> str | None:
        try:
            return self._cache[w]
        except KeyError:
            lw = w.lower()
            t = None if (len(lw) < 2 or lw in self._stop) else self._stem(lw)
            if len(self._cache) < 200_000:
                self._cache[w] = t
            return t

    def tokens(self, text: str) -> list[str]:
        """Query tokens in order, repeats kept (as bm25s.tokenize gives them)."""
        return [t for t in map(self.word, self._pattern.findall(text or "")) if t]

    def terms(self, text: str) -> set[str]:
        return set(self.tokens(text))


class Segment:
    """Immutable postings of a run of rows: for term t (a global term id below `n_terms`), rows
    `indices[indptr[t]:indptr[t+1]]` (local to the segment) with term frequencies `tf` at the same positions."""

    def __init__(self, name: str, indptr: np.ndarray, indices: np.ndarray, tf: np.ndarray, doclen: np.ndarray,
                 unit_ids: np.ndarray, asset_ids: np.ndarray):
        self.name = name
        self.indptr, self.indices, self.tf, self.doclen = indptr, indices, tf, doclen
        self.unit_ids, self.asset_ids = unit_ids, asset_ids

    @property
    def n_rows(self) -> int:
        return len(self.doclen)

    @property
    def n_terms(self) -> int:
        return len(self.indptr) - 1

    def cols(self) -> np.ndarray:
        """The term id of each posting, expanded from indptr (for document frequencies and merges; not kept:
        it would cost a reader 4 bytes a posting)."""
        return np.repeat(np.arange(self.n_terms, dtype=np.int32), np.diff(self.indptr))

    def df(self, live: np.ndarray, n_terms: int) -> np.ndarray:
        """Documents per term among this segment's live rows, padded to `n_terms`."""
        keep = live[self.indices]
        return np.bincount(self.cols()[keep], minlength=n_terms).astype(np.int64)

    @classmethod
    def from_postings(cls, rows: np.ndarray, cols: np.ndarray, tf: np.ndarray, doclen: np.ndarray, n_terms: int,
                      unit_ids, asset_ids) -> "Segment":
        order = np.lexsort((rows, cols))
        cols, rows, tf = cols[order], rows[order], tf[order]
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_terms), out=indptr[1:])
        return cls(f"seg-{uuid.uuid4().hex[:12]}", indptr, rows.astype(np.int32), tf.astype(np.uint16),
                   np.asarray(doclen, dtype=np.int32), np.asarray(unit_ids, dtype=object),
                   np.asarray(asset_ids, dtype=object))

    def save(self, folder: Path) -> None:
        import pyarrow as pa
        import pyarrow.feather as feather

        np.savez(folder / f"{self.name}.npz", indptr=self.indptr, indices=self.indices, tf=self.tf,
                 doclen=self.doclen)
        feather.write_feather(pa.table({"unit_id": pa.array(self.unit_ids.tolist(), pa.string()),
                                        "asset_id": pa.array(self.asset_ids.tolist(), pa.string())}),
                              str(folder / f"{self.name}.ids.arrow"), compression="uncompressed")

    @classmethod
    def load(cls, folder: Path, name: str) -> "Segment":
        import pyarrow.feather as feather

        with np.load(folder / f"{name}.npz") as z:
            arrays = {k: z[k] for k in ("indptr", "indices", "tf", "doclen")}
        t = feather.read_table(str(folder / f"{name}.ids.arrow"))
        return cls(name, arrays["indptr"], arrays["indices"], arrays["tf"], arrays["doclen"],
                   t.column("unit_id").to_numpy(zero_copy_only=False),
                   t.column("asset_id").to_numpy(zero_copy_only=False))


def tokenize(texts: Sequence[str], vocab: dict[str, int], terms: list[str]):
    """(rows, term ids, term frequencies, document lengths) of `texts`, tokenised as bm25s does (its token
    pattern, English stopwords, Snowball stemmer); new terms are appended to `vocab` and `terms`."""
    import bm25s

    n = len(texts)
    if not n:
        z = np.zeros(0, np.int64)
        return z, z, z, np.zeros(0, np.int32)
    tok = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer(), show_progress=False)
    local = np.zeros(len(tok.vocab), dtype=np.int64)
    for term, i in tok.vocab.items():
        g = vocab.get(term)
        if g is None:
            g = vocab[term] = len(terms)
            terms.append(term)
        local[i] = g
    lens = np.fromiter((len(d) for d in tok.ids), dtype=np.int64, count=n)
    if not lens.sum():
        z = np.zeros(0, np.int64)
        return z, z, z, lens.astype(np.int32)
    rows = np.repeat(np.arange(n, dtype=np.int64), lens)
    cols = local[np.concatenate([np.asarray(d, dtype=np.int64) for d in tok.ids if len(d)])]
    width = max(len(terms), 1)
    keys, tf = np.unique(rows * width + cols, return_counts=True)
    return keys // width, keys % width, tf, lens.astype(np.int32)


class KeywordIndex:
    """BM25 over units in segments: row i (over all segments, in order) is unit `unit_ids[i]` of asset
    `asset_ids[i]`; rows of changed or removed assets stay in place, dead, until their segment is merged."""

    def __init__(self, segments: list[Segment], dead: list[np.ndarray], terms: list[str], hashes: dict,
                 version: int, files: dict | None = None):
        self.segments, self.dead = segments, dead
        self.terms = terms
        self._vocab = {t: i for i, t in enumerate(terms)}
        self.hashes = hashes  # asset id -> content hash of the asset whose rows are live
        self.version = version
        self.files = files or {}  # what the generation on disk holds (segment name -> dead-rows file)
        self.stemmer = TermStemmer()  # how queries and snippets are tokenised
        self._id_index = None
        self._stats(None)

    # -- statistics shared by all segments ---------------------------------------------------------------
    def _stats(self, seg_df: list | None) -> None:
        n_terms = len(self.terms)
        self.unit_ids = np.concatenate([s.unit_ids for s in self.segments]) if self.segments else np.zeros(0, object)
        self.asset_ids = np.concatenate([s.asset_ids for s in self.segments]) if self.segments else np.zeros(0, object)
        live = np.concatenate([~d for d in self.dead]) if self.segments else np.zeros(0, bool)
        self.live = live
        self._dead_rows = np.flatnonzero(~live)
        self._starts = np.cumsum([0] + [s.n_rows for s in self.segments])
        doclen = np.concatenate([s.doclen for s in self.segments]) if self.segments else np.zeros(0, np.int32)
        self.n_docs = int(live.sum())
        self._doclen = doclen
        self._avgdl = float(doclen[live].mean()) if self.n_docs else 1.0
        self._norms: dict[tuple[float, float], np.ndarray] = {}
        self.norm(K1, B)  # the default pair is always among the cached ones
        self._seg_df = seg_df if seg_df is not None else [
            s.df(~d, s.n_terms) for s, d in zip(self.segments, self.dead)]
        df = np.zeros(n_terms, np.int64)
        for sd in self._seg_df:
            df[:len(sd)] += sd
        self.df = df

    def norm(self, k1: float, b: float) -> np.ndarray:
        """bm25s's saturation is tf / (tf + k1 (1 - b + b dl / avgdl)): the denominator's constant part per row,
        kept for the few (k1, b) pairs asked for."""
        key = (float(k1), float(b))
        got = self._norms.get(key)
        if got is None:
            if not (k1 >= 0 and 0 <= b <= 1):
                from ..errors import ConfigError

                raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
            got = (key[0] * ((1 - key[1]) + key[1] * self._doclen / (self._avgdl or 1.0))).astype(np.float64)
            if len(self._norms) < 4:
                self._norms[key] = got
        return got

    def id_index(self):
        """A pandas Index over the live unit ids in row order (the store's scan order after a full build and
        appends), built once."""
        if self._id_index is None:
            import pandas as pd

            self._id_index = pd.Index(self.unit_ids[self.live])
        return self._id_index

    def __len__(self) -> int:
        return self.n_docs

    # -- building -------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, unit_ids, asset_ids, texts, version: int, hashes: dict | None = None) -> "KeywordIndex":
        """One segment over these units. `hashes` (asset id -> content hash) lets later syncs find changes."""
        terms: list[str] = []
        seg = cls._segment(unit_ids, asset_ids, texts, {}, terms)
        return cls([seg] if seg else [], [np.zeros(seg.n_rows, bool)] if seg else [], terms, dict(hashes or {}),
                   version)

    @staticmethod
    def _segment(unit_ids, asset_ids, texts, vocab: dict, terms: list) -> Segment | None:
        if not len(texts):
            return None
        rows, cols, tf, lens = tokenize(["" if t is None else t for t in texts], vocab, terms)
        return Segment.from_postings(rows, cols, tf, lens, len(terms), unit_ids, asset_ids)

    @classmethod
    def from_store(cls, store, version: int) -> "KeywordIndex":
        """A full build from the store's `text` column."""
        hashes = store.asset_hashes()
        t = store.scan_units(["id", "asset_id", "text"])
        return cls.build(t.column("id").to_numpy(zero_copy_only=False),
                         t.column("asset_id").to_numpy(zero_copy_only=False), t.column("text").to_pylist(),
                         version, hashes)

    def sync(self, store, version: int) -> "KeywordIndex":
        """This index brought to the store at `version`: rows of changed and removed assets marked dead, one
        new segment for the units of new and changed assets (by content hash). A new object: readers holding
        this one are not disturbed. Rebuilds from the store when most assets changed."""
        hashes = store.asset_hashes()
        changed = [a for a, h in hashes.items() if a not in self.hashes or self.hashes[a] != h]
        removed = [a for a in self.hashes if a not in hashes]
        if not changed and not removed:
            return self.with_version(version, hashes)
        if len(changed) + len(removed) > REBUILD_FRACTION * max(len(hashes), len(self.hashes), 1):
            return KeywordIndex.from_store(store, version)
        t = store.units_of_assets(changed, ["id", "asset_id", "text"])
        return self.apply(set(changed) | set(removed), t.column("id").to_numpy(zero_copy_only=False),
                          t.column("asset_id").to_numpy(zero_copy_only=False), t.column("text").to_pylist(),
                          hashes, version)

    def with_version(self, version: int, hashes: dict | None = None) -> "KeywordIndex":
        out = KeywordIndex.__new__(KeywordIndex)
        out.__dict__.update(self.__dict__)
        out.version = version
        out.hashes = dict(hashes) if hashes is not None else self.hashes
        return out

    def apply(self, drop_assets, unit_ids, asset_ids, texts, hashes: dict, version: int) -> "KeywordIndex":
        """A new index: rows of `drop_assets` dead, then a segment of these units; `hashes` becomes the asset
        hash map. Merges segments when there are too many or too many dead rows."""
        import pandas as pd

        drop = list(drop_assets)
        dead, seg_df = list(self.dead), list(self._seg_df)
        if drop:
            for i, s in enumerate(self.segments):
                # a hash lookup: np.isin sorts object arrays (~100 s for 1M ids under load; pandas ~1 s)
                hit = pd.Series(s.asset_ids, copy=False).isin(drop).to_numpy() & ~dead[i]
                if hit.any():
                    dead[i] = dead[i] | hit
                    seg_df[i] = s.df(~dead[i], s.n_terms)
        terms = list(self.terms)
        segments = list(self.segments)
        seg = self._segment(unit_ids, asset_ids, texts, dict(self._vocab), terms)
        if seg is not None:
            segments.append(seg)
            dead.append(np.zeros(seg.n_rows, bool))
            seg_df.append(seg.df(~dead[-1], seg.n_terms))
        out = KeywordIndex.__new__(KeywordIndex)
        out.segments, out.dead, out.terms = segments, dead, terms
        out._vocab = self._vocab if len(terms) == len(self.terms) else {t: i for i, t in enumerate(terms)}
        out.hashes, out.version, out.files = dict(hashes), version, self.files
        out.stemmer, out._id_index = self.stemmer, None
        out._stats(seg_df)
        n_rows = int(out._starts[-1])
        if n_rows and len(out._dead_rows) > MAX_DEAD_FRACTION * n_rows:
            out = out.merged(range(len(segments)))
        elif len(segments) > MAX_SEGMENTS:
            biggest = int(np.argmax([s.n_rows for s in segments]))
            out = out.merged([i for i in range(len(segments)) if i != biggest])
        return out

    def merged(self, which) -> "KeywordIndex":
        """A new index with the segments `which` merged into one, without their dead rows (placed where the
        first of them was, so rows keep their order)."""
        which = sorted(which)
        if not which:
            return self
        n_terms = len(self.terms)
        rows, cols, tf, lens, uids, aids = [], [], [], [], [], []
        base = 0
        for i in which:
            s, live = self.segments[i], ~self.dead[i]
            new_row = np.cumsum(live) - 1 + base
            keep = live[s.indices]
            rows.append(new_row[s.indices[keep]])
            cols.append(s.cols()[keep])
            tf.append(s.tf[keep])
            lens.append(s.doclen[live])
            uids.append(s.unit_ids[live])
            aids.append(s.asset_ids[live])
            base += int(live.sum())
        seg = Segment.from_postings(np.concatenate(rows), np.concatenate(cols), np.concatenate(tf),
                                    np.concatenate(lens), n_terms, np.concatenate(uids), np.concatenate(aids))
        segments, dead, seg_df = [], [], []
        for i, s in enumerate(self.segments):
            if i == which[0]:
                segments.append(seg)
                dead.append(np.zeros(seg.n_rows, bool))
                seg_df.append(seg.df(~dead[-1], seg.n_terms))
            elif i not in which:
                segments.append(s)
                dead.append(self.dead[i])
                seg_df.append(self._seg_df[i])
        out = KeywordIndex.__new__(KeywordIndex)
        out.__dict__.update(self.__dict__)
        out.segments, out.dead, out._id_index = segments, dead, None
        out._stats(seg_df)
        return out

    # -- disk ---------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the files this generation adds (new segments, dead-row masks, terms, hashes), then `meta.json`
        by rename; files no longer named are removed afterwards. A reader sees the old generation or the new."""
        import pyarrow as pa
        import pyarrow.feather as feather

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        gen = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:6]}"
        old = _read_meta(folder) or {}
        on_disk = set(old.get("segments", {})) if old.get("format") == FORMAT else set()
        segs = {}
        for s, d in zip(self.segments, self.dead):
            if s.name not in on_disk:
                s.save(folder)
            dead_file = None
            if d.any():
                prev = old.get("segments", {}).get(s.name) if s.name in on_disk else None
                prev_dead = _load_dead(folder, prev) if prev else None
                if prev_dead is not None and np.array_equal(prev_dead, d):
                    dead_file = prev
                else:
                    dead_file = f"{s.name}.dead-{gen}.npy"
                    np.save(folder / dead_file, np.packbits(d))
            segs[s.name] = dead_file
        terms_file, hashes_file = f"terms-{gen}.arrow", f"hashes-{gen}.arrow"
        if old.get("terms_count") == len(self.terms) and old.get("terms") and (folder / old["terms"]).exists():
            terms_file = old["terms"]  # terms only grow: same count, same list
        else:
            feather.write_feather(pa.table({"term": pa.array(self.terms, pa.string())}), str(folder / terms_file),
                                  compression="uncompressed")
        ids = list(self.hashes)
        feather.write_feather(pa.table({"asset_id": pa.array(ids, pa.string()),
                                        "hash": pa.array([self.hashes[a] for a in ids], pa.string())}),
                              str(folder / hashes_file), compression="uncompressed")
        meta = {"format": FORMAT, "version": self.version, "order": [s.name for s in self.segments],
                "segments": segs, "terms": terms_file, "terms_count": len(self.terms), "hashes": hashes_file,
                "rows": [s.n_rows for s in self.segments]}
        tmp = folder / f".meta-{gen}.json"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, folder / "meta.json")
        keep = {"meta.json", terms_file, hashes_file, *(f for f in segs.values() if f)}
        keep |= {f"{n}{ext}" for n in segs for ext in (".npz", ".ids.arrow")}
        for p in folder.iterdir():
            if p.name not in keep:
                if p.is_dir():
                    import shutil

                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    @staticmethod
    def saved_version(folder: Path) -> int | None:
        """The store version of the index saved in `folder` (cheap: does not read the index)."""
        meta = _read_meta(Path(folder))
        try:
            return int(meta["version"]) if meta and meta.get("format") == FORMAT else None
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex | None":
        """The saved index, or None when there is none, it is of another format, or it cannot be read (a writer
        replaced it meanwhile, twice: try again later)."""
        import pyarrow.feather as feather

        folder = Path(folder)
        for _ in range(3):
            meta = _read_meta(folder)
            if not meta or meta.get("format") != FORMAT:  # k1 and b are query-time: any saved pair loads
                return None
            try:
                segments, dead = [], []
                for name in meta["order"]:
                    s = Segment.load(folder, name)
                    dfile = meta["segments"][name]
                    d = np.unpackbits(np.load(folder / dfile)).astype(bool) if dfile else None
                    segments.append(s)
                    dead.append(d[:s.n_rows] if d is not None else np.zeros(s.n_rows, bool))
                terms = feather.read_table(str(folder / meta["terms"])).column("term").to_pylist()
                h = feather.read_table(str(folder / meta["hashes"]))
                hashes = dict(zip(h.column("asset_id").to_pylist(), h.column("hash").to_pylist()))
            except (OSError, ValueError, KeyError) as e:
                log.info("keyword index changed while loading (%s); reading it again", e)
                continue
            return cls(segments, dead, terms, hashes, int(meta["version"]))
        return None

    # -- search -------------------------------------------------------------------------------------------
    def document_frequency(self, term: str) -> int:
        """Live rows holding the stemmed `term` (0 when the index does not know it)."""
        t = self._vocab.get(term)
        return int(self.df[t]) if t is not None else 0

    def weighted_scores(self, terms: dict[str, float], *, k1: float = K1, b: float = B) -> np.ndarray | None:
        """sum_t w_t * BM25(t, d) over the stemmed terms the index knows; None when it knows none."""
        weights = {self._vocab[t]: float(w) for t, w in terms.items() if t in self._vocab and w > 0}
        return self._score_ids(weights, k1, b)

    def gather(self, scores: np.ndarray | None, unit_ids) -> np.ndarray:
        """`scores` (one per row) picked out for `unit_ids` (their live rows); 0 for units unknown here, or when
        there are none."""
        import pandas as pd

        out = np.zeros(len(unit_ids), np.float32)
        if scores is None or not len(unit_ids):
            return out
        pos = self.id_index().get_indexer(pd.Index(np.asarray(unit_ids, dtype=object)))
        ok = pos >= 0
        out[ok] = scores[np.flatnonzero(self.live)[pos[ok]]]
        return out

    def scores(self, text: str, *, k1: float = K1, b: float = B) -> np.ndarray | None:
        """BM25 of every row for a query (0 for dead rows); None when no query term occurs in a live row.
        Repeated query terms count again, as in bm25s."""
        weights: dict[int, float] = {}
        for t in self.stemmer.tokens(text):
            if t in self._vocab:
                weights[self._vocab[t]] = weights.get(self._vocab[t], 0.0) + 1.0
        return self._score_ids(weights, k1, b)

    def _score_ids(self, weights: dict[int, float], k1: float = K1, b: float = B) -> np.ndarray | None:
        """sum over term ids t of weights[t] * BM25(t, row), with the statistics shared by all segments."""
        if not self.n_docs:
            return None
        ids = [t for t in weights if self.df[t] > 0]
        if not ids:
            return None
        norm = self.norm(k1, b)
        n = self.n_docs
        out = np.zeros(len(self.unit_ids), dtype=np.float32)
        for t in ids:
            df = float(self.df[t])
            idf = np.float32(weights[t] * np.log(1 + (n - df + 0.5) / (df + 0.5)))
            for s, start in zip(self.segments, self._starts):
                if t >= s.n_terms:
                    continue
                lo, hi = s.indptr[t], s.indptr[t + 1]
                if lo == hi:
                    continue
                rows = s.indices[lo:hi] + start
                tf = s.tf[lo:hi].astype(np.float64)
                out[rows] += idf * (tf / (norm[rows] + tf)).astype(np.float32)
        if len(self._dead_rows):
            out[self._dead_rows] = 0.0
        return out


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _load_dead(folder: Path, name: str) -> np.ndarray | None:
    try:
        return np.unpackbits(np.load(folder / name)).astype(bool)
    except (OSError, ValueError):
        return None
