"""Typed, frozen configuration. The index stores the IndexConfig it was built with."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


def cache_root():
    """Polyseek's user cache (exported models, eval runs): $POLYSEEK_CACHE_DIR, else $XDG_CACHE_HOME/polyseek, else
    ~/.cache/polyseek."""
    from pathlib import Path

    env = os.environ.get("POLYSEEK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "polyseek"


def _from_dict(cls, data: dict[str, Any] | None):
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)}; choose from: {', '.join(sorted(names))}")
    for f in dataclasses.fields(cls):
        if f.name in data and isinstance(data[f.name], list):
            data[f.name] = tuple(data[f.name])
    return cls(**data)


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """How files become assets and units."""

    ocr: bool = True  # OCR images, and PDF pages without a usable text layer
    ocr_engine: str = "rapidocr"  # or "tesseract"
    max_image_pixels: int = 80_000_000  # larger images are refused (decompression bombs)
    thumbnail_size: int = 320  # long side of stored thumbnails, pixels
    chunk_chars: int = 1200  # passage length for text files
    chunk_overlap: int = 200
    pdf_render_dpi: int = 72  # page renders for thumbnails and visual encoders
    pdf_min_text_chars: int = 40  # a page with fewer text-layer characters is OCRed
    pdf_passage_words: int = 120  # PDF layout blocks merged into passages of about this many words (0: one unit a block)
    max_file_bytes: int = 512 * 1024 * 1024
    speech: bool = True  # transcribe audio and video soundtracks (polyseek[media])
    speech_model: str = "tiny.en"  # Whisper size, CTranslate2 folder or Hugging Face id (see ingest/speech.py)
    speech_language: str | None = None  # multilingual models: None detects the language
    scene_threshold: float = 12.0  # cut detector floor (mean HSV difference, 0-255; see ingest/scenes.py)
    keyframe_max_gap: float = 15.0  # a scene longer than this gets a keyframe per window of this many seconds

    @classmethod
    def from_dict(cls, data):
        return _from_dict(cls, data)


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """What an index is built with. Stored in the index; reopening uses it."""

    # registry name, optionally "name:model-id-or-folder"; the default is the packaged MiniLM, int8, through ONNX
    # Runtime (1.7x the fp32 encoder's speed on CPU, vaswani nDCG@10 within 0.005: docs/benchmarks.md). "minilm" is
    # the fp32 model (sentence-transformers on a GPU, ONNX Runtime on CPU).
    text_encoder: str = "minilm?quantize=int8"
    visual_encoder: str | None = None  # e.g. "clip:openai/clip-vit-base-patch32" or "clip:/path/to/folder"
    keyword: str = "bm25"
    instance: bool = True  # local features of images, pages and figures for search by image and crop
    region_tiles: bool = True  # with a visual encoder, also embed overlapping 2x2/3x3 tiles of each image
    ingest: IngestConfig = field(default_factory=IngestConfig)
    ann_min_rows: int = 100_000  # from this many units, dense signals use an ANN index instead of exact search
    ann_quantizer: str = "fp16"  # ANN vector codes: "fp16" (2 bytes/dim, recall@10 ~1.0) or "sq8" (1 byte/dim)
    device: str | None = None  # "cpu", "cuda"; None picks cuda when present

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "IndexConfig":
        data = dict(data or {})
        ingest = data.pop("ingest", None)
        cfg = _from_dict(cls, data)
        if ingest is not None:
            cfg = dataclasses.replace(cfg, ingest=ingest if isinstance(ingest, IngestConfig) else IngestConfig.from_dict(ingest))
        return cfg


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How a query is answered: which signals, how they are fused, how deep each signal looks."""

    signals: tuple[str, ...] = ()  # empty: every signal the index and query support
    fusion: str = "dbsf"  # a name registered in polyseek.retrieve.fuse.fusions; DBSF: docs/benchmarks.md "Adaptive ranking"
    rrf_k: int = 60
    bm25_k1: float = 0.9  # BM25 term-frequency saturation; Anserini's default (store/keyword.py)
    bm25_b: float = 0.4  # BM25 length normalisation; Anserini's default
    weights: tuple[tuple[str, float], ...] = ()  # per-signal weights for weighted fusion methods
    depth: int = 100  # candidates taken from each signal before fusion
    group: bool = True  # one hit per asset, best unit first
    # Adaptive ranking (retrieve/refine.py, calibrate.py, rerank/, route.py, cutoff.py); see docs/ranking.md.
    adaptive: bool = False  # query-adaptive weights from each signal's score distribution (fuse.adaptive_weights)
    refine: tuple[str, ...] = ()  # test-time query refinement, any of: rm3, rocchio, gqr
    fb_docs: int = 10  # feedback units for rm3 / rocchio
    fb_source: str = "fused"  # feedback from the fused first pass ("fused") or each signal's own top ("own")
    fb_terms: int = 10  # expansion terms for rm3
    fb_orig_weight: float = 0.5  # rm3: weight of the original query
    rocchio_beta: float = 0.5
    gqr_pool: int = 50  # gqr: top units of each signal that form the candidate pool
    gqr_steps: int = 10
    gqr_temp: float = 0.05
    prior: str | None = None  # candidate-prior normalisation against hubness: "cpn" (calibrate.py)
    prior_weight: float = 1.0
    rerank: str = "none"  # a reranker registered in retrieve/rerank ("name" or "name:ARG", e.g. "cross-encoder:FOLDER")
    rerank_depth: int = 50  # fused candidates the reranker sees
    rerank_budget_ms: float | None = None  # a reranker that runs over this keeps the order it has so far
    route: str = "auto"  # "auto": rules pick signals and granularity per query (route.py); "off": every signal
    cutoff: str = "none"  # "none", "auto" or a relative threshold in (0, 1] on the fused score (cutoff.py)
    cutoff_max: int | None = None  # max hits kept by a cutoff (None: k)

    @classmethod
    def from_dict(cls, data):
        data = dict(data or {})
        if isinstance(data.get("weights"), dict):
            data["weights"] = tuple(sorted(data["weights"].items()))
        return _from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["weights"] = dict(self.weights)
        return d
