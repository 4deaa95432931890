"""Corpora generated once per test session into a temp folder (tiny, real files)."""

from __future__ import annotations

import pytest

from tests.fixtures import make_bad_corpus, make_good_corpus, write_records


@pytest.fixture(scope="session")
def good_corpus(tmp_path_factory):
    return make_good_corpus(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory):
    return make_bad_corpus(tmp_path_factory.mktemp("bad"), max_image_pixels=50_000)


@pytest.fixture(scope="session")
def records_files(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("records"))
