"""At `ann_min_rows` units and above the dense signal is answered by a saved faiss IVF-SQ index
(polyseek.store.vector_index) that follows adds, changes and removes incrementally."""

from __future__ import annotations

import json

import numpy as np
import pytest

import polyseek
from polyseek.config import IndexConfig, SearchConfig
from polyseek.store.vector_index import VectorIndex, ann_params
from polyseek.store.lance import PinnedRows

WORDS = ["river", "mountain", "engine", "violin", "glacier", "copper", "orchid", "harbor", "lantern", "meteor"]


def _records(path, n, start=0, tag="note"):
    with path.open("w") as f:
        for i in range(start, start + n):
            a, b, c = WORDS[i % 10], WORDS[(i // 10) % 10], WORDS[(i // 100) % 10]
            f.write(json.dumps({"id": f"d{i}", "text": f"{tag} {i} about the {a} near the {b} and a {c}"}) + "\n")


def _indexed(tmp_path, n):
    p = tmp_path / "r.jsonl"
    _records(p, n)
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ann_min_rows=500))
    idx.add([p], records=True)
    return idx, p


def test_ann_params_scale_with_rows():
    small, big = ann_params(1_000, 384), ann_params(1_000_000, 512)
    assert 16 <= small["nlist"] < big["nlist"] == 4000
    assert big["nprobe"] >= 32 and big["train_rows"] == 40 * big["nlist"]
    with pytest.raises(ValueError):
        ann_params(0, 512)


@pytest.mark.slow
def test_ann_index_is_built_used_and_kept_in_sync(tmp_path):
    idx, p = _indexed(tmp_path, 600)
    info = idx.status()["vector_indexes"]
    assert info["vec_text"]["rows"] == 600 and info["vec_text"]["type"].startswith("IVF")
    dense = idx.searcher().retrievers["dense"]
    assert isinstance(dense.matrix, VectorIndex)
    assert isinstance(idx.searcher().lookup, PinnedRows)  # display rows by offset, not by SQL
    q = "note 123 about the violin near the engine and a mountain"
    hits = idx.search(q, k=5, config=SearchConfig(signals=("dense",)))
    assert hits[0].asset.id == "d123"
    fused = idx.search("violin glacier copper", k=5)
    assert fused and {"bm25", "dense"} <= set().union(*(h.signals for h in fused))

    # A changed record is re-encoded (its old vector leaves the index), new ones are added, removed ones go.
    with p.open("a") as f:
        f.write(json.dumps({"id": "d900", "text": "a saxophone solo in the lighthouse"}) + "\n")
    lines = p.read_text().splitlines()
    lines[123] = json.dumps({"id": "d123", "text": "quantum chromodynamics lattice simulation"})
    p.write_text("\n".join(lines) + "\n")
    idx.add([p], records=True)
    idx.remove(["d7"])
    vi = VectorIndex.load(tmp_path / "idx" / "vectors" / "vec_text", "vec_text", 384)
    assert vi is not None and vi.size == 600 and vi.version == idx.store.version
    live = list(vi.unit_ids[vi.alive])
    assert live.count("d123#rec") == 1 and "d7#rec" not in live and "d900#rec" in live
    assert (~vi.alive).sum() >= 1  # the old d123 vector was removed, not left beside the new one
    dense_only = SearchConfig(signals=("dense",))
    assert idx.search("saxophone lighthouse", k=3, config=dense_only)[0].asset.id == "d900"
    assert idx.search("lattice quantum chromodynamics", k=3, config=dense_only)[0].asset.id == "d123"
    assert "d123" not in [h.asset.id for h in idx.search(q, k=3, config=dense_only)]
    # After deletes and updates, rows taken by offset are still the right ones (ids and texts agree).
    for h in idx.search("the violin near the harbor", k=20):
        assert h.snippet.startswith("note " + h.asset.id[1:] + " ") or h.asset.id in ("d123", "d900")

    # `polyseek status` names the index.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "status", "--index", str(tmp_path / "idx")],
                         capture_output=True, text=True, check=True).stdout
    assert "ann       vec_text: IVF" in out and "600 vectors" in out

    # A second process (reader) sees the same, from the saved index.
    other = polyseek.open(tmp_path / "idx")
    assert other.search("saxophone lighthouse", k=1, config=dense_only)[0].asset.id == "d900"
    # Filters work through the ANN index.
    from polyseek.types import Filters, Query

    got = other.search_query(Query(text="violin", k=50, filters=Filters(path="*.jsonl")), dense_only)
    assert len(got) == 50


