"""Indexes built once per session over the generated corpora (tiny, real files, the real store and encoder)."""

from __future__ import annotations

import shutil

import pytest

import polyseek
from polyseek.config import IndexConfig, IngestConfig
from tests.fixtures import make_bad_corpus, make_good_corpus


@pytest.fixture(scope="session")
def mixed_corpus(tmp_path_factory):
    """Good and bad files in one folder tree, as a user's messy folder would be."""
    root = tmp_path_factory.mktemp("mixed")
    good = make_good_corpus(root / "good")
    bad = make_bad_corpus(root / "bad", max_image_pixels=50_000)
    return root, good, bad


@pytest.fixture(scope="session")
def mixed_index(mixed_corpus, tmp_path_factory):
    root, good, bad = mixed_corpus
    path = tmp_path_factory.mktemp("idx") / "index"
    idx = polyseek.open(path, IndexConfig(ingest=IngestConfig(max_image_pixels=50_000)))
    report = idx.add([root])
    return idx, report


@pytest.fixture()
def corpus_copy(mixed_corpus, tmp_path):
    """A private copy of the good corpus, for tests that change files."""
    root, good, _ = mixed_corpus
    dst = tmp_path / "corpus"
    shutil.copytree(good.root, dst)
    return dst, good
