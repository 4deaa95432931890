"""The keyword index: bm25s (Lù 2024) sparse matrices over unit text, saved in `<index>/keyword/`.

The keyword index is derived data: built from the store's `text` column and stamped with the store
version it reflects. A stale or missing index (e.g. after a killed run) is rebuilt, never trusted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .files import replaced_folder

STOPWORDS = "en"


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


class KeywordIndex:
    """A bm25s index over units: row i is unit `unit_ids[i]` of asset `asset_ids[i]`."""

    def __init__(self, bm25, unit_ids: np.ndarray, asset_ids: np.ndarray, version: int):
        self.bm25 = bm25
        self.unit_ids = unit_ids
        self.asset_ids = asset_ids
        self.version = version
        self.stemmer = TermStemmer()  # how queries and snippets are tokenised
        self._vocab = bm25.vocab_dict if bm25 is not None else {}
        self._id_index = None

    def id_index(self):
        """A pandas Index over `unit_ids` (row i = the store's scan order at `version`), built once."""
        if self._id_index is None:
            import pandas as pd

            self._id_index = pd.Index(self.unit_ids)
        return self._id_index

    @classmethod
    def build(cls, unit_ids, asset_ids, texts, version: int) -> "KeywordIndex":
        import bm25s

        bm = None
        if len(texts):
            stemmer = _stemmer()
            tokens = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=stemmer, show_progress=False)
            if any(len(t) for t in tokens.ids):  # bm25s cannot index a corpus without a single term
                bm = bm25s.BM25()
                bm.index(tokens, show_progress=False)
        return cls(bm, np.asarray(unit_ids, dtype=object), np.asarray(asset_ids, dtype=object), version)

    def save(self, folder: Path) -> None:
        """Write next to `folder` and swap in with a rename, so readers never see half an index."""
        with replaced_folder(folder) as tmp:
            if self.bm25 is not None:
                self.bm25.save(str(tmp), show_progress=False)
            (tmp / "meta.json").write_text(json.dumps({"version": self.version}))
            (tmp / "rows.json").write_text(json.dumps({"version": self.version, "bm25": self.bm25 is not None,
                                                       "unit_ids": self.unit_ids.tolist(),
                                                       "asset_ids": self.asset_ids.tolist()}))

    @staticmethod
    def saved_version(folder: Path) -> int | None:
        """The store version of the index saved in `folder` (cheap: does not read the index)."""
        try:
            return int(json.loads((Path(folder) / "meta.json").read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex | None":
        import bm25s

        folder = Path(folder)
        try:
            rows = json.loads((folder / "rows.json").read_text())
        except (OSError, ValueError):
            return None
        bm = None
        if rows.get("bm25"):
            try:
                bm = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
            except (OSError, ValueError, KeyError):
                return None
        return cls(bm, np.asarray(rows["unit_ids"], dtype=object), np.asarray(rows["asset_ids"], dtype=object),
                   int(rows["version"]))

    def weighted_scores(self, terms: dict[str, float]) -> np.ndarray | None:
        """sum_t w_t * BM25(t, d) over the stemmed terms the index knows; None when it knows none."""
        if self.bm25 is None:
            return None
        known = [(t, w) for t, w in terms.items() if t in self._vocab and w > 0]
        if not known:
            return None
        out = np.zeros(len(self.unit_ids), np.float32)
        for t, w in known:
            out += np.float32(w) * self.bm25.get_scores([t])
        return out

    def gather(self, scores: np.ndarray | None, unit_ids) -> np.ndarray:
        """`scores` (one per row) picked out for `unit_ids`; 0 for units unknown here, or when there are none."""
        import pandas as pd

        out = np.zeros(len(unit_ids), np.float32)
        if scores is None or not len(unit_ids):
            return out
        pos = self.id_index().get_indexer(pd.Index(np.asarray(unit_ids, dtype=object)))
        ok = pos >= 0
        out[ok] = scores[pos[ok]]
        return out

    def scores(self, text: str) -> np.ndarray | None:
        if self.bm25 is None:
            return None
        toks = [t for t in self.stemmer.tokens(text) if t in self._vocab]
        if not toks:
            return None
        return self.bm25.get_scores(toks)
