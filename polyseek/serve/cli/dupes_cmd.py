"""`polyseek dupes`: groups of near-duplicate images (hash proposes, instance matching confirms)."""

from __future__ import annotations

import json
import os
import sys

import click


@click.command("dupes")
@click.option("--index", "index_path", default=lambda: os.environ.get("POLYSEEK_INDEX", ".polyseek"),
              show_default=".polyseek", type=click.Path(file_okay=False),
              help="Index folder (default: ./.polyseek, or $POLYSEEK_INDEX).")
@click.option("--threshold", type=click.IntRange(0, 32), default=None,
              help="Most differing bits (of 64) of the perceptual hash for a candidate pair [default: 10].")
@click.option("--no-verify", is_flag=True, help="Trust the hash alone (faster, more false groups).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def dupes_command(index_path, threshold, no_verify, as_json):
    """Group near-identical images: resized, recompressed or lightly edited copies.

    A perceptual hash of each thumbnail proposes pairs; local-feature matching (RANSAC) confirms that one image
    covers the other. The first image of each group is the largest copy.

    \b
    Examples:
      polyseek dupes
      polyseek dupes --threshold 6 --json
    """
    import polyseek
    from polyseek.errors import PolyseekError

    try:
        idx = polyseek.open(index_path, create=False)
        report = idx.dupes(threshold, confirm=not no_verify, progress=True)  # phases on stderr
    except PolyseekError as e:
        click.echo(click.style("error: ", fg="red", bold=True) + str(e), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    color = sys.stdout.isatty()
    for n, g in enumerate(report.groups, 1):
        click.echo(click.style(f"group {n}: {len(g.assets)} images", bold=color))
        for aid in g.assets:
            click.echo(f"  {aid}")
        for p in g.pairs:
            how = (f"{p.inliers} inliers, covers {p.cover:.0%}" if p.confirmed else "hash only")
            click.echo(click.style(f"    {p.a} ~ {p.b}: hash distance {p.hamming}, {how}", dim=color))
    how = "confirmed by local features" if report.verified else "by hash only"
    click.echo(f"{len(report.groups)} group(s) among {report.assets} image(s): {report.candidates} candidate pair(s), "
               f"{report.confirmed} {how}, in {report.seconds:.1f}s")
