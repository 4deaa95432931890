"""`polyseek demo`: index the bundled examples/ and run a few searches, printing the results."""

from __future__ import annotations

import sys
from pathlib import Path

import click

# One query per kind of content in examples/: PDF block, PDF figure caption, OCR'd image, Markdown, HTML,
# and a paraphrase that only the dense signal can answer.
QUERIES = ["invoice total", "solar panel efficiency", "maple avenue", "quarterly sales chart",
           "how do I keep my sourdough starter alive", "coral bleaching", "bike chain maintenance"]


def _examples_dir() -> Path:
    for cand in (Path.cwd() / "examples", Path(__file__).resolve().parents[3] / "examples"):
        if cand.is_dir():
            return cand
    raise click.ClickException("cannot find the examples/ folder; run from the repository root or pass --examples")


@click.command("demo")
@click.option("--examples", "examples_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder to index (default: the repository's examples/).")
@click.option("--index", "index_path", default=".polyseek", show_default=True, type=click.Path(file_okay=False))
@click.option("-k", "k", default=3, show_default=True)
def demo_command(examples_dir, index_path, k):
    """Index the bundled examples and show a few searches (the README's first command).

    \b
    Example:
      polyseek demo && polyseek search "your own query"
    """
    import polyseek
    from polyseek.config import SearchConfig
    from polyseek.serve.cli.main import render_hit

    folder = Path(examples_dir) if examples_dir else _examples_dir()
    queries = QUERIES
    click.echo(f"Indexing {folder} into {index_path} ...")
    idx = polyseek.open(index_path)
    report = idx.add([folder], exclude=("README.md",), progress=sys.stderr.isatty())
    for p, r in report.failed:
        click.echo(f"  failed {p}: {r}", err=True)
    click.echo(report.summary())
    st = idx.status()
    click.echo(f"The index holds {st['assets']} assets ({', '.join(f'{v} {t}' for t, v in sorted(st['assets_by_type'].items()))}) "
               f"and {st['units']} searchable units.\n")
    color = sys.stdout.isatty()
    for q in queries:
        click.echo(click.style(f'$ polyseek search "{q}" -k {k}', fg="cyan", bold=color) if color else f'$ polyseek search "{q}" -k {k}')
        # What the printed command shows: one CLI query keeps only the hits that stand out (cutoff auto).
        hits = idx.search(q, k=k, config=SearchConfig(cutoff="auto"))
        for h in hits:
            click.echo(render_hit(h, color))
        if not hits:
            click.echo("  no results")
        click.echo()
    click.echo(f"Try your own: polyseek search \"...\" --index {index_path}   |   polyseek index ~/your/folder")
