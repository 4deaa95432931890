"""Time-span judgements for audio/video benchmarks: parsing `expected`, the overlap rule, and the two metrics."""

from __future__ import annotations

import json

import pytest

from polyseek.errors import ConfigError
from polyseek.eval.datasets import load_benchmark
from polyseek.eval.metrics import aggregate
from polyseek.eval.timespans import Span, overlaps, parse_spans, time_metrics
from polyseek.types import AssetRef, Hit, UnitRef


def hit(doc, time, rank=1):
    return Hit(rank=rank, score=1.0 / rank, asset=AssetRef(doc, f"/{doc}.mp4", "video"),
               unit=UnitRef(f"{doc}#s1", "speech", time=time))


def test_overlap_rule_widens_the_span_by_the_tolerance():
    s = Span("clip", 10.0, 12.0)
    assert overlaps((12.9, 20.0), s) and overlaps((5.0, 9.1), s)
    assert not overlaps((13.1, 20.0), s) and not overlaps((0.0, 8.9), s)
    assert not overlaps(None, s)
    assert overlaps((13.1, 20.0), s, tolerance=1.5)


def test_time_metrics_count_only_correct_hits_for_accuracy():
    spans = {"q1": [Span("a", 10, 12)], "q2": [Span("b", 0, 3)], "q3": [Span("c", 5, 6)], "q4": [Span("d", 1, 2)]}
    hits = [[hit("a", (11, 13))], [hit("b", (20, 25))], [hit("x", (5, 6)), hit("c", (5, 6), 2)], []]
    pq = time_metrics(spans, ["q1", "q2", "q3", "q4"], hits)
    assert pq["q1"] == {"time_accuracy": 1.0, "recall_time@1": 1.0}
    assert pq["q2"] == {"time_accuracy": 0.0, "recall_time@1": 0.0}
    assert pq["q3"] == {"recall_time@1": 0.0} and pq["q4"] == {"recall_time@1": 0.0}  # wrong clip / no hit
    means = aggregate(pq, ["time_accuracy", "recall_time@1"])
    assert means == {"time_accuracy": 0.5, "recall_time@1": 0.25}


def test_queries_jsonl_types_and_expected_spans(tmp_path):
    (tmp_path / "corpus").mkdir()
    rows = [{"id": "q1", "text": "ferry", "type": "speech", "expected": {"clip": "v1", "t0": 2, "t1": 1}},
            {"id": "q2", "text": "slide", "type": "onscreen", "expected": [{"doc": "v2", "t0": 0, "t1": 5}]},
            {"id": "q3", "text": "plain"}]
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "qrels.tsv").write_text("q1 0 v1 1\nq2 0 v2 1\nq3 0 v3 1\n")
    b = load_benchmark(tmp_path)
    assert b.spans == {"q1": [Span("v1", 1.0, 2.0)], "q2": [Span("v2", 0.0, 5.0)]}
    assert [b.query_type(q) for q in b.queries] == ["speech", "onscreen", "text"]


def test_bad_expected_span_is_a_config_error():
    with pytest.raises(ConfigError, match="t0"):
        parse_spans({"clip": "a", "t0": "soon"}, "queries.jsonl:3")
    with pytest.raises(ConfigError, match="clip"):
        parse_spans({"t0": 1, "t1": 2}, "queries.jsonl:4")
