"""The contract every encoder keeps, run against each backend."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from polyseek.encode import describe, encoders, load_encoder
from polyseek.errors import ConfigError

TEXTS = [
    "a photo of a cat",
    "x",
    "the quick brown fox jumps over the lazy dog while two kittens play with a ball of yarn on the sofa",
    "quarterly tax report",
]


def _images() -> list[Image.Image]:
    """Images of different sizes and modes, each with a drawn shape so they differ."""
    out = []
    for i, (size, mode) in enumerate([((64, 48), "RGB"), ((17, 90), "L"), ((200, 200), "RGBA"), ((33, 33), "P")]):
        im = Image.new("RGB", size, (40 * i, 255 - 50 * i, 90))
        ImageDraw.Draw(im).ellipse([2, 2, size[0] // 2 + i, size[1] // 2], fill=(255, 255 - 60 * i, 0))
        out.append(im.convert(mode))
    return out


def _check_vectors(v: np.ndarray, n: int, dim: int) -> None:
    assert v.shape == (n, dim)
    assert v.dtype == np.float32
    assert v.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_registered_names():
    assert {"minilm", "clip", "sentence-transformers"} <= set(encoders.names())


def test_text_shape_dtype_norm(encoder):
    _check_vectors(encoder.encode_documents(TEXTS), len(TEXTS), encoder.dim)
    _check_vectors(encoder.encode_queries(TEXTS), len(TEXTS), encoder.dim)
    assert encoder.dim > 0


def test_distinct_texts_get_distinct_vectors(encoder):
    v = encoder.encode_documents(TEXTS)
    sims = v @ v.T
    assert (sims[~np.eye(len(TEXTS), dtype=bool)] < 0.9999).all()


def test_deterministic(encoder):
    np.testing.assert_array_equal(encoder.encode_documents(TEXTS), encoder.encode_documents(TEXTS))


def test_query_and_document_share_a_space(encoder):
    # These backends are symmetric for text: the roles must give the same vectors.
    np.testing.assert_allclose(encoder.encode_queries(TEXTS), encoder.encode_documents(TEXTS), atol=1e-6)


def test_empty_input(encoder):
    assert encoder.encode_documents([]).shape == (0, encoder.dim)
    assert encoder.encode_queries([]).shape == (0, encoder.dim)
    assert encoder.encode_documents([]).dtype == np.float32


def test_batch_equals_alone(encoder):
    batch = encoder.encode_documents(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(encoder.encode_documents([text])[0], batch[i], atol=1e-5)


def test_batches_smaller_than_input(encoder, monkeypatch):
    monkeypatch.setattr(encoder, "batch_size", 3)  # forces several batches, and a short last one
    texts = TEXTS * 2 + ["one more"]
    v = encoder.encode_documents(texts)
    monkeypatch.undo()
    np.testing.assert_allclose(v, encoder.encode_documents(texts), atol=1e-5)


def test_images(encoder):
    if "image" not in encoder.modalities:
        with pytest.raises(ConfigError, match="does not embed image"):
            encoder.encode_images(_images())
        return
    images = _images()
    v = encoder.encode_images(images)
    _check_vectors(v, len(images), encoder.dim)
    for i, im in enumerate(images):
        np.testing.assert_allclose(encoder.encode_images([im])[0], v[i], atol=1e-5)
    assert encoder.encode_images([]).shape == (0, encoder.dim)
    assert (v @ v.T)[0, 1] < 0.9999


def test_describe_and_spec_round_trip(encoder):
    d = describe(encoder)
    assert set(d) == {"spec", "name", "dim", "modalities", "model"}
    assert d["dim"] == encoder.dim and d["name"] == encoder.name
    assert d["modalities"] == sorted(encoder.modalities)
    # The stored spec recreates the same encoder (from the in-process cache here), or, for "minilm" built through
    # torch, the ONNX Runtime one that serves the same spec with the same vectors.
    loaded = load_encoder(d["spec"], device="cpu")
    assert loaded.spec == encoder.spec and loaded.dim == encoder.dim
    if loaded is not encoder:
        a, b = loaded.encode_documents(TEXTS), encoder.encode_documents(TEXTS)
        assert (a * b).sum(axis=1).min() > 0.999


def test_wrong_item_type(encoder):
    with pytest.raises(TypeError, match="str"):
        encoder.encode_documents([b"bytes are not text"])
