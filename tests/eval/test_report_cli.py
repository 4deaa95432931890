"""Reports (Markdown + PNG) and the `eval` command on run files; the end-to-end run needs the engine (slow)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from polyseek.eval.metrics import write_qrels, write_run
from polyseek.eval.report import write_report
from polyseek.serve.cli.eval_cmd import eval_command

from .conftest import QRELS


def _fake_result():
    per_query = {
        "bm25": {f"q{i}": {"ndcg@10": 0.2 + 0.02 * i, "recall@10": 0.5} for i in range(12)},
        "hybrid": {f"q{i}": {"ndcg@10": 0.25 + 0.03 * i - (0.1 if i % 4 == 0 else 0), "recall@10": 0.6}
                   for i in range(12)},
    }
    results = [
        {"name": n, "queries": 12, "metrics": {"ndcg@10": sum(v["ndcg@10"] for v in pq.values()) / 12,
                                               "recall@10": 0.5 if n == "bm25" else 0.6},
         "timing": {"index_s": 1.0, "query_ms_p50": 3.0, "query_ms_p95": 5.0}, "config": {"signals": [n]},
         "recall_curve": [min(1.0, (0.3 if n == "bm25" else 0.4) + 0.007 * k) for k in range(100)]}
        for n, pq in per_query.items()
    ]
    from polyseek.eval.compare import compare_systems

    sig = compare_systems(per_query, ["ndcg@10", "recall@10"])
    return {"bench": "tiny", "queries": 12, "results": results, "significance": sig}, per_query


def test_report_writes_markdown_and_pngs(tmp_path):
    result, per_query = _fake_result()
    md = write_report(result, tmp_path / "rep", per_query=per_query)
    text = md.read_text()
    for png in ("metrics.png", "per_query_delta.png", "recall_at_k.png"):
        p = tmp_path / "rep" / png
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
        assert f"]({png})" in text
    assert "| hybrid | ndcg@10 |" in text and "randomization" in text


def _files(tmp_path):
    q = write_qrels(QRELS, tmp_path / "qrels.tsv")
    r = write_run({"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d1": 3.0, "d2": 2.0}, "q3": {"d4": 1.0}},
                  tmp_path / "run.trec")
    return q, r


def test_cli_scores_a_run_file(tmp_path):
    q, r = _files(tmp_path)
    res = CliRunner().invoke(eval_command, ["--qrels", str(q), "--run", str(r), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["queries"] == 4
    # q1, q3 found at rank 1, q2 at rank 2, q4 not answered
    assert out["metrics"]["mrr@10"] == pytest.approx((1 + 0.5 + 1 + 0) / 4, abs=1e-4)
    assert out["metrics"]["recall@1"] == pytest.approx(0.5)
    res = CliRunner().invoke(eval_command, ["--qrels", str(q), "--run", str(r), "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0 and "ndcg@10" in res.output
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "metrics.png").is_file()


def test_cli_usage_errors_exit_2(tmp_path):
    q, r = _files(tmp_path)
    runner = CliRunner()
    assert runner.invoke(eval_command, ["--qrels", str(q)]).exit_code == 2
    assert runner.invoke(eval_command, []).exit_code == 2
    assert runner.invoke(eval_command, [str(tmp_path), "--qrels", str(q), "--run", str(r)]).exit_code == 2
    help_text = runner.invoke(eval_command, ["--help"]).output
    assert "polyseek eval data/vaswani" in help_text


@pytest.mark.slow
def test_end_to_end_on_a_tiny_records_corpus(records_bench, tmp_path):
    """Index a generated corpus.jsonl with the real engine, compare configs, write the run folder and report."""
    res = CliRunner().invoke(eval_command, [
        str(records_bench), "--compare", "bm25", "hybrid", "--out", str(tmp_path / "run"),
        "--index", str(tmp_path / "index"), "--report", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["name"] for r in out["results"]] == ["bm25", "hybrid"]
    bm25 = out["results"][0]
    assert set(bm25["metrics"]) == {"ndcg@10", "map@100", "mrr@10", "recall@1", "recall@5", "recall@10",
                                    "recall@100"}
    assert bm25["queries"] == 4 and bm25["metrics"]["mrr@10"] >= 0.75  # keyword queries with exact words
    assert set(bm25["timing"]) == {"index_s", "query_ms_p50", "query_ms_p95"}
    run = tmp_path / "run"
    for f in ("result.json", "per_query.json", "config.json", "provenance.json", "runs/bm25.trec", "runs/hybrid.trec"):
        assert (run / f).is_file(), f
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["versions"]["pytrec-eval-terrier"] and prov["machine"]["cpu_count"]
    assert (tmp_path / "rep" / "per_query_delta.png").is_file()
    # a second run reuses the index: nothing is re-indexed
    res2 = CliRunner().invoke(eval_command, [str(records_bench), "--config", "bm25", "--out", str(tmp_path / "run2"),
                                             "--index", str(tmp_path / "index"), "--json"])
    assert res2.exit_code == 0, res2.output
    assert json.loads((tmp_path / "run2" / "result.json").read_text())["index"]["indexed"] == 0
