"""Shared fixtures: the packaged MiniLM and tiny random CLIP/SigLIP models built at test time (the encoder tests and
the encoder contract suite use them)."""

from __future__ import annotations

import pytest

from polyseek.encode import load_encoder
from tests.tiny_clip import build_tiny_clip, build_tiny_siglip


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory):
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def minilm():
    return load_encoder("minilm", device="cpu")


@pytest.fixture(scope="session")
def minilm_torch():
    """The packaged MiniLM through sentence-transformers (torch), the runtime "minilm" had before ONNX."""
    from polyseek.encode import MiniLMEncoder

    return MiniLMEncoder(device="cpu")


@pytest.fixture(scope="session")
def clip(tiny_clip_dir):
    return load_encoder(f"clip:{tiny_clip_dir}", device="cpu")


@pytest.fixture(scope="session")
def siglip(tiny_siglip_dir):
    return load_encoder(f"clip:{tiny_siglip_dir}", device="cpu")


@pytest.fixture(params=["minilm", "minilm_torch", "clip", "siglip"])
def encoder(request):
    """Every registered backend, for the shared contract suite (siglip is the 'clip' backend on a SigLIP model)."""
    return request.getfixturevalue(request.param)
