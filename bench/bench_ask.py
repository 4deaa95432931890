"""Ask on docqa-dev (60 questions over the 24 PDFs of pdf-corpus): answer accuracy, abstention on the 6 unanswerable
questions, citation precision/recall against the evidence pages, evidence page Recall@5, seconds and tokens per
question, for the extractive answerer, deep search (fixed plan) and, with --llm-url, a model.

Peer in the same run: plain search — `Index.search(question, k=5)` (one hit per document, best unit first); its
answer is the top hit's snippet, cited by that unit, never abstaining; its evidence ranking is the five hits' pages.
That is what a user gets without `ask`.

    python bench/bench_ask.py                          # builds /tmp/docqa-index once (minutes), then ~5 min
    python bench/bench_ask.py --deep-limit 0           # skip deep search
    python bench/bench_ask.py --dump new.json --before old.json   # old.json: an earlier run's --dump, as rows
    python bench/bench_ask.py --llm-url http://localhost:11434/v1 --llm-model qwen2.5:7b-instruct
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_BENCH, emit, load_avg, machine_line, quiet_logs, table, verdict  # noqa: E402

TARGETS = {"evidence_recall@5": 0.85, "citation_precision": 0.9, "abstained": 4}


def search_peer(idx, qa) -> dict:
    """Plain search as an answerer (see module docstring)."""
    from polyseek.eval.qa import aggregate_qa, score_answer

    rows = []
    for item in qa.items:
        t = time.perf_counter()
        hits = idx.search(item.text, k=5)
        secs = time.perf_counter() - t
        cites, evidence = [], []
        if hits:
            h = hits[0]
            cites = [{"n": 1, "asset": h.asset.id, "unit": h.unit.id, "page": h.unit.page}]
        for h in hits:
            evidence.append({"place": f"{h.asset.id}#p{h.unit.page}" if h.unit.page is not None else h.unit.id})
        ans = {"answer": hits[0].snippet if hits else "", "abstained": not hits, "citations": cites,
               "evidence": evidence, "seconds": secs, "usage": {"total_tokens": 0}}
        rows.append(score_answer(item, ans))
    return {"name": "search top hit (peer)", "metrics": aggregate_qa(rows), "by_type": {}, "per_question": rows}


def half_of(qid: str) -> str:
    """'odd' or 'even' by the number in a question id (docqa-007: odd): the split that thresholds are chosen on
    (odd) and checked on (even), docs/ask.md."""
    digits = "".join(c for c in qid if c.isdigit())
    return "odd" if digits and int(digits) % 2 else "even"


def halves_table(results) -> str:
    from polyseek.eval.qa import aggregate_qa

    rows = []
    for r in results:
        for h in ("odd", "even"):
            m = aggregate_qa([q for q in r["per_question"] if half_of(q["id"]) == h])
            rows.append([r["name"], h, m["questions"], m["answer_accuracy"], m["abstained_unanswerable"],
                         m["false_abstain"], m["citation_precision"], m["citation_recall"], m["evidence_recall@5"]])
    return table(["answerer", "half", "questions", "answer accuracy", "abstained (unanswerable)", "false abstain",
                  "citation precision", "citation recall", "evidence R@5"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=SHARED_BENCH / "docqa-dev")
    ap.add_argument("--corpus", type=Path, default=SHARED_BENCH / "pdf-corpus" / "corpus")
    ap.add_argument("--index-dir", type=Path, default=Path("/tmp/docqa-index"),
                    help="index of the corpus, built here when missing and reused after")
    ap.add_argument("--reindex", action="store_true", help="update an existing index from the corpus first")
    ap.add_argument("--deep-limit", type=int, default=60, help="questions for deep search (0: skip)")
    ap.add_argument("--llm-url", default=os.environ.get("POLYSEEK_LLM_URL"))
    ap.add_argument("--llm-model", default=os.environ.get("POLYSEEK_LLM_MODEL"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--dump", type=Path, help="write every answer and its scores here (JSON), to compare runs")
    ap.add_argument("--before", type=Path, help="a --dump of an earlier run: its answerers join the tables as "
                                                  "'NAME (before)' rows (no timings: another run)")
    ap.add_argument("--before-label", default="an earlier run", help="what --before was, for the notes")
    args = ap.parse_args()

    import polyseek
    from polyseek.eval.qa import load_qa, run_qa

    load0 = load_avg()
    qa = load_qa(args.bench)
    t = time.perf_counter()
    with quiet_logs():
        built = (args.index_dir / "polyseek.json").exists() and not args.reindex
        idx = polyseek.open(args.index_dir)
        rep = None if built else idx.add([args.corpus])
    index_s = time.perf_counter() - t
    with quiet_logs():
        idx.ask("warm up the encoder and the searcher")
    results = [search_peer(idx, qa)]
    with quiet_logs():
        results += run_qa(qa, idx, ["extractive"], progress=True)["results"]
        if args.deep_limit:
            deep = run_qa(qa, idx, ["deep"], limit=args.deep_limit, progress=True)["results"][0]
            deep["name"] = f"deep (fixed plan, {min(args.deep_limit, len(qa.items))} q)"
            results.append(deep)
        if args.llm_url:
            from polyseek.agent import LLMConfig, OpenAIChat

            llm = OpenAIChat(LLMConfig(base_url=args.llm_url, model=args.llm_model or "default", stream=False,
                                       timeout_s=120))
            for r in run_qa(qa, idx, ["llm"], llm=llm)["results"]:
                r["name"] = f"llm {llm.model}"
                results.append(r)
    load1 = load_avg()
    before = []
    if args.before:
        import json

        for r in json.loads(args.before.read_text()):
            if r["name"] != "search top hit (peer)":
                r["name"] = f"{r['name']} (before)"
                for k in ("seconds_per_question", "seconds_p95"):
                    r["metrics"][k] = None
                before.append(r)
    if args.dump:
        import json

        args.dump.write_text(json.dumps([{k: r.get(k) for k in ("name", "metrics", "per_question", "answers")}
                                         for r in results], indent=1, default=str))

    rows = []
    for r in before + results:
        m = r["metrics"]
        rows.append([r["name"], m["questions"], m["answer_accuracy"], m["abstained_unanswerable"], m["false_abstain"],
                     m["citation_precision"], m["citation_recall"], m["evidence_recall@5"],
                     m["seconds_per_question"], m["seconds_p95"], m["tokens_per_question"]])
    main_table = table(["answerer", "questions", "answer accuracy", "abstained (unanswerable)", "false abstain",
                        "citation precision", "citation recall", "evidence R@5", "s/question", "p95 s", "tokens/q"],
                       rows)
    ext = next(r for r in results if r["name"] == "extractive")
    m = ext["metrics"]
    n_abst = int(m["abstained_unanswerable"].split("/")[0])
    targets = table(["target (extractive)", "measured", "verdict"], [
        ["evidence page Recall@5 >= 0.85", m["evidence_recall@5"], verdict(m["evidence_recall@5"] >= 0.85)],
        ["citation precision >= 0.9", m["citation_precision"], verdict(m["citation_precision"] >= 0.9)],
        ["abstains on >= 4 of 6 unanswerable", m["abstained_unanswerable"], verdict(n_abst >= 4)],
    ])
    per_type = table(["type (extractive)", "n", "answer accuracy", "citation precision", "citation recall",
                      "evidence R@5"],
                     [[t, v["questions"], v["answer_accuracy"], v["citation_precision"], v["citation_recall"],
                       v["evidence_recall@5"]] for t, v in ext["by_type"].items()])
    peer = results[0]["metrics"]
    ratio = (m["seconds_per_question"] / peer["seconds_per_question"]) if peer["seconds_per_question"] else float("nan")
    notes = (f"{machine_line(['lancedb', 'bm25s', 'sentence-transformers'])}; load average {load0} at start, "
             f"{load1} at end. Index: {args.index_dir} ("
             + (f"{rep.indexed} indexed, {rep.skipped} unchanged, {index_s:.0f} s this run" if rep else
                f"reused as built, {idx.count_units()} units") + "). "
             f"Extractive ask takes {ratio:.1f}x the time of the plain search peer "
             f"per question (it searches at unit level, reads the top 8 pages and encodes their sentences). "
             f"5 figure questions are answerable only from the rendered image (docqa README: image_only), "
             f"which no text answerer can get right."
             + (f" Rows marked (before): {args.before_label}, same index, scored from its --dump." if before else ""))
    halves = ("By half (thresholds of the answerer were chosen on the odd-numbered questions only; the even half "
              "is held out):\n\n" + halves_table(before + results))
    method = ("The extractive answerer's rules, the choice of its thresholds on the odd half and an ablation of "
              "each rule: docs/ask.md (How the extractive answerer was chosen).")
    emit("ask", "Ask: docqa-dev (60 questions, 24 PDFs)", [notes, method, main_table, targets, halves, per_type],
         write=not args.no_write)


if __name__ == "__main__":
    main()
