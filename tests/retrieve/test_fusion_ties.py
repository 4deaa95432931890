"""A file that only BM25 finds by a unique word is the top hit under RRF, whose ties are decided by the evidence, and
under the default fusion (DBSF), even when an unrelated file is the dense signal's nearest neighbour (issue 16: 499
of 600 such queries were lost to ties)."""

from __future__ import annotations

import polyseek
from polyseek.config import IndexConfig, IngestConfig, SearchConfig

TOPICS = ["a recipe for lentil soup with cumin", "the train timetable for the coastal line",
          "notes on pruning apple trees in winter", "how to patch a bicycle inner tube",
          "minutes of the tenants association meeting", "a review of a jazz concert downtown",
          "instructions for the office coffee machine", "the history of the old lighthouse",
          "a packing list for a camping weekend", "tips for learning the violin as an adult"]


def test_unique_word_only_bm25_finds_wins_the_rrf_tie(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for i, t in enumerate(TOPICS):
        (root / f"d{i:02d}.txt").write_text(t + "\n")
    # The rare word once inside a long text on another subject: MiniLM does not place the file first for it.
    # Its id sorts last, so an id tie-break alone would put it behind the dense-only hit.
    garden = ("Our garden club met on Tuesday to discuss compost, seed swaps and the spring plant sale. " * 3 +
              "Members agreed to water the community beds in turns during the summer and to share tools. " * 3)
    (root / "zz-target.txt").write_text(garden + " The treasurer filed report kestrelbane. " + garden + "\n")
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ingest=IngestConfig(ocr=False), instance=False))
    idx.add([root])
    # depth=1: the dense run holds one file, as at scale (depth 100) it holds none of a rare word's files.
    dense = idx.search("kestrelbane", k=1, config=SearchConfig(signals=("dense",), depth=1))
    assert dense[0].asset.id != "zz-target"  # the situation of the issue: an unrelated dense-only hit
    hits = idx.search("kestrelbane", k=3, config=SearchConfig(depth=1, fusion="rrf"))
    assert hits[0].asset.id == "zz-target", [(h.asset.id, h.score, h.signals) for h in hits]
    assert set(hits[0].signals) == {"bm25"} and hits[1].asset.id == dense[0].asset.id
    assert hits[0].score == hits[1].score  # a real tie, decided by the evidence
    # DBSF: the match is alone in its run; counted against the zeros of the units BM25 does not match it stands out
    for depth in (1, 100):
        hits = idx.search("kestrelbane", k=3, config=SearchConfig(depth=depth))
        assert hits[0].asset.id == "zz-target" and hits[0].score > hits[1].score, [(h.asset.id, h.score) for h in hits]
