"""Rerank stage backends (see base.py): none, cross-encoder, llm, llm-pointwise, geometric."""

from . import cross_encoder, geometric, llm  # noqa: F401  (register the backends)
from .base import (Candidate, Doc, NoRerank, Reranker, ScoringReranker, get_reranker, parse_spec, rerank_candidates,
                   rerankers)

__all__ = ["Candidate", "Doc", "NoRerank", "Reranker", "ScoringReranker", "get_reranker", "parse_spec",
           "rerank_candidates", "rerankers"]
