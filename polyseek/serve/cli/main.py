"""`polyseek` command line: index, search, status, remove (+ eval, serve from their modules).

Heavy imports happen inside commands so `polyseek --help` is instant. Exit codes: 0 ok, 1 error,
2 usage error; `index` exits 1 when nothing could be indexed (and with --strict when anything failed).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path

import click

INDEX_HELP = "Index folder (default: ./.polyseek, or $POLYSEEK_INDEX)."


def index_option(f):
    return click.option("--index", "index_path", default=lambda: os.environ.get("POLYSEEK_INDEX", ".polyseek"),
                        show_default=".polyseek", help=INDEX_HELP, type=click.Path(file_okay=False))(f)


def fail(msg: str, code: int = 1):
    click.echo(click.style("error: ", fg="red", bold=True) + msg, err=True)
    sys.exit(code)


def _date(s: str | None):
    if not s:
        return None
    try:
        return _dt.datetime.fromisoformat(s)
    except ValueError:
        raise click.BadParameter(f"{s!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None


def _open(index_path: str, create: bool = False, config=None):
    import polyseek

    return polyseek.open(index_path, config, create=create)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="polyseek")
def cli():
    """Polyseek: multimodal search over your files, in one folder on disk.

    \b
    Examples:
      polyseek index examples/            # index a folder into ./.polyseek
      polyseek search "invoice total"     # hybrid keyword + semantic search
      polyseek search --image photo.jpg   # search by image
      polyseek status                     # what is indexed, what failed
    """


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--records", is_flag=True, help="PATHS are JSONL/CSV/Parquet files: one unit per row.")
@click.option("--id-field", default="id", show_default=True, help="Records: the id column.")
@click.option("--text-field", "text_fields", multiple=True, help="Records: text column(s) (repeatable; default: text).")
@click.option("--image-field", default=None, help="Records: column with an image path (relative to the file).")
@click.option("--meta-field", "meta_fields", multiple=True, help="Records: metadata column(s) to keep.")
@click.option("--include", multiple=True, help="Glob of files to include (repeatable), e.g. '*.pdf'.")
@click.option("--exclude", multiple=True, help="Glob of files to skip (repeatable), e.g. 'drafts/*'.")
@click.option("--text-encoder", default=None, help="Text encoder for a new index (default: minilm).")
@click.option("--visual", "visual_encoder", default=None,
              help="Visual encoder for a new index, e.g. clip:openai/clip-vit-base-patch32 or clip:/models/siglip.")
@click.option("--no-ocr", is_flag=True, help="Do not OCR images and scanned pages.")
@click.option("--no-instance", is_flag=True, help="New index: no local features (search by image/crop off, faster ingest).")
@click.option("--ocr-engine", type=click.Choice(["rapidocr", "tesseract"]), default=None)
@click.option("--max-pixels", type=int, default=None, help="Refuse images larger than this many pixels.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when present).")
@click.option("--skip-duplicates", is_flag=True, help="Do not index images that nearly duplicate indexed ones.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Extract and encode on Ray Data: alone, a Ray started for this run on this machine's CPUs; with "
                   "ADDRESS (auto, HOST:PORT, ray://HOST:PORT), a running cluster. Needs polyseek[ray].")
@click.option("--ray-cpus", type=click.IntRange(1), default=None, help="CPUs of a Ray started for this run.")
@click.option("--strict", is_flag=True, help="Exit non-zero if any file failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def index_cmd(paths, index_path, records, id_field, text_fields, image_field, meta_fields, include, exclude,
              text_encoder, visual_encoder, no_ocr, no_instance, ocr_engine, max_pixels, device, skip_duplicates,
              ray_address, ray_cpus, strict, as_json, progress):
    """Index files, folders or records files (incremental: unchanged files are skipped).

    \b
    Examples:
      polyseek index ~/Documents --include '*.pdf' --include '*.md'
      polyseek index photos/ --visual clip:openai/clip-vit-base-patch32
      polyseek index corpus.jsonl --records --id-field id --text-field title --text-field text
      polyseek index archive/ --ray                  # Ray Data on this machine
      polyseek index /shared/archive --ray auto      # a running Ray cluster
    """
    import dataclasses

    from polyseek.config import IndexConfig
    from polyseek.errors import PolyseekError

    exists = (Path(index_path) / "polyseek.json").exists()
    ingest = {}
    if no_ocr:
        ingest["ocr"] = False
    if ocr_engine:
        ingest["ocr_engine"] = ocr_engine
    if max_pixels:
        ingest["max_image_pixels"] = max_pixels
    config = None
    if not exists or ingest or device:
        base = IndexConfig(instance=not no_instance)
        if exists:
            import polyseek

            base = polyseek.open(index_path).config
        config = dataclasses.replace(
            base, ingest=dataclasses.replace(base.ingest, **ingest),
            device=device or base.device,
            text_encoder=text_encoder or base.text_encoder,
            visual_encoder=visual_encoder if visual_encoder is not None else base.visual_encoder)
    elif text_encoder or visual_encoder:
        config = IndexConfig(text_encoder=text_encoder or IndexConfig().text_encoder, visual_encoder=visual_encoder)
    show = sys.stderr.isatty() if progress is None else progress
    try:
        engine = "local"
        if ray_address is not None:
            from polyseek.scale.ray_ingest import RayEngine

            engine = RayEngine(ray_address, num_cpus=ray_cpus, progress=show)
        idx = _open(index_path, create=True, config=config)
        report = idx.add(paths, records=records, id_field=id_field, text_fields=text_fields or ("text",),
                         image_field=image_field, meta_fields=meta_fields, include=include, exclude=exclude,
                         progress=show, skip_duplicates=skip_duplicates, engine=engine)
    except PolyseekError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for p, r in report.failed:
            click.echo(click.style("failed ", fg="yellow") + f"{p}: {r}", err=True)
        for p, a in report.duplicates:
            click.echo(f"duplicate {p}: nearly the same as {a}; not indexed", err=True)
        click.echo(report.summary())
        if report.failed:
            click.echo(f"{len(report.failed)} file(s) failed; `polyseek status` lists them. They are retried next run.",
                       err=True)
    if report.indexed == 0 and report.skipped == 0 and report.failed:
        sys.exit(1)
    if strict and report.failed:
        sys.exit(1)


def _filters(types, path, after, before, kinds):
    from polyseek.types import Filters

    return Filters(type=tuple(types), path=path, after=_date(after), before=_date(before), kind=tuple(kinds))


def _bbox(s: str | None):
    from polyseek.errors import QueryError
    from polyseek.types import parse_bbox

    try:
        return parse_bbox(s)
    except QueryError as e:
        raise click.BadParameter(str(e)) from None


def _search_config(signals, fusion):
    from polyseek.config import SearchConfig

    return SearchConfig(signals=tuple(signals), fusion=fusion)


def render_hit(hit, color: bool = True) -> str:
    snip = hit.snippet
    if color and hit.highlights:
        parts, last = [], 0
        for s, e in hit.highlights:
            parts.append(snip[last:s])
            parts.append(click.style(snip[s:e], bold=True, fg="yellow"))
            last = e
        parts.append(snip[last:])
        snip = "".join(parts)
    where = []
    if hit.unit.page is not None:
        where.append(f"page {hit.unit.page}")
    if hit.unit.kind not in ("record", "image", "passage", "page"):
        where.append(hit.unit.kind)
    if hit.unit.bbox is not None and hit.unit.kind not in ("page", "image", "record"):
        where.append("box " + ",".join(f"{v:.0f}" for v in hit.unit.bbox))
    head = f"{hit.rank:>3}. " + click.style(hit.asset.id, bold=color) + f"  [{hit.asset.type}]"
    if where:
        head += "  " + ", ".join(where)
    sig = "  ".join(f"{k}={v:.3f}" for k, v in hit.signals.items())
    lines = [head + f"  score={hit.score:.4f}", f"     {hit.asset.path}"]
    if snip:
        lines.append(f"     {snip}")
    if sig:
        lines.append(click.style(f"     {sig}", dim=True) if color else f"     {sig}")
    return "\n".join(lines)


@cli.command("search")
@click.argument("text", required=False)
@index_option
@click.option("--image", type=click.Path(), help="Search by this image.")
@click.option("--crop", "crop", default=None, help="Crop of the query image: x,y,w,h in pixels.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10000), help="Results to return.")
@click.option("--type", "types", multiple=True, type=click.Choice(["image", "pdf", "text", "record"]),
              help="Only these asset types (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only these unit kinds, e.g. figure, page, block.")
@click.option("--path", "path_glob", default=None, help="Only assets whose path matches this glob.")
@click.option("--after", default=None, help="Only assets created on or after this date (YYYY-MM-DD).")
@click.option("--before", default=None, help="Only assets created before this date.")
@click.option("--signal", "signals", multiple=True, help="Use only these signals (bm25, dense, visual, ...).")
@click.option("--fusion", default="rrf", show_default=True, help="Fusion method: rrf, combsum, combmnz, wsum, ...")
@click.option("--queries", "queries_file", type=click.Path(), help="Batch: JSONL of queries ({id,text} or {id,image[,bbox]}); '-' for stdin.")
@click.option("--trec", "trec_file", type=click.Path(dir_okay=False), help="Batch: also write a TREC run file.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (one object per query).")
@click.option("--crops", "crops_mode", type=click.Choice(["none", "auto"]), default="none", show_default=True,
              help="auto: also search crops of the query image (salient regions, OCR text, grids) and say which "
                   "crop matched what.")
def search_cmd(text, index_path, image, crop, k, types, kinds, path_glob, after, before, signals, fusion,
               queries_file, trec_file, as_json, crops_mode):
    """Search the index by text, by image (optionally a crop of it), or both.

    \b
    Examples:
      polyseek search "solar panel efficiency"
      polyseek search "revenue" --type pdf --after 2024-01-01 -k 5 --json
      polyseek search --image query.jpg --crop 10,20,200,150
      polyseek search --image street.jpg --crops auto
      polyseek search --queries queries.jsonl -k 100 --trec run.txt
    """
    import time

    from polyseek.errors import PolyseekError
    from polyseek.types import Query
    from polyseek.wire import query_from_json

    if not queries_file and not text and not image:
        raise click.UsageError("give a query TEXT, --image FILE, or --queries FILE")
    if crops_mode == "auto" and (not image or queries_file):
        raise click.UsageError("--crops auto needs --image FILE (and works on one query, not --queries)")
    filters = _filters(types, path_glob, after, before, kinds)
    config = _search_config(signals, fusion)
    try:
        idx = _open(index_path)
    except PolyseekError as e:
        fail(str(e))
    if queries_file:
        stream = sys.stdin if queries_file == "-" else open(queries_file, encoding="utf-8")
        base = Path(".") if queries_file == "-" else Path(queries_file).parent
        trec = open(trec_file, "w", encoding="utf-8") if trec_file else None
        n_err = 0
        try:
            for line_no, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                q = None
                try:
                    q = json.loads(line)
                    query = query_from_json(q, base, k=k, filters=filters, default_id=str(line_no))
                    qid = query.id
                    t0 = time.perf_counter()
                    hits = idx.search_query(query, config)
                    took = (time.perf_counter() - t0) * 1000
                except (ValueError, PolyseekError) as e:
                    n_err += 1
                    click.echo(json.dumps({"id": q.get("id", line_no) if isinstance(q, dict) else line_no,
                                           "error": str(e)}))
                    continue
                click.echo(json.dumps({"id": qid, "took_ms": round(took, 2), "hits": [h.to_dict() for h in hits]}))
                if trec:
                    for h in hits:
                        trec.write(f"{qid} Q0 {h.asset.id} {h.rank} {h.score:.6f} polyseek\n")
        finally:
            if trec:
                trec.close()
            if stream is not sys.stdin:
                stream.close()
        if n_err:
            click.echo(f"{n_err} query(ies) failed", err=True)
        return
    query = Query(text=text, image=image, bbox=_bbox(crop), k=k, filters=filters)
    if crops_mode == "auto" and image:
        return _crop_search(idx, query, config, as_json)
    t0 = time.perf_counter()
    try:
        hits = idx.search_query(query, config)
    except PolyseekError as e:
        fail(str(e))
    took = (time.perf_counter() - t0) * 1000
    if as_json:
        click.echo(json.dumps({"id": None, "took_ms": round(took, 2), "hits": [h.to_dict() for h in hits]}, indent=2))
        return
    color = sys.stdout.isatty()
    if not hits:
        click.echo("no results" + (" (try fewer filters)" if not filters.is_empty() else ""))
        return
    for h in hits:
        click.echo(render_hit(h, color))
    click.echo(click.style(f"{len(hits)} result(s) in {took:.1f} ms", dim=color))


def _crop_search(idx, query, config, as_json: bool) -> None:
    """`search --crops auto`: multi-scale crop search; under each hit, which crop matched what."""
    import time

    from polyseek.errors import PolyseekError
    from polyseek.retrieve.crops import describe_evidence, search_crops

    t0 = time.perf_counter()
    try:
        res = search_crops(idx, query, config)
    except PolyseekError as e:
        fail(str(e))
    took = (time.perf_counter() - t0) * 1000
    if as_json:
        click.echo(json.dumps({"id": None, "took_ms": round(took, 2), "crops": [c.to_dict() for c in res.crops],
                               "ocr_text": res.text, "hits": [h.to_dict() for h in res.hits]}, indent=2))
        return
    color = sys.stdout.isatty()
    for h in res.hits:
        click.echo(render_hit(h, color))
        for e in h.extra.get("crops", []):
            click.echo(f"       <- {describe_evidence(e)}")
    if not res.hits:
        click.echo("no results")
    text = f", OCR text {res.text!r}" if res.text else ""
    click.echo(click.style(f"{len(res.hits)} result(s) from {len(res.crops)} crop(s){text} in {took:.1f} ms",
                           dim=color))


@cli.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True)
def status_cmd(index_path, as_json):
    """What the index holds, which encoders built it, and which files failed (with reasons).

    \b
    Example:
      polyseek status --index ~/.polyseek
    """
    from polyseek.errors import PolyseekError

    try:
        st = _open(index_path).status()
    except PolyseekError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
        return
    click.echo(f"index     {st['path']}  ({st['bytes_on_disk'] / 1e6:.1f} MB)")
    click.echo(f"assets    {st['assets']}  " + ", ".join(f"{k}: {v}" for k, v in sorted(st['assets_by_type'].items())))
    click.echo(f"units     {st['units']}  " + ", ".join(f"{k}: {v}" for k, v in sorted(st['units_by_kind'].items())))
    for role, enc in st["encoders"].items():
        click.echo(f"encoder   {role}: {enc['spec']} (dim {enc['dim']})")
    if st["vector_indexes"]:
        click.echo("ann       " + ", ".join(f"{f}: {v['type']} nprobe {v['nprobe']}, {v['rows']:,} vectors"
                                            for f, v in st["vector_indexes"].items()))
    click.echo(f"updated   {st['updated']}")
    if st["failed"]:
        click.echo(click.style(f"failed    {len(st['failed'])} file(s):", fg="yellow"))
        for f in st["failed"]:
            click.echo(f"  {f['path']}: {f['reason']}")
    else:
        click.echo("failed    none")


@cli.command("remove")
@click.argument("items", nargs=-1, required=True)
@index_option
def remove_cmd(items, index_path):
    """Remove assets by id, file path, or folder path.

    \b
    Examples:
      polyseek remove old-report            # by asset id
      polyseek remove ~/Documents/drafts    # everything indexed under a folder
    """
    from polyseek.errors import PolyseekError

    try:
        n = _open(index_path).remove(items)
    except PolyseekError as e:
        fail(str(e))
    click.echo(f"removed {n} asset(s)")


def _register_optional():
    """Verbs that live in their own modules; a missing module must not break the rest of the CLI."""
    import importlib

    for mod, attr in (("polyseek.serve.cli.eval_cmd", "eval_command"), ("polyseek.serve.cli.demo_cmd", "demo_command"),
                      ("polyseek.serve.cli.serve_cmd", "serve_command"), ("polyseek.serve.cli.dupes_cmd", "dupes_command")):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        cli.add_command(getattr(m, attr))


_register_optional()

if __name__ == "__main__":
    cli()
