"""Run a benchmark: build or reuse an index, answer every query per search config, score, save everything.

A run folder holds per-query metrics, one TREC run file per config, the configs, library versions, the
machine, the git commit, the seed and the command line, so any number can be traced to what made it.
"""

from __future__ import annotations

import logging

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import cache_root
from ..config import IndexConfig, SearchConfig
from ..errors import ConfigError, UnknownNameError
from ..types import Hit
from . import compare
from .datasets import Benchmark
from .metrics import DEFAULT_METRICS, Run, aggregate, evaluate, trec_eval, write_run

TEXT_SIGNALS = ("bm25", "dense")
SCORE_METHODS = ("combsum", "combmnz", "combmax", "wsum")
SELF_NORMALISING = ("rrf", "dbsf")  # fusion methods that bring their own normalisation
NORMS = ("minmax", "zscore", "max", "sum", "rank", "borda")
RECALL_CURVE_K = 100
LIBRARIES = ("polyseek", "lancedb", "pylance", "pyarrow", "torch", "sentence-transformers", "transformers",
             "bm25s", "numpy", "pytrec-eval-terrier", "ranx", "scipy", "matplotlib")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- named configs


def named_config(name: str, signals: Sequence[str] = (), *, depth: int = 100) -> SearchConfig:
    """A SearchConfig from a short name.

    ``bm25``, ``dense``, ``visual``… (any signal of the index): that signal alone. ``hybrid``: the default
    SearchConfig (DBSF fusion) over every signal the index has and the query supports. ``hybrid-rrf``,
    ``hybrid-dbsf``: that fusion. ``hybrid-<method>`` (combsum, combmnz, combmax, wsum): that method on min-max
    normalised scores. ``hybrid-<norm>`` (zscore, minmax, rank, …): CombSUM on that normalisation.
    ``hybrid-<method>-<norm>``: both. ``hybrid-text``: the default fusion over bm25 and dense only.
    """
    if name in signals:
        return SearchConfig(signals=(name,), depth=depth)
    if name == "hybrid":
        return SearchConfig(signals=(), depth=depth)
    if name == "hybrid-text":
        return SearchConfig(signals=tuple(s for s in signals if s in TEXT_SIGNALS) or TEXT_SIGNALS, depth=depth)
    if name.startswith("hybrid-"):
        parts = name.split("-")[1:]
        method, norm = "combsum", "minmax"
        if parts and parts[0] in (*SCORE_METHODS, *SELF_NORMALISING):
            method = parts.pop(0)
            if method in SELF_NORMALISING:
                norm = None
        if parts and parts[0] in NORMS and len(parts) == 1:
            norm = parts.pop(0)
        if not parts:
            return SearchConfig(signals=(), fusion=method if norm is None else f"{method}:{norm}", depth=depth)
    known = [*signals, "hybrid", "hybrid-text", *(f"hybrid-{m}" for m in (*SELF_NORMALISING, *SCORE_METHODS)),
             *(f"hybrid-{n}" for n in NORMS)]
    raise UnknownNameError(
        f"unknown config {name!r}; choose from: {', '.join(known)}, hybrid-<method>-<norm>, or a .json/.toml file"
    )


