"""`polyseek ask`: answer a question from the index with citations (extractive by default, or through a model)."""

from __future__ import annotations

import json
import os
import sys

import click

INDEX_HELP = "Index folder (default: ./.polyseek, or $POLYSEEK_INDEX)."


def index_option(f):  # main.py's option, restated: main imports this module, so this one cannot import main
    return click.option("--index", "index_path", default=lambda: os.environ.get("POLYSEEK_INDEX", ".polyseek"),
                        show_default=".polyseek", help=INDEX_HELP, type=click.Path(file_okay=False))(f)


def llm_options(f):
    """--llm-url / --llm-model / --llm-timeout, shared by `ask` and `eval --task qa`."""
    f = click.option("--llm-timeout", type=float, default=60.0, show_default=True, help="Seconds per model request.")(f)
    f = click.option("--llm-model", default=None, help="Model name at the endpoint (default: $POLYSEEK_LLM_MODEL).")(f)
    f = click.option("--llm-url", default=None,
                     help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (default: $POLYSEEK_LLM_URL; "
                          "none: the extractive answerer). Key from $POLYSEEK_LLM_KEY or $OPENAI_API_KEY.")(f)
    return f


def make_llm(llm_url, llm_model, llm_timeout, *, stream: bool = True):
    """The configured model client, or None for the extractive answerer."""
    from polyseek.agent import LLMConfig, OpenAIChat

    cfg = LLMConfig.from_env(llm_url, llm_model, timeout_s=llm_timeout, stream=stream)
    return OpenAIChat(cfg) if cfg is not None else None


@click.command("ask")
@click.argument("question", required=False)
@index_option
@click.option("--image", type=click.Path(dir_okay=False), help="A query image searched with the question.")
@click.option("--deep", is_flag=True, help="Deep search: a budgeted plan of text, image and crop searches.")
@click.option("--session", default=None, help="Keep a conversation under this name (in <index>/sessions/).")
@click.option("--max-steps", type=click.IntRange(1, 100), default=12, show_default=True, help="Deep search step budget.")
@click.option("--max-seconds", type=float, default=120.0, show_default=True, help="Deep search time budget.")
@click.option("--max-tokens", type=click.IntRange(1), default=60_000, show_default=True, help="Model token budget.")
@llm_options
@click.option("--json", "as_json", is_flag=True, help="Print {answer, citations, steps, usage, ...} as JSON.")
@click.option("--trace", is_flag=True, help="Print each step as it happens (to stderr).")
def ask_command(question, index_path, image, deep, session, max_steps, max_seconds, max_tokens, llm_url, llm_model,
                llm_timeout, as_json, trace):
    """Answer QUESTION from the indexed documents, citing the units it comes from as [n].

    Without a model (no --llm-url, no $POLYSEEK_LLM_URL) the answer is the best evidence sentences; when the
    evidence is weak it says it cannot find the answer. '-' reads the question from stdin.

    \b
    Examples:
      polyseek ask "which tool filtered non-English papers?"
      polyseek ask "what does figure 2 show?" --deep --json
      polyseek ask "and how many papers are left?" --session s2orc
      polyseek ask "what is this part called?" --image part.png
      POLYSEEK_LLM_URL=http://localhost:11434/v1 polyseek ask "..." --llm-model llama3.1
    """
    from polyseek.agent import AskOptions
    from polyseek.errors import PolyseekError

    if question == "-":
        question = sys.stdin.read().strip()
    if not question and not image:
        raise click.UsageError("give a QUESTION (or '-' for stdin), and optionally --image FILE")
    opts = AskOptions(deep=deep, max_steps=max_steps, max_seconds=max_seconds, max_tokens=max_tokens)
    streamed = {"any": False}

    def on_event(kind, data):
        if trace and kind == "step":
            click.echo(click.style(f"[{data['step']}] {data['name']} ", dim=True)
                       + json.dumps({k: v for k, v in data.items() if k not in ("step", "name")}, default=str)[:300],
                       err=True)
        elif kind == "token" and not as_json and not data.get("planner") and data.get("text"):
            streamed["any"] = True
            click.echo(data["text"], nl=False)

    try:
        import polyseek

        idx = polyseek.open(index_path, create=False)
        llm = make_llm(llm_url, llm_model, llm_timeout)
        ans = idx.ask(question or "", llm=llm, image=image, session=session, options=opts, on_event=on_event)
    except PolyseekError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(ans.to_dict(), indent=2, default=str))
        return
    if streamed["any"]:
        click.echo()
    else:
        click.echo(ans.answer)
    for c in ans.citations:
        where = f"page {c['page']}" if c.get("page") is not None else ""
        box = ("box " + ",".join(f"{v:.0f}" for v in c["bbox"])) if c.get("bbox") and c["kind"] != "page" else ""
        click.echo(f"  [{c['n']}] " + click.style(c["asset"], bold=sys.stdout.isatty())
                   + "  " + "  ".join(x for x in (c["kind"], where, box) if x))
        click.echo(f"      {os.path.basename(c.get('path') or '')}: {c['snippet'][:200]}")
    for w in ans.warnings:
        click.echo(click.style("warning: ", fg="yellow") + w, err=True)
    u = ans.usage
    tokens = f", {u.total_tokens} tokens" + (" (estimated)" if u.estimated else "") if u.calls else ""
    click.echo(click.style(f"{ans.mode}, {len(ans.steps)} step(s), {ans.seconds:.1f} s{tokens}", dim=True), err=True)
