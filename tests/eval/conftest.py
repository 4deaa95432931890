"""Fixtures for eval tests: the shared benchmark folder, and tiny benchmark folders written at test time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    """`shared/` next to the repository root, or $POLYSEEK_SHARED."""
    env = os.environ.get("POLYSEEK_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


REFERENCE = Path(__file__).resolve().parent / "reference"  # trec_eval and ranx reference files (README there)


@pytest.fixture(scope="session")
def trec_ref() -> Path:
    """The reference folder: the repository's copy (always there), with `trec_eval_test/` holding the cases the
    tests need. `shared_trec_ref` gives the full upstream set, for the cases not copied."""
    return REFERENCE


@pytest.fixture(scope="session")
def shared_trec_ref() -> Path:
    d = shared_dir() / "bench" / "trec-eval-reference"
    if not d.is_dir():
        pytest.skip(f"{d} is absent: set POLYSEEK_SHARED=/path/to/shared (README, Quick start)")
    return d


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


DOCS = {
    "d1": ("Cats", "the cat sat on the warm mat and purred"),
    "d2": ("Dogs", "a dog chased the red ball across the park"),
    "d3": ("Ships", "the cargo ship sailed through the stormy harbour"),
    "d4": ("Bread", "bake sourdough bread with flour water and salt"),
    "d5": ("Planets", "jupiter is the largest planet of the solar system"),
    "d6": ("Rivers", "the river flows past the old stone mill"),
}
QUERIES = {"q1": "cat on a mat", "q2": "dog with a ball", "q3": "sourdough bread baking", "q4": "largest planet"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 2}, "q3": {"d4": 1}, "q4": {"d5": 1, "d6": 0}}


@pytest.fixture
def records_bench(tmp_path) -> Path:
    """A shared-layout benchmark: corpus.jsonl records, queries.jsonl, qrels.tsv."""
    d = tmp_path / "tiny"
    write_jsonl(d / "corpus.jsonl", [{"id": k, "title": t, "text": x} for k, (t, x) in DOCS.items()])
    write_jsonl(d / "queries.jsonl", [{"id": k, "text": v} for k, v in QUERIES.items()])
    (d / "qrels.tsv").write_text(
        "".join(f"{q} 0 {doc} {r}\n" for q, docs in QRELS.items() for doc, r in docs.items()), encoding="utf-8"
    )
    return d
