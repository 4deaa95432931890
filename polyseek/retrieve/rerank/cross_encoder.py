"""Cross-encoder reranker: a sentence-transformers `CrossEncoder` (Nogueira & Cho 2019, "Passage re-ranking with
BERT") reads query and unit text together and scores their relevance. Loaded by Hugging Face id or local folder;
no download happens at query time unless the model is missing from the local cache."""

from __future__ import annotations

import threading
from typing import Sequence

from ...errors import ConfigError, MissingDependencyError
from ...types import Query
from .base import Doc, ScoringReranker, rerankers

_CACHE: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


@rerankers.register("cross-encoder")
class CrossEncoderReranker(ScoringReranker):
    name = "cross-encoder"
    batch_size = 16

    def __init__(self, model: str, *, device: str | None = None, max_chars: int = 2000):
        if not model:
            raise ConfigError("cross-encoder needs a model: cross-encoder:HF-ID or cross-encoder:/path/to/folder")
        self.model_name = model
        self.max_chars = max_chars
        key = (model, device or "cpu")
        with _LOCK:
            if key not in _CACHE:
                try:
                    from sentence_transformers import CrossEncoder
                except ImportError as e:
                    raise MissingDependencyError("install sentence-transformers to use the cross-encoder "
                                                 "reranker") from e
                try:
                    _CACHE[key] = CrossEncoder(model, device=device or "cpu")
                except (OSError, ValueError) as e:
                    raise ConfigError(f"cannot load cross-encoder {model!r} ({e}); give a local folder or a "
                                      f"Hugging Face id present in the local cache") from None
        self.model = _CACHE[key]

    @classmethod
    def from_spec(cls, arg: str, **kw) -> "CrossEncoderReranker":
        return cls(arg, device=kw.get("device"))

    def score(self, query: Query, docs: Sequence[Doc]) -> list[float]:
        if not docs:
            return []
        q = query.text or ""
        pairs = [(q, (d.text or "")[: self.max_chars]) for d in docs]
        out = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(x) for x in out]
