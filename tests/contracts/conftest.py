"""A small real index (images, a PDF, text) shared by the contract suites."""

from __future__ import annotations

import pytest

import polyseek
from tests.fixtures import make_good_corpus, textured_image


@pytest.fixture(scope="session")
def contract_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract-corpus")
    manifest = make_good_corpus(root)
    textured_image(11).save(root / "texture.jpg", quality=92)  # detail for local features
    idx = polyseek.open(tmp_path_factory.mktemp("contract-index") / "idx")
    report = idx.add([root])
    assert not report.failed, report.failed
    yield idx, root, manifest
    idx.close()