def load_config_file(path: str | Path) -> dict[str, SearchConfig]:
    """Search configs from JSON or TOML: one SearchConfig's fields, or ``{"configs": {name: {fields}}}``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        import tomllib

        data = tomllib.loads(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not JSON ({e.msg} at line {e.lineno}); use .toml for TOML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object of SearchConfig fields or {{\"configs\": {{...}}}}")
    if "configs" in data:
        return {str(n): SearchConfig.from_dict(c) for n, c in data["configs"].items()}
    return {path.stem: SearchConfig.from_dict(data)}


def resolve_configs(specs: Sequence[str], signals: Sequence[str], *, depth: int = 100) -> dict[str, SearchConfig]:
    """Names or config files → ordered ``{name: SearchConfig}`` (the first is the baseline)."""
    out: dict[str, SearchConfig] = {}
    for spec in specs:
        if spec.endswith((".json", ".toml")) or Path(spec).is_file():
            if not Path(spec).is_file():
                raise ConfigError(f"config file {spec} does not exist")
            out.update(load_config_file(spec))
        else:
            out[spec] = named_config(spec, signals, depth=depth)
    return out


def ablation_configs(signals: Sequence[str], base: SearchConfig | None = None) -> dict[str, SearchConfig]:
    """Full fusion over every signal, then the same minus each signal in turn."""
    import dataclasses

    base = base or SearchConfig()
    full = list(base.signals or signals)
    out = {"all": dataclasses.replace(base, signals=tuple(full))}
    if len(full) > 1:
        for s in full:
            out[f"-{s}"] = dataclasses.replace(base, signals=tuple(x for x in full if x != s))
    return out


# ---------------------------------------------------------------------------- running


def hits_to_run(hits: Sequence[Hit]) -> dict[str, float]:
    """One query's hits → ``{doc_id: score}`` that trec_eval ranks in the engine's order.

    A doc (asset) listed twice keeps its first (best) position. Where the engine's scores tie or are not
    decreasing, each is lowered to the next float below the previous one, so trec_eval's tie rule (doc id
    descending) cannot reorder what the engine returned.
    """
    run: dict[str, float] = {}
    prev = math.inf
    for h in hits:
        doc = h.asset.id
        if doc in run:
            continue
        s = float(h.score)
        if not s < prev:
            s = float(np.nextafter(prev, -np.inf))
        run[doc] = prev = s
    return run


def default_index_dir(bench: Benchmark, index_config: IndexConfig | None, runs_root: Path) -> Path:
    """A cache folder shared by runs over the same corpus and index config: ``<runs>/.index/<bench>-<hash>``."""
    key = json.dumps({"corpus": str(bench.corpus_path), "config": (index_config or IndexConfig()).to_dict()},
                     sort_keys=True, default=str)
    return runs_root / ".index" / f"{bench.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def build_index(bench: Benchmark, index_dir: Path, index_config: IndexConfig | dict | None = None,
                *, progress: bool = False):
    """Open (creating if missing) the index and add the corpus; unchanged files cost a hash check only."""
    import polyseek

    idx = polyseek.open(index_dir, config=index_config)
    t0 = time.perf_counter()
    if bench.corpus_kind == "records":
        report = idx.add([bench.corpus_path], records=True, id_field=bench.id_field,
                         text_fields=bench.text_fields, progress=progress)
    elif bench.corpus_kind == "files":
        report = idx.add([bench.corpus_path], progress=progress)
    else:
        raise ConfigError(f"benchmark {bench.name} has no corpus (corpus/ or corpus.jsonl) to index")
    seconds = time.perf_counter() - t0
    info = {
        "index_dir": str(index_dir),
        "index_s": round(seconds, 3),
        "indexed": report.indexed,
        "skipped": report.skipped,
        "removed": report.removed,
        "failed": [list(f) for f in report.failed],
        "reused": report.indexed == 0 and report.skipped > 0,
    }
    return idx, info


def search_timed(idx, queries, config: SearchConfig, step=None) -> tuple[list[list[Hit]], list[float]]:
    """Answer queries one by one (``search_many`` on one query) and time each, after one untimed warm-up.

    A query the config cannot answer (an image query under a text-only config) gets no hits and scores 0,
    as trec_eval scores an unanswered query; the first such message is logged once."""
    from ..errors import QueryError

    if queries:
        try:
            idx.search_many([queries[0]], config=config)  # loads models and caches; not a user-visible latency
        except QueryError:
            pass
    hits, ms, warned = [], [], False
    for q in queries:
        t0 = time.perf_counter()
        try:
            hits.append(idx.search_many([q], config=config)[0])
        except QueryError as e:
            if not warned:
                log.warning("query %s (and maybe others) unanswered under %s: %s", q.id, config.signals or "all", e)
                warned = True
            hits.append([])
        ms.append((time.perf_counter() - t0) * 1000.0)
        if step is not None:
            step(1)
    return hits, ms


def score_run(bench_qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> tuple[dict, dict]:
    """Per-query metrics and their means (every judged query counts; an unanswered query scores 0)."""
    per_query = evaluate(bench_qrels, run, metrics)
    return per_query, aggregate(per_query, metrics)


def recall_curve(qrels, run: Run, max_k: int = RECALL_CURVE_K) -> list[float]:
    """Mean recall@k for k = 1..max_k (trec_eval's recall.k), for recall curves."""
    judged = {q: d for q, d in qrels.items() if d}
    spec = "recall." + ",".join(str(k) for k in range(1, max_k + 1))
    pq = trec_eval(judged, run, {spec}, complete=True)
    agg = aggregate(pq, [f"recall_{k}" for k in range(1, max_k + 1)])
    return [round(agg[f"recall_{k}"], 6) for k in range(1, max_k + 1)]


def run_benchmark(
    bench: Benchmark,
    index_dir: str | Path | None = None,
    index_config: IndexConfig | dict | None = None,
    search_configs: Mapping[str, SearchConfig] | Sequence[str] | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    k: int = 100,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ablation: bool = False,
    runs_root: str | Path | None = None,
    command: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Index ``bench`` (or reuse the index), run every query under each config, score and save.

    ``search_configs``: ``{name: SearchConfig}`` or names/config files (see `named_config`); default
    ``["hybrid"]``. ``ablation`` adds the full fusion and the full fusion minus each signal. Returns
    ``{"bench", "queries", "run_dir", "index", "results": [one result per config], "significance",
    "by_query_type"}``; each result is ``{"name", "bench", "queries", "metrics", "timing", "config", "recall_curve"}``.
    """
    import random

    random.seed(seed)
    np.random.seed(seed)
    # Runs and the index cache go to the user cache, not the working directory ($POLYSEEK_CACHE_DIR/runs).
    runs_root = Path(runs_root) if runs_root is not None else cache_root() / "runs"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir) if out_dir is not None else runs_root / f"{bench.name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if index_config is not None and not isinstance(index_config, IndexConfig):
        index_config = IndexConfig.from_dict(index_config)
    if index_dir is None:
        index_dir = default_index_dir(bench, index_config, run_dir.parent if out_dir is not None else runs_root)
    idx, index_info = build_index(bench, Path(index_dir), index_config, progress=progress)
    try:
        signals = list(idx.signals())
        if search_configs is None:
            search_configs = ["hybrid"]
        configs = (dict(search_configs) if isinstance(search_configs, Mapping)
                   else resolve_configs(list(search_configs), signals))
        if ablation:
            # Only signals that can answer this benchmark's queries: dropping the image-only signal from a
            # text benchmark would add a row identical to the full fusion.
            kinds = {m for q in bench.judged_queries for m, present in
                     (("text", bool(q.text)), ("image", q.image is not None)) if present}
            retrievers = idx.searcher().retrievers
            usable = [s for s in signals if retrievers[s].query_modalities & kinds]
            for name, cfg in ablation_configs(usable).items():
                configs.setdefault(name, cfg)
        queries = [_with_k(q, k) for q in bench.judged_queries]
        per_query: dict[str, dict] = {}
        results: list[dict] = []
        runs: dict[str, Run] = {}
        from ..progress import Progress

        for i, (name, cfg) in enumerate(configs.items(), 1):
            prog = Progress(progress, f"eval {name} ({i}/{len(configs)})", total=len(queries), unit="query")
            try:
                hits, ms = search_timed(idx, queries, cfg, step=prog.step)
            finally:
                prog.close()
            run = {q.id: hits_to_run(h) for q, h in zip(queries, hits)}
            runs[name] = run
            pq, means = score_run(bench.qrels, run, metrics)
            if bench.spans:  # audio/video: was the top hit also the right moment? (eval/timespans.py)
                from .timespans import TIME_METRICS, time_metrics

                for qid, vals in time_metrics(bench.spans, [q.id for q in queries], hits).items():
                    pq.setdefault(qid, {}).update(vals)
                means.update(aggregate(pq, TIME_METRICS))
            per_query[name] = pq
            results.append({
                "name": name,
                "bench": bench.name,
                "queries": len(queries),
                "metrics": {m: round(v, 4) for m, v in means.items()},
                "timing": {
                    "index_s": index_info["index_s"],
                    "query_ms_p50": round(float(np.percentile(ms, 50)), 2) if ms else None,
                    "query_ms_p95": round(float(np.percentile(ms, 95)), 2) if ms else None,
                },
                "config": cfg.to_dict(),
                "recall_curve": recall_curve(bench.qrels, run),
            })
            write_run(run, run_dir / "runs" / f"{_safe(name)}.trec", tag=name)
            prog.line("  ".join(f"{m}={v:.4f}" for m, v in list(means.items())[:3])
                      + f"  p50 {results[-1]['timing']['query_ms_p50']} ms")
        significance = (compare.compare_systems(per_query, metrics, seed=seed) if len(results) > 1 else {})
        by_type = query_type_breakdown(bench, queries, per_query, metrics)
        out = {
            "bench": bench.name,
            "queries": len(queries),
            "run_dir": str(run_dir),
            "index": index_info,
            "signals": signals,
            "results": results,
            "significance": significance,
            "by_query_type": by_type,
        }
        save_run_folder(run_dir, out, per_query, configs, bench, index_config, seed, command, idx)
        return out
    finally:
        idx.close()


def score_run_file(qrels_path: str | Path, run_path: str | Path, metrics: Sequence[str] = DEFAULT_METRICS) -> dict:
    """Score an existing TREC run file: ``{"bench", "queries", "metrics", "per_query", "recall_curve"}``."""
    from .metrics import read_qrels, read_run

    qrels, run = read_qrels(qrels_path), read_run(run_path)
    pq, means = score_run(qrels, run, metrics)
    return {
        "name": Path(run_path).stem,
        "bench": Path(qrels_path).parent.name,
        "queries": len(pq),
        "metrics": {m: round(v, 4) for m, v in means.items()},
        "per_query": pq,
        "recall_curve": recall_curve(qrels, run),
    }


def query_type_breakdown(bench: Benchmark, queries, per_query: Mapping[str, Mapping], metrics) -> dict:
    """Mean metrics per config for text queries and image queries, when the benchmark has both."""
    types = {q.id: bench.query_type(q) for q in queries}
    kinds = sorted(set(types.values()))
    if len(kinds) < 2:
        return {}
    if bench.spans:
        from .timespans import TIME_METRICS

        metrics = [*metrics, *TIME_METRICS]
    out: dict[str, dict] = {}
    for name, pq in per_query.items():
        out[name] = {}
        for kind in kinds:
            sub = {q: v for q, v in pq.items() if types.get(q) == kind}
            out[name][kind] = {"queries": len(sub), **{m: round(v, 4) for m, v in aggregate(sub, metrics).items()}}
    return out


def _with_k(q, k: int):
    import dataclasses

    return dataclasses.replace(q, k=k)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name) or "run"


# ---------------------------------------------------------------------------- provenance


def save_run_folder(run_dir: Path, out: dict, per_query, configs, bench: Benchmark, index_config, seed, command,
                    idx) -> None:
    """Write result.json, per_query.json, config.json and provenance.json into the run folder."""
    (run_dir / "result.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    (run_dir / "per_query.json").write_text(json.dumps(per_query, indent=1, sort_keys=True), encoding="utf-8")
    config = {
        "bench": str(bench.path),
        "corpus": str(bench.corpus_path),
        "search_configs": {n: c.to_dict() for n, c in configs.items()},
        "index_config": (index_config or IndexConfig()).to_dict(),
    }
    try:
        config["index_status"] = {k: v for k, v in idx.status().items() if k not in ("failed",)}
    except (AttributeError, OSError) as e:  # provenance is best effort; the scores are already saved
        config["index_status"] = {"error": str(e)}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    prov = provenance(seed=seed, command=command)
    (run_dir / "provenance.json").write_text(json.dumps(prov, indent=2), encoding="utf-8")


def provenance(*, seed: int = 0, command: str | None = None) -> dict[str, Any]:
    """Library versions, machine, git commit, seed, command line and time of a run."""
    return {
        "command": command if command is not None else shlex.join(sys.argv),
        "cwd": os.getcwd(),
        "seed": seed,
        "time": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": library_versions(),
        "machine": machine_info(),
        "git": git_info(Path(__file__).resolve().parent),
    }


def library_versions(names: Sequence[str] = LIBRARIES) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gb"] = None
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["cuda"] = None
    return info


def git_info(where: Path) -> dict[str, Any] | None:
    """The commit of the repository holding ``where`` (read-only git calls), or None outside a repository."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
