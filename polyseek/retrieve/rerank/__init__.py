"""Rerank stage backends (see base.py)."""

from .base import Candidate, NoRerank, Reranker, get_reranker, rerankers

__all__ = ["Candidate", "NoRerank", "Reranker", "get_reranker", "rerankers"]
