"""A tiny real index for the ask tests: the 2-page report PDF, a Markdown table and a note, made at test time."""

from __future__ import annotations

import pytest

from tests.fixtures import report_pdf

TABLE_MD = """# Benchmark results

Scores of the biomedical language models on relation extraction.

| Model | Dataset | F1 |
|---|---|---|
| SciBERT | ChemProt | 83.64 |
| BioBERT | ChemProt | 76.46 |
| ClinicalBERT | DDI | 71.20 |
"""

NOTE_MD = """# Lighthouse keeping

The Fastnet lighthouse was first lit in 1854. Its lamp was later converted to electric power in 1969.
Keepers left the rock for good when the light was automated in 1989.
"""


@pytest.fixture(scope="session")
def ask_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ask") / "corpus"
    root.mkdir()
    report_pdf(root / "report.pdf")
    (root / "benchmarks.md").write_text(TABLE_MD, encoding="utf-8")
    (root / "lighthouse.md").write_text(NOTE_MD, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def ask_index(ask_corpus, tmp_path_factory):
    import polyseek

    idx = polyseek.open(tmp_path_factory.mktemp("ask-index") / "idx")
    report = idx.add([ask_corpus])
    assert report.indexed == 3, report.failed
    yield idx
    idx.close()
