"""Benchmark loaders on tiny folders written at test time: shared layout, BEIR, TREC topics."""

from __future__ import annotations

import pytest

from polyseek.errors import ConfigError, NotFoundError
from polyseek.eval.datasets import load_benchmark, load_trec, read_trec_topics

from .conftest import QRELS, QUERIES, write_jsonl


def test_shared_layout_records(records_bench):
    b = load_benchmark(records_bench)
    assert b.name == "tiny" and b.corpus_kind == "records" and b.corpus_path == records_bench / "corpus.jsonl"
    assert [q.id for q in b.queries] == list(QUERIES)
    assert b.queries[0].text == QUERIES["q1"] and b.queries[0].image is None and b.queries[0].k == 100
    assert b.qrels == QRELS
    assert b.id_field == "id"


def test_shared_layout_files_and_image_queries(tmp_path):
    d = tmp_path / "imgs"
    (d / "corpus").mkdir(parents=True)
    (d / "corpus" / "000001.jpg").write_bytes(b"x")
    write_jsonl(d / "queries.jsonl", [
        {"id": "c1", "image": "queries/c1.jpg", "bbox": [1, 2, 30, 40], "category": "cat"},
        {"id": "t1", "text": "a cat"},
    ])
    (d / "qrels.tsv").write_text("c1 0 000001 1\nt1 0 000001 1\n")
    b = load_benchmark(d, k=10)
    assert b.corpus_kind == "files" and b.corpus_path == (d / "corpus").resolve()
    img = b.queries[0]
    assert img.image == str((d / "queries" / "c1.jpg").resolve())  # relative to the bench folder
    assert img.bbox == (1, 2, 30, 40) and img.text is None and img.k == 10
    assert [b.query_type(q) for q in b.queries] == ["image", "text"]


def test_beir_folder_with_header(tmp_path):
    d = tmp_path / "scifact"
    write_jsonl(d / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "x"}, {"_id": "d2", "title": "", "text": "y"}])
    write_jsonl(d / "queries.jsonl", [{"_id": "1", "text": "first"}, {"_id": "2", "text": "train only"}])
    (d / "qrels").mkdir()
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n")
    b = load_benchmark(d)
    assert b.corpus_kind == "records" and b.id_field == "_id"
    assert [q.id for q in b.queries] == ["1"]  # queries of other splits are dropped
    assert b.qrels == {"1": {"d1": 1, "d2": 0}}
    assert b.meta["layout"] == "beir"


TOPICS = """<top>
<num> Number: 301
<title> International Organized Crime

<desc> Description:
Identify organizations that participate in international criminal activity.

<narr> Narrative:
A relevant document must as a minimum identify the organization.
</top>

<top>
<num> Number: 302 <title> Poliomyelitis and Post-Polio
<desc> Description: Is the disease under control?
</top>
"""


def test_trec_topics_and_qrels(tmp_path):
    (tmp_path / "topics.301-302").write_text(TOPICS)
    (tmp_path / "qrels.txt").write_text("301 0 FBIS3-1 1\n302 0 FT-9 0\n302 0 FT-8 2\n")
    assert read_trec_topics(tmp_path / "topics.301-302") == {
        "301": "International Organized Crime", "302": "Poliomyelitis and Post-Polio"}
    both = read_trec_topics(tmp_path / "topics.301-302", fields=("title", "desc"))
    assert both["302"] == "Poliomyelitis and Post-Polio Is the disease under control?"
    b = load_trec(tmp_path / "topics.301-302", tmp_path / "qrels.txt")
    assert [q.text for q in b.queries] == ["International Organized Crime", "Poliomyelitis and Post-Polio"]
    assert b.qrels == {"301": {"FBIS3-1": 1}, "302": {"FT-9": 0, "FT-8": 2}}
    assert b.corpus_kind == "none"


def test_errors_say_what_is_missing(tmp_path):
    with pytest.raises(NotFoundError):
        load_benchmark(tmp_path / "nope")
    (tmp_path / "queries.jsonl").write_text('{"id": "1", "text": "x"}\n')
    with pytest.raises(ConfigError, match="qrels.tsv"):
        load_benchmark(tmp_path)
    (tmp_path / "qrels.tsv").write_text("1 0 d 1\n")
    (tmp_path / "queries.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(ConfigError, match="neither 'text' nor 'image'"):
        load_benchmark(tmp_path)
    (tmp_path / "t").write_text("no topics here")
    with pytest.raises(ConfigError, match="<top>"):
        read_trec_topics(tmp_path / "t")


def test_loads_the_shared_benchmarks():
    from .conftest import shared_dir

    bench = shared_dir() / "bench"
    if not (bench / "vaswani").is_dir():
        pytest.skip("shared/bench is absent")
    v = load_benchmark(bench / "vaswani")
    assert v.corpus_kind == "records" and len(v.queries) == 93 and sum(map(len, v.qrels.values())) == 2083
    c = load_benchmark(bench / "coco-crops")
    assert c.corpus_kind == "files" and len(c.queries) == 300
    from pathlib import Path

    assert all(Path(q.image).is_file() for q in c.queries)
    # coco-crops' bbox is the window in the source image the crop was cut from, not a crop of the query image:
    # it lies outside the (already cropped) query image and must not be applied.
    first = next(q for q in c.queries if q.id == "cc-d-0001")
    assert first.bbox is None
