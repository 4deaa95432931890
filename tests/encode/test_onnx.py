"""MiniLM through ONNX Runtime: the torch path's vectors, the same spec, no torch at query time, int8 as an option."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from polyseek.encode import OnnxTextEncoder, load_encoder
from polyseek.errors import ConfigError
from tests.contracts.test_encoders import TEXTS

LONG = "solar panels convert sunlight into electricity; efficiency depends on temperature. " * 40  # > 256 tokens


def test_minilm_on_cpu_runs_through_onnx_with_the_torch_spec(minilm):
    assert isinstance(minilm, OnnxTextEncoder)
    assert minilm.spec == "minilm" and minilm.dim == 384 and minilm.max_length == 256
    assert minilm.onnx_path.is_file() and minilm.onnx_path.name == "model.onnx"


def test_vectors_match_the_torch_path(minilm, minilm_torch):
    texts = TEXTS + [LONG, "Invoice 2024-117, total due: 1,250.00 EUR", "é ü 漢字 emoji 🙂"]
    a, b = minilm.encode_documents(texts), minilm_torch.encode_documents(texts)
    assert (a * b).sum(axis=1).min() > 0.999
    q = minilm.encode_queries(["invoice total"])[0]
    assert float(q @ minilm_torch.encode_queries(["invoice total"])[0]) > 0.999


def test_index_built_through_torch_is_served_by_onnx(tmp_path, monkeypatch):
    """An index whose vectors came from sentence-transformers is searched with ONNX query vectors (same spec)."""
    import polyseek
    from polyseek.config import IndexConfig
    from polyseek.encode import clear_encoder_cache

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bikes.md").write_text("How to fix a flat bicycle tyre with a patch kit.\n")
    (tmp_path / "docs" / "bread.md").write_text("Sourdough starter feeding schedule and hydration.\n")
    monkeypatch.setenv("POLYSEEK_TEXT_RUNTIME", "torch")
    clear_encoder_cache()
    with polyseek.open(tmp_path / "idx", IndexConfig(text_encoder="minilm", instance=False)) as idx:
        idx.add([tmp_path / "docs"])
        assert type(idx.encoder("text")).__name__ == "MiniLMEncoder"
    monkeypatch.delenv("POLYSEEK_TEXT_RUNTIME")
    clear_encoder_cache()
    manifest = json.loads((tmp_path / "idx" / "polyseek.json").read_text())
    assert manifest["encoders"]["text"]["spec"] == "minilm"
    with polyseek.open(tmp_path / "idx") as idx:
        hits = idx.search("repairing a punctured bike wheel", k=1, config=polyseek.SearchConfig(signals=("dense",)))
        assert isinstance(idx.encoder("text"), OnnxTextEncoder)
    assert hits[0].asset.id == "bikes"


def test_int8_is_another_spec_close_to_fp32(minilm):
    q8 = load_encoder("minilm?quantize=int8", device="cpu")
    assert q8.spec == "minilm?quantize=int8" and q8.onnx_path.name == "model.int8.onnx"
    a, b = q8.encode_documents(TEXTS + [LONG]), minilm.encode_documents(TEXTS + [LONG])
    assert (a * b).sum(axis=1).min() > 0.95  # close, not equal: another spec, never mixed with fp32 vectors


def test_bad_options_and_devices():
    with pytest.raises(ConfigError, match="choose from: int8"):
        load_encoder("minilm?quantize=int4", device="cpu")
    with pytest.raises(ConfigError, match="runs on cpu"):
        OnnxTextEncoder(device="cuda")


def test_query_side_imports_no_torch_or_transformers(minilm):
    """With the export cached, loading the encoder and embedding a query pulls in neither torch nor transformers."""
    code = ("import sys; from polyseek.encode import load_encoder; e = load_encoder('minilm'); "
            "e.encode_queries(['invoice total']); "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stderr


class _Recording:
    """ONNX Runtime's session, recording the shape of every batch it runs."""

    def __init__(self, session):
        self.session, self.shapes = session, []

    def run(self, outputs, feeds):
        self.shapes.append(feeds["input_ids"].shape)
        return self.session.run(outputs, feeds)


def test_long_texts_go_in_batches_of_bounded_tokens(minilm):
    """Long passages run a few at a time (at most batch_tokens tokens a batch, padding included), short ones up to
    batch_size at once; the vectors do not depend on the batching (fp32)."""
    texts = [LONG] * 5 + [f"short text number {i}" for i in range(40)]
    whole = minilm.encode_documents(texts)
    rec = _Recording(minilm._session)
    saved = minilm._session, minilm.batch_tokens
    minilm._session, minilm.batch_tokens = rec, 600
    try:
        bounded = minilm.encode_documents(texts)
    finally:
        minilm._session, minilm.batch_tokens = saved
    assert rec.shapes[:3] == [(2, 256)] * 3  # the 5 long texts (the last with the longest short one)
    assert all(b * w <= 600 or b == 1 for b, w in rec.shapes)
    assert max(b for b, _ in rec.shapes) == minilm.batch_size  # the short texts: 32 at once
    assert (whole * bounded).sum(axis=1).min() > 0.9999
