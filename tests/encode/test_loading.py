"""Specs, the cache, and the errors a user sees when a model cannot be loaded."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor

from polyseek.encode import ClipEncoder, format_spec, load_encoder, parse_spec
from polyseek.encode.text import packaged_minilm_path
from polyseek.errors import ConfigError, UnknownNameError


def test_unknown_encoder_lists_known_names():
    with pytest.raises(UnknownNameError, match="unknown encoder 'clp'; choose from: clip, minilm, onnx, sentence-transformers"):
        load_encoder("clp:foo")


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("minilm", ("minilm", None, {})),
        ("clip:/tmp/tiny", ("clip", "/tmp/tiny", {})),
        ("clip:openai/clip-vit-base-patch32", ("clip", "openai/clip-vit-base-patch32", {})),
        (
            "sentence-transformers:intfloat/e5-small-v2?query_prompt=query%3A+&document_prompt=passage: ",
            ("sentence-transformers", "intfloat/e5-small-v2", {"query_prompt": "query: ", "document_prompt": "passage: "}),
        ),
    ],
)
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed
    name, model, options = parsed
    assert parse_spec(format_spec(name, model, options)) == parsed


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; give 'clip:' a folder"):
        load_encoder(f"clip:{tmp_path / 'nope'}")


def test_uncached_hub_id_offline_says_how_to_get_a_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="local-dir DIR.*'clip:DIR'"):
        ClipEncoder("polyseek-tests/no-such-model")


def test_model_without_image_tower_is_refused():
    with pytest.raises(ConfigError, match="no text and image towers"):
        ClipEncoder(packaged_minilm_path(), device="cpu")


def test_unknown_spec_option():
    with pytest.raises(ConfigError, match="unknown option 'prompt' for encoder 'minilm'; choose from: query_prompt"):
        load_encoder("minilm:x?prompt=hi")


def test_sentence_transformers_needs_a_model():
    with pytest.raises(ConfigError, match="needs a model"):
        load_encoder("sentence-transformers")


def test_cache_and_spellings_of_one_folder(clip, tiny_clip_dir, monkeypatch):
    monkeypatch.chdir(tiny_clip_dir.parent)
    relative = load_encoder(f"clip:./{tiny_clip_dir.name}", device="cpu")
    assert relative is clip
    assert clip.spec == f"clip:{os.path.realpath(tiny_clip_dir)}"


def test_packaged_minilm_has_one_spec(minilm):
    assert minilm.spec == "minilm"
    assert load_encoder("minilm:sentence-transformers/all-MiniLM-L6-v2", device="cpu").spec == "minilm"
    assert minilm.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.dim == 384


def test_prompts_make_an_asymmetric_encoder(minilm):
    folder = packaged_minilm_path()
    e5_like = load_encoder(f"sentence-transformers:{folder}?query_prompt=query: &document_prompt=passage: ", device="cpu")
    assert e5_like.spec.startswith(f"sentence-transformers:{os.path.realpath(folder)}?")
    assert parse_spec(e5_like.spec)[2] == {"query_prompt": "query: ", "document_prompt": "passage: "}
    text = ["a kitten sitting on a sofa"]
    q, d = e5_like.encode_queries(text), e5_like.encode_documents(text)
    assert float(q[0] @ d[0]) < 0.9999
    np.testing.assert_allclose(q, minilm.encode_documents(["query: " + text[0]]), atol=1e-5)
    np.testing.assert_allclose(d, minilm.encode_documents(["passage: " + text[0]]), atol=1e-5)


def test_minilm_semantics(minilm):
    cat, kitten, tax = minilm.encode_documents(["a photo of a cat", "a kitten sitting on a sofa", "quarterly tax report"])
    assert cat @ kitten > cat @ tax + 0.2


@pytest.mark.parametrize("which, padding", [("clip", True), ("siglip", "max_length")])
def test_clip_matches_the_reference_forward(request, which, padding):
    """The vectors are the model's own projected, normalised embeddings (CLIPModel/SiglipModel.forward)."""
    enc = request.getfixturevalue(which)
    folder = request.getfixturevalue(f"tiny_{which}_dir")
    model, processor = AutoModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)
    from tests.contracts.test_encoders import TEXTS, _images

    images = [im.convert("RGB") for im in _images()][:2]
    inputs = processor(text=TEXTS[:2], images=images, padding=padding, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        out = model(**inputs)
    ref_text = torch.nn.functional.normalize(out.text_embeds, dim=-1).numpy()
    ref_image = torch.nn.functional.normalize(out.image_embeds, dim=-1).numpy()
    np.testing.assert_allclose(enc.encode_queries(TEXTS[:2]), ref_text, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(images), ref_image, atol=1e-5)
    assert enc.dim == ref_text.shape[1]


def test_clip_text_and_images_share_a_space(clip):
    # Random weights carry no meaning, but both towers must land in vectors of the same size.
    from tests.contracts.test_encoders import _images

    t, i = clip.encode_queries(["a cat"]), clip.encode_images(_images()[:1])
    assert t.shape == i.shape == (1, 16)
    assert -1.0 <= float(t[0] @ i[0]) <= 1.0
