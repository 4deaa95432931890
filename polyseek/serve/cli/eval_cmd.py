"""`polyseek eval`: score a benchmark folder, compare configs with significance marks, or score a run file."""

from __future__ import annotations

import json
import shlex
import sys

import click

EPILOG = """\b
Examples:
  polyseek eval data/vaswani
  polyseek eval data/vaswani --compare bm25 dense hybrid hybrid-zscore --report report/
  polyseek eval data/coco-crops --ablation --json
  polyseek eval ./beir/scifact --config my_configs.toml --index ~/.cache/scifact-index
  polyseek eval --qrels qrels.tsv --run bm25.trec --json
  polyseek eval path/to/docqa-set --index docqa-index --task qa --json
  polyseek eval path/to/docqa-set --index docqa-index --task qa --compare extractive deep

\b
Configs: any signal of the index (bm25, dense, visual, ...) alone; hybrid (the default: DBSF over every
signal); hybrid-rrf, hybrid-dbsf; hybrid-<method> (combsum, combmnz, combmax, wsum on min-max scores);
hybrid-<norm> (CombSUM on zscore, minmax, rank, max, sum, borda scores); or a .json/.toml file of
SearchConfig fields ({"signals": ["bm25", "dense"], "fusion": "rrf", "bm25_k1": 1.2, "bm25_b": 0.75},
or {"configs": {"name": {...}, ...}}).

\b
--task qa: questions with `answers` (docqa layout); --compare takes ask modes: extractive (default), deep,
llm, deep-llm (the last two need --llm-url or $POLYSEEK_LLM_URL).
"""