@pytest.mark.slow
def test_falling_below_the_threshold_returns_to_exact_search(tmp_path):
    idx, _ = _indexed(tmp_path, 520)
    assert (tmp_path / "idx" / "vectors" / "vec_text").is_dir()
    idx.remove([f"d{i}" for i in range(30)])
    assert not (tmp_path / "idx" / "vectors" / "vec_text").exists()
    assert not isinstance(idx.searcher().retrievers["dense"].matrix, VectorIndex)
    assert idx.status()["vector_indexes"] == {}


def test_vector_index_recall_and_filter_on_clustered_vectors(tmp_path):
    """The IVF-SQ index against exact search on 20k clustered vectors, via a real store."""
    from polyseek.store.base import EncodedAsset
    from polyseek.store.lance import LanceStore
    from polyseek.types import Asset, Unit

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 64))
    x = centres[rng.integers(50, size=20_000)] + 0.6 * rng.standard_normal((20_000, 64))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    store = LanceStore(tmp_path / "lance", {"v": 64})
    batch = [EncodedAsset(Asset(id=f"a{i}", path=f"/x/{i % 2}/f{i}.txt", type="text", hash=str(i)),
                          [Unit(id=f"a{i}#0", kind="passage", text="t")], {"v": x[i:i + 1]}) for i in range(20_000)]
    for i in range(0, 20_000, 5000):
        store.write(batch[i:i + 5000])
    vi = VectorIndex.build(store, "v", store.version)
    assert vi.size == 20_000
    qs = x[:50] + 0.05 * rng.standard_normal((50, 64)).astype(np.float32)
    hits = 0
    for q in qs:
        truth = set(np.argsort(-(x @ q))[:10].tolist())
        uids, _, _ = vi.search(q, 10, None)
        hits += len(truth & {int(u[1:].split("#")[0]) for u in uids})
    assert hits / 500 >= 0.9
    allowed = np.array([f"a{i}#0" for i in range(1, 20_000, 2)], dtype=object)
    uids, aids, sims = vi.search(qs[0], 20, allowed)
    assert len(uids) == 20 and all(int(u[1:].split("#")[0]) % 2 == 1 for u in uids)
    assert np.all(np.diff(sims) <= 1e-6)


@pytest.mark.slow
def test_a_reader_beside_a_writer_neither_rebuilds_nor_blocks(tmp_path, monkeypatch):
    """A server beside an unfinished index run: it serves the saved keyword index (no rebuild on a large index),
    syncs the ANN index in memory, skips units deleted since, and searches exactly while no ANN index is saved."""
    import shutil

    import polyseek.retrieve.searcher as psearcher
    from polyseek.retrieve.dense import VectorMatrix

    writer, _ = _indexed(tmp_path, 600)
    monkeypatch.setattr(psearcher, "READER_REBUILD_MAX_UNITS", 100)
    reader = polyseek.open(tmp_path / "idx")
    assert reader.search("note 123 about the violin", k=1)[0].asset.id == "d123"
    saved = reader.searcher().retrievers["bm25"].index.version

    # The store moves on without the derived indexes (what a writer mid-run, or killed, leaves).
    writer.store.delete_assets(["d123"])
    reader.refresh()
    hits = reader.search("note 123 about the violin", k=5)
    assert hits and "d123" not in [h.asset.id for h in hits]
    assert reader.searcher().retrievers["bm25"].index.version == saved != reader.store.version  # served stale, not rebuilt
    vi = reader.searcher().retrievers["dense"].matrix
    assert vi.version == reader.store.version and "d123#rec" not in set(vi.unit_ids[vi.alive])

    # No ANN index saved yet: exact search meanwhile, never a build in the reader.
    shutil.rmtree(tmp_path / "idx" / "vectors")
    fresh = polyseek.open(tmp_path / "idx")
    assert isinstance(fresh.searcher().retrievers["dense"].matrix, VectorMatrix)
    assert fresh.search("note 124 about the glacier near the engine and a mountain", k=1, config=SearchConfig(signals=("dense",)))[0].asset.id == "d124"
    assert not (tmp_path / "idx" / "vectors").exists()
