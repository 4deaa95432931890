"""`polyseek eval --task qa`: the matching rule, the metrics, and a QA set over the tiny index run through the CLI."""

from __future__ import annotations

import json

import pytest

from polyseek.eval.qa import aggregate_qa, is_correct, load_qa, score_answer, QAItem


@pytest.mark.parametrize("answer,alts,ok", [
    ("They used CLD2 to filter.", [["cld2"]], True),
    ("Versions 0.5.5 and 0.7.3", [["0.5.5", "0.7.3"]], True),
    ("Version 0.5.5 only", [["0.5.5", "0.7.3"]], False),
    ("Open Data Commons Attribution licence", [["odc-by"], ["open data commons attribution"]], True),
    ("2.75", [["2.7"]], True),  # the documented over-acceptance of substring matching
    ("ＣＬＤ２ (full width)", [["cld2"]], True),  # NFKC
    ("anything", [], False),  # unanswerable: scored by abstention instead
])
def test_matching_rule(answer, alts, ok):
    assert is_correct(answer, alts) is ok


def test_scores_and_means():
    item = QAItem("q1", "?", [["17.9"]], ["report#p2", "report#p1"], "multi-page")
    ans = {"answer": "17.9 percent [1] [2]", "abstained": False, "seconds": 1.0, "usage": {"total_tokens": 0},
           "citations": [{"asset": "report", "page": 2, "unit": "report#p2b1"},
                         {"asset": "lighthouse", "page": None, "unit": "lighthouse#c0"}],
           "evidence": [{"place": "report#p2"}, {"place": "x"}, {"place": "y"}, {"place": "z"}, {"place": "w"},
                        {"place": "report#p1"}]}
    s = score_answer(item, ans)
    assert s["correct"] and s["citation_precision"] == 0.5 and s["citation_recall"] == 0.5
    assert s["evidence_recall@5"] == 0.5  # report#p1 is sixth
    un = score_answer(QAItem("q2", "?", [], [], "unanswerable"), {"answer": "no", "abstained": True, "citations": []})
    m = aggregate_qa([s, un])
    assert m["answer_accuracy"] == 1.0 and m["abstain_accuracy"] == 1.0 and m["abstained_unanswerable"] == "1/1"
    assert m["citation_precision"] == 0.5 and m["questions"] == 2


def test_eval_task_qa_cli(ask_index, tmp_path):
    from click.testing import CliRunner

    from polyseek.serve.cli.main import cli

    bench = tmp_path / "tinyqa"
    bench.mkdir()
    rows = [
        {"id": "t1", "text": "What was the average conversion efficiency of polycrystalline cells?",
         "answers": [["17.9"]], "type": "text", "doc": "report", "pages": [2]},
        {"id": "t2", "text": "When was the Fastnet lighthouse first lit?", "answers": [["1854"]], "type": "text",
         "evidence": ["lighthouse#c0"]},
        {"id": "t3", "text": "Which opera did Bizet compose in 1875 and where did it premiere?", "answers": [],
         "type": "unanswerable", "doc": None, "pages": []},
    ]
    (bench / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (bench / "qrels.tsv").write_text("t1 0 report 1\nt2 0 lighthouse 1\n")
    assert [q.evidence for q in load_qa(bench).items] == [["report#p2"], ["lighthouse#c0"], []]
    res = CliRunner().invoke(cli, ["eval", str(bench), "--index", str(ask_index.path), "--task", "qa", "--json"],
                             env={"POLYSEEK_LLM_URL": ""})
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    m = out["metrics"]
    assert m["answer_accuracy"] == 1.0 and m["abstain_accuracy"] == 1.0
    assert m["citation_precision"] == 1.0 and m["evidence_recall@5"] == 1.0
    assert m["seconds_per_question"] > 0 and len(out["per_question"]) == 3
    res = CliRunner().invoke(cli, ["eval", str(bench), "--index", str(ask_index.path), "--task", "qa",
                                   "--compare", "extractive", "llm"], env={"POLYSEEK_LLM_URL": ""})
    assert res.exit_code == 1 and "needs a model" in res.output
