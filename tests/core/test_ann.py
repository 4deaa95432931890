"""Above `ann_min_rows` the dense signal is answered by the store's IVF_PQ index instead of exact search."""

from __future__ import annotations

import json

import pytest

import polyseek
from polyseek.config import IndexConfig, SearchConfig


@pytest.mark.slow
def test_ann_index_is_built_and_used_past_the_threshold(tmp_path):
    words = ["river", "mountain", "engine", "violin", "glacier", "copper", "orchid", "harbor", "lantern", "meteor"]
    p = tmp_path / "r.jsonl"
    with p.open("w") as f:
        for i in range(600):
            a, b, c = words[i % 10], words[(i // 10) % 10], words[(i // 100) % 10]
            f.write(json.dumps({"id": f"d{i}", "text": f"note {i} about the {a} near the {b} and a {c}"}) + "\n")
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ann_min_rows=500))
    idx.add([p], records=True)
    assert "vec_text" in idx.status()["vector_indexes"]
    retriever = idx.searcher().retrievers["dense"]
    assert retriever.matrix is None  # served by the store's ANN index
    hits = idx.search("note 123 about the violin near the engine and a mountain", k=5,
                      config=SearchConfig(signals=("dense",)))
    assert "d123" in [h.asset.id for h in hits]
    fused = idx.search("violin glacier copper", k=5)
    assert fused and {"bm25", "dense"} <= set().union(*(h.signals for h in fused))
