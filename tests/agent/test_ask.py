"""`ask` on a tiny real index: extractive answers with resolvable citations, abstention, sessions, deep search
(fixed plan and a model's plan), and recovery from a misbehaving model (scripted server on a real socket)."""

from __future__ import annotations

import json
import re

import pytest

from polyseek.agent import ABSTAIN, AskOptions, LLMConfig, OpenAIChat, ask

from .llm_server import ScriptedLLM

Q_EFF = "What was the average conversion efficiency of polycrystalline cells?"


def assert_resolvable(idx, ans):
    """Every citation names a unit in the store, on a page the asset has, with a box inside the page."""
    for c in ans.citations:
        rows = idx.store.get_units([c["unit"]], ["id", "asset_id", "page", "bbox", "kind"])
        assert c["unit"] in rows, c
        row = rows[c["unit"]]
        assert row["asset_id"] == c["asset"] and row["page"] == c["page"]
        if c["bbox"] is not None and c["frame"] is not None:
            x, y, w, h = c["bbox"]
            assert 0 <= x and 0 <= y and x + w <= c["frame"][0] + 1 and y + h <= c["frame"][1] + 1
        assert c["snippet"] and c["snippet"] in " ".join((idx.store.get_units([c["unit"]], ["id", "text"])
                                                          [c["unit"]]["text"] or "").split())
    for n in re.findall(r"\[(\d+)\]", ans.answer):
        assert int(n) in {c["n"] for c in ans.citations}


def llm(srv, **kw):
    return OpenAIChat(LLMConfig(base_url=srv.url, model="scripted", backoff_s=0.01, **kw))


def test_extractive_answer_cites_the_block(ask_index):
    ans = ask(ask_index, Q_EFF)
    assert not ans.abstained and "17.9" in ans.answer
    c = ans.citations[0]
    assert (c["asset"], c["page"], c["kind"]) == ("report", 2, "block")
    assert ans.answer.startswith("Average conversion efficiency") and "[1]" in ans.answer
    assert_resolvable(ask_index, ans)
    assert [s["name"] for s in ans.steps] == ["rewrite", "search", "select_evidence", "answer"]
    assert ans.evidence[0]["place"].startswith("report#p")
    assert json.loads(json.dumps(ans.to_dict()))["citations"][0]["n"] == 1


def test_extractive_reads_a_table_row(ask_index):
    ans = ask(ask_index, "What F1 score did BioBERT reach on ChemProt?")
    assert "76.46" in ans.answer and "BioBERT" in ans.answer
    assert ans.answer.startswith("| BioBERT | ChemProt | 76.46 |")  # the row first, not the whole table
    assert ans.citations[0]["asset"] == "benchmarks"
    assert_resolvable(ask_index, ans)


@pytest.mark.parametrize("question", [
    "What F1 score did GPT-4 reach on ChemProt?",  # an identifier the documents never name
    "Who composed the opera Carmen and in which year did it premiere?",  # nothing related at all
])
def test_abstains_on_weak_evidence(ask_index, question):
    ans = ask(ask_index, question)
    assert ans.abstained and ans.answer == ABSTAIN and ans.citations == []
    assert ans.steps[-1]["reason"]


def test_session_rewrites_follow_ups_and_is_stored(ask_index):
    first = ask(ask_index, "When was the Fastnet lighthouse first lit?", session="keeper")
    assert "1854" in first.answer
    follow = ask(ask_index, "When was it automated?", session="keeper")
    assert "lighthouse" in follow.rewritten.lower() and "1989" in follow.answer
    data = json.loads((ask_index.path / "sessions" / "keeper.json").read_text())
    assert [t["question"] for t in data["turns"]] == ["When was the Fastnet lighthouse first lit?",
                                                      "When was it automated?"]
    assert not list((ask_index.path / "sessions").glob(".*.tmp"))
    from polyseek.errors import ConfigError

    with pytest.raises(ConfigError, match="session name"):
        ask(ask_index, "x y z", session="../escape")


def test_index_ask_and_cli_json(ask_index):
    from click.testing import CliRunner

    from polyseek.serve.cli.main import cli

    assert "17.9" in ask_index.ask(Q_EFF).answer
    res = CliRunner().invoke(cli, ["ask", Q_EFF, "--index", str(ask_index.path), "--json"], env={"POLYSEEK_LLM_URL": ""})
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"answer", "citations", "steps", "usage"} and out["citations"][0]["page"] == 2
    res = CliRunner().invoke(cli, ["ask", Q_EFF, "--index", str(ask_index.path / "nope")])
    assert res.exit_code == 1 and "no Polyseek index" in res.output


def test_deep_fixed_plan_uses_every_tool_within_budget(ask_index):
    ans = ask(ask_index, Q_EFF, options=AskOptions(deep=True))
    names = [s["name"] for s in ans.steps]
    assert {"search_text", "crop", "reflect"} <= set(names), names
    assert "17.9" in ans.answer and ans.mode == "deep"
    assert_resolvable(ask_index, ans)
    crop = next(s for s in ans.steps if s["name"] == "crop" and "result" in s)
    assert crop["result"]["crops"] and all(len(c["box"]) == 4 for c in crop["result"]["crops"])
    small = ask(ask_index, Q_EFF, options=AskOptions(deep=True, max_steps=2))
    tools = [s for s in small.steps if s["name"] in ("search_text", "search_image", "crop", "open", "reflect")]
    assert len(tools) == 2 and any(s["name"] == "budget" for s in small.steps)
    assert "17.9" in small.answer  # answered from what the two steps found


