"""`polyseek eval --task qa`: ask every question of a QA set and print answer, abstention and citation metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

COLUMNS = ("answer_accuracy", "abstain_accuracy", "citation_precision", "citation_recall", "evidence_recall@5",
           "seconds_per_question", "tokens_per_question")


def run_qa_cmd(bench_dir, index_dir, modes, as_json, out_dir, llm_url, llm_model, limit):
    import polyseek
    from polyseek.errors import ConfigError
    from polyseek.eval.qa import is_qa_set, load_qa, run_qa

    if not is_qa_set(bench_dir):
        raise ConfigError(f"{bench_dir}: its queries.jsonl rows have no 'answers'; --task qa needs a QA set")
    qa = load_qa(bench_dir)
    if index_dir and (Path(index_dir) / "polyseek.json").exists():
        idx = polyseek.open(index_dir, create=False)
    elif qa.corpus is not None:
        idx = polyseek.open(index_dir or Path("runs") / ".index" / f"{qa.name}-qa")
        idx.add([qa.corpus], progress=not as_json and sys.stderr.isatty())
    else:
        raise ConfigError(f"{qa.name} has no corpus/ folder: index its documents first "
                          f"(polyseek index CORPUS --index DIR) and pass --index DIR")
    from .ask_cmd import make_llm

    llm = make_llm(llm_url, llm_model, 120.0, stream=False)
    modes = list(modes) or ["extractive"]
    result = run_qa(qa, idx, modes, llm=llm, progress=not as_json and sys.stderr.isatty(), limit=limit)
    result["index"] = str(idx.path)
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "qa_result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    if as_json:
        if len(result["results"]) == 1:
            r = result["results"][0]
            click.echo(json.dumps({"bench": result["bench"], "task": "qa", "index": result["index"], **r}, indent=2))
        else:
            click.echo(json.dumps(result, indent=2))
        return
    head = f"{'mode':<12}" + "".join(f"{c:>22}" for c in COLUMNS)
    click.echo(head)
    for r in result["results"]:
        m = r["metrics"]
        click.echo(f"{r['name']:<12}" + "".join(f"{_fmt(m.get(c)):>22}" for c in COLUMNS))
    for r in result["results"]:
        click.echo(f"\n{r['name']}: abstained on {r['metrics']['abstained_unanswerable']} unanswerable; per type:")
        for t, m in r["by_type"].items():
            click.echo(f"  {t:<14} n={m['questions']:<3} accuracy={_fmt(m['answer_accuracy'])}  "
                       f"cit.precision={_fmt(m['citation_precision'])}  ev.recall@5={_fmt(m['evidence_recall@5'])}")


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
