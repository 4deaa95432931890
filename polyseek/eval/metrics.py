"""IR metrics through pytrec_eval (trec_eval's own C code), TREC qrels and run files.

Our metric names (``ndcg@10``, ``map@100``, ``mrr@10``, ``recall@k``, ``P@k``) map to trec_eval measures;
any trec_eval measure name (``bpref``, ``P_10``, ``iprec_at_recall_0.50``) is accepted as is.

Ordering: trec_eval ignores the rank column and ranks a query's documents by score descending, ties broken
by doc id descending. Every cut-off we apply (``mrr@10``, ``max_docs``) and every run file we write follow that
same order, so the ranks in our files are deterministic and are the ranks trec_eval evaluates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import ConfigError

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]
PerQuery = dict[str, dict[str, float]]

DEFAULT_METRICS: tuple[str, ...] = (
    "ndcg@10",
    "map@100",
    "mrr@10",
    "recall@1",
    "recall@5",
    "recall@10",
    "recall@100",
)

# our prefix -> (trec_eval measure family, output key template)
_CUT_FAMILIES = {
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "recall": "recall",
    "p": "P",
    "precision": "P",
    "success": "success",
}
_PLAIN = {"ndcg": "ndcg", "map": "map", "mrr": "recip_rank", "rprec": "Rprec", "bpref": "bpref"}
_NAME_RE = re.compile(r"^([A-Za-z_]+)@(\d+)$")


def _supported() -> set[str]:
    import pytrec_eval

    return set(pytrec_eval.supported_measures)


def resolve_metric(name: str) -> tuple[str, str, int | None]:
    """Map one of our metric names to ``(trec_eval measure spec, pytrec_eval result key, run cut-off)``.

    The cut-off is only set for measures trec_eval has no cut version of (``mrr@10`` = recip_rank on the
    run cut at 10).
    """
    m = _NAME_RE.match(name)
    if m:
        base, k = m.group(1).lower(), int(m.group(2))
        if k < 1:
            raise ConfigError(f"metric {name!r}: the cut-off must be >= 1")
        if base in ("mrr", "rr"):
            return "recip_rank", "recip_rank", k
        if base in _CUT_FAMILIES:
            fam = _CUT_FAMILIES[base]
            return f"{fam}.{k}", f"{fam}_{k}", None
        raise ConfigError(
            f"unknown metric {name!r}; choose from: ndcg@k, map@k, mrr@k, recall@k, P@k, success@k, "
            f"{', '.join(sorted(_PLAIN))}, or a trec_eval measure name"
        )
    if name.lower() in _PLAIN:
        t = _PLAIN[name.lower()]
        return t, t, None
    # a trec_eval result key such as P_10, ndcg_cut_20, iprec_at_recall_0.50, or a family such as bpref
    supported = _supported()
    if name in supported:
        return name, name, None
    fam, _, param = name.rpartition("_")
    if fam in supported and param:
        return f"{fam}.{param}", name, None
    raise ConfigError(
        f"unknown metric {name!r}; choose from: ndcg@k, map@k, mrr@k, recall@k, P@k, success@k, "
        f"{', '.join(sorted(_PLAIN))}, or a trec_eval measure ({', '.join(sorted(supported))})"
    )


def sorted_docs(results: Mapping[str, float]) -> list[tuple[str, float]]:
    """A query's (doc id, score) pairs in trec_eval's order: score descending, ties by doc id descending."""
    return sorted(results.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def cut_run(run: Mapping[str, Mapping[str, float]], k: int) -> Run:
    """Keep the top ``k`` documents of every query, in trec_eval's order."""
    return {q: dict(sorted_docs(docs)[:k]) for q, docs in run.items()}


