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
@click.option("--text-encoder", default=None, help="Text encoder for a new index (default: minilm?quantize=int8; minilm is fp32).")
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
@click.option("--progress/--no-progress", default=None,
              help="Progress (default on): a bar on a terminal, one line per phase otherwise.")
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
    show = True if progress is None else progress  # a bar on a terminal, one line per phase elsewhere
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:  # a usage error, said before any model loads
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")
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
            click.echo(f"{len(report.failed)} file(s) failed; `polyseek status` lists them. They are retried next run "
                       f"(`polyseek remove PATH` forgets one).", err=True)
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


def _search_config(signals, fusion, cutoff="none", route="auto", rerank=None, rerank_depth=50, refine=()):
    from polyseek.config import SearchConfig
    from polyseek.errors import ConfigError
    from polyseek.retrieve.cutoff import parse_cutoff

    try:
        parse_cutoff(cutoff)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--cutoff") from None
    given = {"fusion": fusion} if fusion else {}  # else SearchConfig's default
    return SearchConfig(signals=tuple(signals), cutoff=cutoff, route=route, rerank=rerank or "none",
                        rerank_depth=rerank_depth, refine=tuple(refine), **given)


def mmss(seconds: float) -> str:
    """A time in a clip as mm:ss, or h:mm:ss from an hour on (125.4 -> "02:05")."""
    s = int(max(0.0, float(seconds)))
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


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
    if hit.unit.time is not None:
        where.append(f"{mmss(hit.unit.time[0])}\u2013{mmss(hit.unit.time[1])}")
    if hit.unit.bbox is not None and hit.unit.kind not in ("page", "image", "record", "frame"):
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
@click.argument("words", nargs=-1)
@index_option
@click.option("--image", type=click.Path(), help="Search by this image.")
@click.option("--crop", "crop", default=None, help="Crop of the query image: x,y,w,h in pixels.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10000), help="Results to return.")
@click.option("--type", "types", multiple=True, type=click.Choice(["image", "pdf", "text", "record", "video", "audio"]),
              help="Only these asset types (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only these unit kinds, e.g. figure, page, block.")
@click.option("--path", "path_glob", default=None, help="Only assets whose path matches this glob.")
@click.option("--after", default=None, help="Only assets created on or after this date (YYYY-MM-DD).")
@click.option("--before", default=None, help="Only assets created before this date.")
@click.option("--signal", "signals", multiple=True, help="Use only these signals (bm25, dense, visual, ...).")
@click.option("--fusion", default=None, help="Fusion method: dbsf (default), rrf, combsum, combmnz, wsum, ...")
@click.option("--queries", "queries_file", type=click.Path(), help="Batch: JSONL of queries ({id,text} or {id,image[,bbox]}); '-' for stdin.")
@click.option("--trec", "trec_file", type=click.Path(dir_okay=False), help="Batch: also write a TREC run file.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (one object per query).")
@click.option("--crops", "crops_mode", type=click.Choice(["none", "auto"]), default="none", show_default=True,
              help="auto: also search crops of the query image (salient regions, OCR text, grids) and say which "
                   "crop matched what.")
@click.option("--cutoff", default=None, metavar="auto|none|FLOAT",
              help="Show only the hits that stand out: auto (default for one query), none (always k; the default "
                   "with --queries), or a threshold in (0, 1] relative to the top hit's confidence.")
@click.option("--route", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="auto: rules pick signals and granularity per query (explained in each hit's extra.route); "
                   "off: every signal, one hit per document.")
@click.option("--rerank", default=None, metavar="SPEC",
              help="Rerank the top hits: cross-encoder:MODEL-OR-FOLDER, llm:MODEL@URL, llm-pointwise:MODEL@URL, "
                   "geometric.")
@click.option("--rerank-depth", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="How many top hits the reranker sees.")
@click.option("--refine", multiple=True, type=click.Choice(["rm3", "rocchio", "gqr"]),
              help="Test-time query refinement (repeatable).")
@click.option("--suggest", is_flag=True, help="Also propose 3-5 refined queries, one per cluster of the results.")
def search_cmd(words, index_path, image, crop, k, types, kinds, path_glob, after, before, signals, fusion,
               queries_file, trec_file, as_json, crops_mode, cutoff, route, rerank, rerank_depth, refine, suggest):
    """Search the index by text, by image (optionally a crop of it), or both.

    \b
    Examples:
      polyseek search "solar panel efficiency"
      polyseek search self locking nut       # several words are one query
      polyseek search "revenue" --type pdf --after 2024-01-01 -k 5 --json
      polyseek search --image query.jpg --crop 10,20,200,150
      polyseek search --image street.jpg --crops auto
      polyseek search --queries queries.jsonl -k 100 --trec run.txt
      polyseek search "tea" --cutoff none --suggest --rerank cross-encoder:./my-cross-encoder
    """
    import time

    from polyseek.errors import PolyseekError
    from polyseek.types import Query
    from polyseek.wire import query_from_json

    # Several words are one query: `polyseek search self locking nut` is "self locking nut".
    text = " ".join(words) if words else None
    if text is not None and not text.strip():
        raise click.UsageError("the query is empty; give words to search for, or --image FILE")
    if not queries_file and not text and not image:
        raise click.UsageError("give a query TEXT, --image FILE, or --queries FILE")
    if crop and not image:
        raise click.UsageError("--crop needs --image FILE: it is a box inside the query image")
    if image and not os.path.isfile(image):  # said before the index or any model is opened
        raise click.UsageError(f"--image {image}: no such file")
    if queries_file and queries_file != "-" and not os.path.isfile(queries_file):
        raise click.UsageError(f"--queries {queries_file}: no such file")
    if crops_mode == "auto" and (not image or queries_file):
        raise click.UsageError("--crops auto needs --image FILE (and works on one query, not --queries)")
    filters = _filters(types, path_glob, after, before, kinds)
    if cutoff is None:  # one query: show what stands out; batches stay comparable with trec_eval's top-k
        cutoff = "none" if queries_file else "auto"
    config = _search_config(signals, fusion, cutoff, route, rerank, rerank_depth, refine)
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
    warnings = idx.query_warnings(query, hits)
    suggestions = None
    if suggest:  # clusters of the full list, not of what the cutoff kept
        import dataclasses

        full = hits if config.cutoff == "none" else idx.search_query(query, dataclasses.replace(config, cutoff="none"))
        suggestions = idx.suggest(query, full)
    if as_json:
        out = {"id": None, "took_ms": round(took, 2), "hits": [h.to_dict() for h in hits], "warnings": warnings}
        if hits and "route" in hits[0].extra:
            out["route"] = hits[0].extra["route"]
        if suggestions is not None:
            out["suggestions"] = suggestions
        click.echo(json.dumps(out, indent=2))
        return
    color = sys.stdout.isatty()
    for w in warnings:
        click.echo(click.style("note: ", fg="yellow", bold=True) + w, err=True)
    if not hits:
        click.echo("no results" + (" (try fewer filters)" if not filters.is_empty() else ""))
        return
    for h in hits:
        click.echo(render_hit(h, color))
    more = " (cut off: --cutoff none shows k)" if config.cutoff != "none" and len(hits) < k else ""
    click.echo(click.style(f"{len(hits)} result(s) in {took:.1f} ms{more}", dim=color))
    if suggestions:
        click.echo("maybe you are looking for: " + " | ".join(s["query"] for s in suggestions))


@cli.command("similar")
@click.argument("asset_id")
@index_option
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10000), help="Results to return.")
@click.option("--type", "types", multiple=True, type=click.Choice(["image", "pdf", "text", "record"]),
              help="Only these asset types (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def similar_cmd(asset_id, index_path, k, types, as_json):
    """More like this: assets similar to ASSET_ID by every signal it has (text and visual vectors, its terms,
    its pixels).

    \b
    Examples:
      polyseek similar report
      polyseek similar photo_exif --type image -k 5 --json
    """
    import time

    from polyseek.errors import PolyseekError
    from polyseek.types import Filters

    try:
        idx = _open(index_path)
        t0 = time.perf_counter()
        hits = idx.similar(asset_id, k=k, filters=Filters(type=tuple(types)))
    except PolyseekError as e:
        fail(str(e))
    took = (time.perf_counter() - t0) * 1000
    if as_json:
        click.echo(json.dumps({"id": asset_id, "took_ms": round(took, 2), "hits": [h.to_dict() for h in hits]},
                              indent=2))
        return
    color = sys.stdout.isatty()
    if not hits:
        click.echo("nothing similar found")
        return
    for h in hits:
        click.echo(render_hit(h, color))


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
        click.echo(click.style(f"failed    {len(st['failed'])} file(s) (retried next run; "
                               f"`polyseek remove PATH` forgets one):", fg="yellow"))
        for f in st["failed"]:
            click.echo(f"  {f['path']}: {f['reason']}")
    else:
        click.echo("failed    none")
    if st["skipped"]:
        by_type: dict[str, int] = {}
        for f in st["skipped"]:
            by_type[f["type"]] = by_type.get(f["type"], 0) + 1
        click.echo(f"skipped   {len(st['skipped'])} file(s) of unsupported type (not retried): "
                   + ", ".join(f"{t}: {n}" for t, n in sorted(by_type.items())))
        for f in st["skipped"][:20]:
            click.echo(f"  {f['path']}")
        if len(st["skipped"]) > 20:
            click.echo(f"  ... and {len(st['skipped']) - 20} more (--json lists all)")


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
                      ("polyseek.serve.cli.serve_cmd", "serve_command"), ("polyseek.serve.cli.dupes_cmd", "dupes_command"),
                      ("polyseek.serve.cli.ask_cmd", "ask_command")):
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