@click.command("eval", epilog=EPILOG)
@click.argument("bench_dir", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--index", "index_dir", type=click.Path(file_okay=False), help="Index folder to build or reuse.")
@click.option("--config", "config", metavar="FILE|NAME", help="Search config name or JSON/TOML file.")
@click.option("--compare", "compare", multiple=True, metavar="NAME",
              help="Configs to compare against the first (repeat, or give several after one flag).")
@click.option("--ablation", is_flag=True, help="Add full fusion and full fusion minus each signal.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Write report.md and PNG plots here.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder (default runs/<bench>-<time>).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("-k", "k", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Results per query.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for significance tests.")
@click.option("--qrels", "qrels_path", type=click.Path(dir_okay=False, exists=True), help="Qrels to score --run with.")
@click.option("--run", "run_path", type=click.Path(dir_okay=False, exists=True), help="TREC run file to score.")
@click.option("--task", type=click.Choice(["retrieval", "qa"]), default="retrieval", show_default=True,
              help="qa: ask every question and score answers, abstentions and citations.")
@click.option("--llm-url", default=None, help="QA: OpenAI-compatible endpoint for the llm modes ($POLYSEEK_LLM_URL).")
@click.option("--llm-model", default=None, help="QA: model name at that endpoint ($POLYSEEK_LLM_MODEL).")
@click.option("--limit", type=click.IntRange(1), default=None, help="QA: only the first N questions.")
@click.argument("extra", nargs=-1, required=False)
def eval_command(bench_dir, index_dir, config, compare, ablation, report_dir, out_dir, as_json, k, seed,
                 qrels_path, run_path, task, llm_url, llm_model, limit, extra):
    """Evaluate retrieval on BENCH_DIR (shared layout or BEIR) and print metrics, or score a run file;
    with --task qa, evaluate answers with citations."""
    from polyseek.errors import PolyseekError

    compare = list(compare) + list(extra)  # `--compare bm25 dense hybrid` leaves dense, hybrid as extra args
    if extra and not compare[: len(compare) - len(extra)]:
        raise click.UsageError(f"unexpected arguments: {' '.join(extra)} (did you mean --compare?)")
    if task == "qa":
        if not bench_dir:
            raise click.UsageError("--task qa needs a BENCH_DIR with queries.jsonl carrying 'answers'")
        try:
            from .qa_eval import run_qa_cmd

            run_qa_cmd(bench_dir, index_dir, compare, as_json, out_dir, llm_url, llm_model, limit)
        except PolyseekError as e:
            raise click.ClickException(str(e)) from None
        return
    if qrels_path or run_path:
        if not (qrels_path and run_path):
            raise click.UsageError("--qrels and --run go together")
        if bench_dir or compare or config or ablation or index_dir:
            raise click.UsageError("--qrels/--run score a run file; drop BENCH_DIR and the search options")
        try:
            _score_file(qrels_path, run_path, as_json, report_dir)
        except PolyseekError as e:
            raise click.ClickException(str(e)) from None
        return
    if not bench_dir:
        raise click.UsageError("give a BENCH_DIR, or --qrels QRELS --run RUN")
    if config and compare:
        raise click.UsageError("use --config or --compare, not both (a config file may hold several configs)")
    try:
        _run(bench_dir, index_dir, config, compare, ablation, report_dir, out_dir, as_json, k, seed)
    except PolyseekError as e:
        raise click.ClickException(str(e)) from None


def _run(bench_dir, index_dir, config, compare, ablation, report_dir, out_dir, as_json, k, seed):
    from polyseek.eval.compare import format_table
    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.runner import run_benchmark

    bench = load_benchmark(bench_dir, k=k)
    specs = compare or ([config] if config else ["hybrid"])
    if not as_json:
        click.echo(f"{bench.name}: {len(bench.judged_queries)} judged queries, corpus {bench.corpus_path}", err=True)
    result = run_benchmark(bench, index_dir=index_dir, search_configs=specs, seed=seed, out_dir=out_dir, k=k,
                           ablation=ablation, command=shlex.join(["polyseek", *sys.argv[1:]]),
                           progress=True)  # on stderr: a bar on a terminal, plain lines otherwise
    if report_dir:
        from polyseek.eval.report import write_report

        report = write_report(result, report_dir)
    if as_json:
        out = result["results"][0] if len(result["results"]) == 1 else result
        out = {key: val for key, val in out.items() if key != "recall_curve"}
        if len(result["results"]) == 1:
            out["run_dir"] = result["run_dir"]
            if result.get("by_query_type"):
                out["by_query_type"] = result["by_query_type"][out["name"]]
        else:
            out["results"] = [{k2: v for k2, v in r.items() if k2 != "recall_curve"} for r in out["results"]]
        click.echo(json.dumps(out, indent=2))
        return
    metrics = list(result["results"][0]["metrics"])
    click.echo(format_table(result["results"], metrics, result["significance"]))
    if result.get("by_query_type"):
        click.echo("\nper query type:")
        shown = metrics[:3] + [m for m in ("recall@1", "time_accuracy") if m in metrics and m not in metrics[:3]]
        for name, kinds in result["by_query_type"].items():
            for kind, vals in kinds.items():
                click.echo(f"  {name:<16} {kind:<12} n={vals['queries']:<5} "
                           + "  ".join(f"{m}={vals[m]:.4f}" for m in shown if m in vals))
    ix = result["index"]
    click.echo(f"\nindex {ix['index_dir']}: {ix['indexed']} indexed, {ix['skipped']} unchanged, "
               f"{len(ix['failed'])} failed; run saved in {result['run_dir']}")
    if report_dir:
        click.echo(f"report: {report}")


def _score_file(qrels_path, run_path, as_json, report_dir):
    from polyseek.eval.compare import format_table
    from polyseek.eval.runner import score_run_file

    r = score_run_file(qrels_path, run_path)
    if report_dir:
        from polyseek.eval.report import write_report

        write_report({"bench": r["bench"], "queries": r["queries"], "results": [r]}, report_dir,
                     per_query={r["name"]: r["per_query"]})
    if as_json:
        click.echo(json.dumps({"bench": r["bench"], "run": str(run_path), "queries": r["queries"],
                               "metrics": r["metrics"]}, indent=2))
    else:
        click.echo(format_table([r], list(r["metrics"])))
        click.echo(f"\n{r['queries']} judged queries")