def trec_eval(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    measures: Iterable[str] | None = None,
    *,
    complete: bool = False,
    max_docs: int | None = None,
    relevance_level: int = 1,
) -> PerQuery:
    """Per-query trec_eval measures (keys as trec_eval prints them), via pytrec_eval.

    ``complete`` is trec_eval's ``-c`` (queries of the qrels missing from the run are scored on an empty
    ranking); ``max_docs`` is ``-M``; ``relevance_level`` is ``-l``. ``measures`` default: all of ``-m all_trec``.
    """
    import pytrec_eval

    measures = set(measures) if measures is not None else set(pytrec_eval.supported_measures)
    run = {q: dict(d) for q, d in run.items()}
    if max_docs is not None:
        run = cut_run(run, max_docs)
    qrels = {q: {d: int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=relevance_level)
    results = evaluator.evaluate({q: d for q, d in run.items() if d})
    if complete:
        missing = [q for q in qrels if q not in results]
        if missing:
            # pytrec_eval skips queries without any retrieved document; one doc no qrels can know
            # gives the numbers trec_eval -c reports for an empty ranking, except num_ret.
            ghost = "\x00polyseek-empty"
            filled = evaluator.evaluate({q: {ghost: 0.0} for q in missing})
            for q in missing:
                vals = filled.get(q, {})
                if "num_ret" in vals:
                    vals["num_ret"] = 0.0
                for key in ("num_nonrel_judged_ret", "utility"):  # the ghost counts as a retrieved non-relevant
                    if key in vals:
                        vals[key] = 0.0
                results[q] = vals
    return results


def evaluate(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    measures: Iterable[str] = DEFAULT_METRICS,
    *,
    relevance_level: int = 1,
) -> PerQuery:
    """Per-query metrics under our names for every query of ``qrels`` (a query with no results scores 0).

    Queries in the run but not in the qrels are ignored, as trec_eval does.
    """
    measures = list(measures)
    plain: dict[str, str] = {}  # our name -> result key
    specs: set[str] = set()
    cuts: dict[int, dict[str, str]] = {}  # cut-off -> {our name: result key}
    for name in measures:
        spec, key, cut = resolve_metric(name)
        if cut is None:
            specs.add(spec)
            plain[name] = key
        else:
            cuts.setdefault(cut, {})[name] = key
    judged = {q: d for q, d in qrels.items() if d}
    out: PerQuery = {q: {} for q in judged}
    if specs:
        res = trec_eval(judged, run, specs, complete=True, relevance_level=relevance_level)
        for q in judged:
            for name, key in plain.items():
                out[q][name] = float(res.get(q, {}).get(key, 0.0))
    for k, names in cuts.items():
        res = trec_eval(
            judged, run, {_spec_of(key) for key in names.values()}, complete=True,
            max_docs=k, relevance_level=relevance_level,
        )
        for q in judged:
            for name, key in names.items():
                out[q][name] = float(res.get(q, {}).get(key, 0.0))
    return {q: {name: out[q][name] for name in measures} for q in out}


def _spec_of(key: str) -> str:
    fam, _, param = key.rpartition("_")
    return f"{fam}.{param}" if fam and param.isdigit() else key


def aggregate(per_query: Mapping[str, Mapping[str, float]], measures: Iterable[str] | None = None) -> dict[str, float]:
    """Aggregate per-query values as trec_eval does: mean, except sums for ``num_*`` and geometric means for ``gm_*``."""
    import pytrec_eval

    if measures is None:
        measures = list(dict.fromkeys(m for vals in per_query.values() for m in vals))
    out: dict[str, float] = {}
    for m in measures:
        values = [float(v[m]) for v in per_query.values() if m in v]
        if not values:
            out[m] = 0.0
        elif m.startswith(("num_", "gm_")):
            out[m] = float(pytrec_eval.compute_aggregated_measure(m, values))
        else:
            out[m] = math.fsum(values) / len(values)
    return out


# ---------------------------------------------------------------------------- files


def read_qrels(path: str | Path) -> Qrels:
    """Read TREC qrels ``qid iter docid rel`` (whitespace separated; ``#`` lines are comments).

    A BEIR qrels file (tab separated ``query-id corpus-id score`` with a header line) is read too.
    """
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            if len(parts) == 3:  # BEIR: query-id corpus-id score
                if n == 1 and not _is_number(parts[2]):
                    continue  # header
                qid, doc, rel = parts
            elif len(parts) >= 4:
                qid, _, doc, rel = parts[:4]
            else:
                raise ConfigError(f"{path}:{n}: expected 'qid 0 docid rel', got {s!r}")
            try:
                qrels.setdefault(qid, {})[doc] = int(float(rel))
            except ValueError:
                raise ConfigError(f"{path}:{n}: relevance {rel!r} is not a number") from None
    return qrels


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_run(path: str | Path) -> Run:
    """Read a TREC run ``qid Q0 docid rank score tag`` (anything after the 6th column is ignored).

    The rank column is ignored, as trec_eval does; a document listed twice keeps its highest score.
    """
    run: Run = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 5:
                raise ConfigError(f"{path}:{n}: expected 'qid Q0 docid rank score tag', got {line.strip()!r}")
            qid, doc = parts[0], parts[2]
            try:
                score = float(parts[4])
            except ValueError:
                raise ConfigError(f"{path}:{n}: score {parts[4]!r} is not a number") from None
            docs = run.setdefault(qid, {})
            if doc not in docs or score > docs[doc]:
                docs[doc] = score
    return run


def write_run(run: Mapping[str, Mapping[str, float]], path: str | Path, tag: str = "polyseek") -> Path:
    """Write a TREC run; ranks follow trec_eval's order (score desc, doc id desc), so they are deterministic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = re.sub(r"\s+", "_", tag) or "polyseek"
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(run, key=_natural_key):
            for rank, (doc, score) in enumerate(sorted_docs(run[qid]), 1):
                f.write(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n")  # repr: no ties made by rounding
    return path


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | Path) -> Path:
    """Write TREC qrels ``qid 0 docid rel``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(qrels, key=_natural_key):
            for doc, rel in sorted(qrels[qid].items()):
                f.write(f"{qid} 0 {doc} {int(rel)}\n")
    return path


def _natural_key(s: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s) if t)