def test_llm_answer_streams_and_keeps_only_valid_citations(ask_index):
    script = [{"content": json.dumps({"query": Q_EFF, "variants": ["polycrystalline efficiency"]})},
              {"content": "Polycrystalline cells averaged 17.9 percent [1], see also [9]."}]
    tokens = []
    with ScriptedLLM(script) as srv:
        ans = ask(ask_index, Q_EFF, llm=llm(srv), on_event=lambda k, d: tokens.append(d["text"]) if k == "token" else None)
        prompt = srv.requests[1]["messages"][1]["content"]
    assert "17.9" in ans.answer and "[9]" not in ans.answer and not ans.abstained
    assert [c["n"] for c in ans.citations] == [1]
    shown = re.search(r"^\[1\] \(.*?\) (.*)$", prompt, re.M).group(1)
    assert ans.citations[0]["snippet"] in shown  # [1] is the unit the model was shown as [1]
    assert len(tokens) > 2 and "".join(tokens).startswith("Polycrystalline")
    assert ans.usage.calls == 2 and ans.usage.total_tokens > 0 and ans.mode == "llm"
    assert_resolvable(ask_index, ans)


def test_llm_refusal_and_abstention(ask_index):
    with ScriptedLLM([{"content": '{"query": "q"}'}, {"refusal": "I won't answer that."}]) as srv:
        ans = ask(ask_index, Q_EFF, llm=llm(srv))
    assert ans.abstained and ans.citations == []
    with ScriptedLLM([{"content": '{"query": "q"}'}, {"content": ABSTAIN}]) as srv:
        assert ask(ask_index, Q_EFF, llm=llm(srv)).abstained


def test_llm_failures_fall_back_to_extractive(ask_index):
    # a rewrite that is never JSON, then an answer that times out: the ask still answers, with warnings
    script = [{"content": "not json"}, {"content": "still not json"}, {"delay": 1.2, "content": "late"},
              {"delay": 1.2, "content": "late"}]
    with ScriptedLLM(script) as srv:
        ans = ask(ask_index, Q_EFF, llm=llm(srv, timeout_s=0.3, retries=1, stream=False))
    assert "17.9" in ans.answer and ans.mode == "llm+extractive"
    assert any("rewrite" in w for w in ans.warnings) and any("extractive" in w for w in ans.warnings)
    with ScriptedLLM([{"content": json.dumps({"query": Q_EFF})}, {"content": "17.9 percent, trust me."}]) as srv:
        uncited = ask(ask_index, Q_EFF, llm=llm(srv))
    assert uncited.citations and uncited.mode == "llm+extractive"  # an uncited model answer is not passed on


def test_deep_llm_plans_with_tools_and_recovers_from_bad_calls(ask_index):
    script = [
        {"content": json.dumps({"query": Q_EFF})},
        {"tool_calls": [("search_text", json.dumps({"query": "polycrystalline efficiency"}))]},
        {"tool_calls": [("open", "{unit: 1")]},  # malformed arguments
        {"tool_calls": [("teleport", "{}")]},  # unknown tool
        {"tool_calls": [("open", json.dumps({"unit": 1}))]},
        {"tool_calls": [("answer", json.dumps({"answer": "It was 17.9 percent [1]."}))]},
    ]
    with ScriptedLLM(script) as srv:
        ans = ask(ask_index, Q_EFF, llm=llm(srv), options=AskOptions(deep=True))
        tool_msgs = [m for m in srv.requests[-1]["messages"] if m["role"] == "tool"]
    names = [s["name"] for s in ans.steps]
    assert names.count("plan") == 5 and "search_text" in names and "open" in names
    assert any("not JSON" in m["content"] for m in tool_msgs)
    assert any("unknown tool 'teleport'" in m["content"] for m in tool_msgs)
    assert ans.mode == "deep-llm" and "17.9" in ans.answer and ans.citations[0]["n"] == 1
    assert_resolvable(ask_index, ans)


def test_deep_llm_that_never_answers_stops_at_its_budget(ask_index):
    loop = {"tool_calls": [("search_text", json.dumps({"query": "efficiency"}))]}
    with ScriptedLLM([{"content": json.dumps({"query": Q_EFF})}], default=loop) as srv:
        ans = ask(ask_index, Q_EFF, llm=llm(srv), options=AskOptions(deep=True, max_steps=4))
        n_requests = len(srv.requests)
    assert n_requests == 1 + 4  # the rewrite, then exactly the step budget
    assert any(s["name"] == "budget" for s in ans.steps) and ans.mode == "deep-llm+budget"
    assert "17.9" in ans.answer and any("budget" in w for w in ans.warnings)
    with ScriptedLLM([{"content": json.dumps({"query": Q_EFF})}], default=loop) as srv:
        tight = ask(ask_index, Q_EFF, llm=llm(srv), options=AskOptions(deep=True, max_tokens=1))
    assert any("token budget" in s.get("reason", "") for s in tight.steps)
