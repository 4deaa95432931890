"""Benchmark folders → a `Benchmark`: the shared layout, BEIR folders, and TREC topics + qrels pairs.

Shared layout: ``corpus/`` (doc id = file stem) or ``corpus.jsonl`` (``{"id","text","title"}``),
``queries.jsonl`` (``{"id","text"}`` and/or ``{"id","image","bbox"}``, image paths relative to the folder),
``qrels.tsv`` (TREC ``qid 0 docid rel``). A query may also carry a ``type`` (per-type results use it) and, for
audio/video, ``expected`` time spans (``{"clip","t0","t1"}`` or a list; scored by eval/timespans.py). BEIR: ``corpus.jsonl`` with ``_id``, ``queries.jsonl`` with ``_id``,
``qrels/test.tsv`` with a header line.
"""

from __future__ import annotations

import dataclasses

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, NotFoundError
from ..types import Query
from ..wire import query_from_json
from .metrics import Qrels, read_qrels

CorpusKind = Literal["files", "records", "none"]


@dataclass
class Benchmark:
    """A loaded benchmark: what to index, the queries, and the relevance judgements."""

    name: str
    path: Path
    corpus_kind: CorpusKind  # "files": a folder of files; "records": a JSONL records file; "none": run scoring only
    corpus_path: Path | None
    queries: list[Query]
    qrels: Qrels
    id_field: str = "id"  # for records
    text_fields: tuple[str, ...] = ("title", "text")
    meta: dict = field(default_factory=dict)
    query_types: dict[str, str] = field(default_factory=dict)  # declared `type` of each query, when given
    spans: dict = field(default_factory=dict)  # query id -> [timespans.Span]: expected clip and time span

    def query_type(self, q: Query) -> str:
        """The query's declared `type` when queries.jsonl gives one; else "image" when it has an image, else "text"."""
        if q.id in self.query_types:
            return self.query_types[q.id]
        return "image" if q.image is not None else "text"

    @property
    def judged_queries(self) -> list[Query]:
        """Queries that have at least one judgement (others cannot be scored)."""
        return [q for q in self.queries if self.qrels.get(q.id)]


def load_benchmark(path: str | Path, *, split: str = "test", k: int = 100) -> Benchmark:
    """Load a benchmark folder in the shared layout or the BEIR layout; a TREC topics file needs
    `load_trec` instead. Queries get ``k`` results."""
    # Absolute but not symlink-resolved: the index run keys files by their absolute path as given, so an index
    # built from a benchmark corpus reached through a symlink must see the same paths when eval adds the corpus again.
    root = Path(os.path.abspath(Path(path).expanduser()))
    if not root.is_dir():
        raise NotFoundError(f"benchmark folder {root} does not exist")
    beir_qrels = root / "qrels" / f"{split}.tsv"
    if beir_qrels.is_file():
        return _load_beir(root, beir_qrels, k)
    qrels_path = _first(root, ("qrels.tsv", "qrels.txt", "qrels"))
    queries_path = _first(root, ("queries.jsonl",))
    if qrels_path is None or queries_path is None:
        raise ConfigError(
            f"{root} is not a benchmark folder: expected queries.jsonl and qrels.tsv "
            f"(or BEIR's queries.jsonl and qrels/{split}.tsv)"
        )
    corpus_kind, corpus_path = _find_corpus(root)
    extras: dict = {"query_types": {}, "spans": {}}
    queries = _read_queries(queries_path, root, k, extras)
    return Benchmark(
        name=root.name,
        path=root,
        corpus_kind=corpus_kind,
        corpus_path=corpus_path,
        queries=queries,
        qrels=read_qrels(qrels_path),
        id_field=_records_id_field(corpus_path) if corpus_kind == "records" else "id",
        query_types=extras["query_types"],
        spans=extras["spans"],
    )


def _first(root: Path, names) -> Path | None:
    for n in names:
        if (root / n).is_file():
            return root / n
    return None


def _find_corpus(root: Path) -> tuple[CorpusKind, Path | None]:
    if (root / "corpus.jsonl").is_file():
        return "records", root / "corpus.jsonl"
    if (root / "corpus").is_dir():
        return "files", root / "corpus"
    return "none", None


def _records_id_field(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                if "id" in rec:
                    return "id"
                if "_id" in rec:
                    return "_id"
                raise ConfigError(f"{path}: records need an 'id' (or BEIR '_id') field; first record has {sorted(rec)}")
    return "id"


def _read_queries(path: Path, root: Path, k: int, extras: dict | None = None) -> list[Query]:
    """Queries of a queries.jsonl; with `extras`, each query's optional `type` and time-span `expected`
    (see eval/timespans.py) go into `extras["query_types"]` and `extras["spans"]`."""
    from .timespans import parse_spans

    out: list[Query] = []
    for n, rec in read_jsonl(path):
        try:
            q = query_from_json(rec, root, k=k)
        except ValueError as e:
            raise ConfigError(f"{path}:{n}: {e}") from None
        bbox = _query_crop(q.bbox, q.image)
        out.append(dataclasses.replace(q, bbox=tuple(bbox) if bbox else None))
        if extras is not None:
            if rec.get("type"):
                extras["query_types"][q.id] = str(rec["type"])
            if isinstance(rec.get("expected"), (dict, list)):
                extras["spans"][q.id] = parse_spans(rec["expected"], f"{path}:{n}")
    return out


def _query_crop(bbox, image: str | None):
    """The crop to search with, or None. Some sets (coco-crops) store in `bbox` the window the query image was
    cut from, in the source image's pixels: the query image is then already the crop. A box is used as a crop
    only when it lies inside the query image."""
    if not bbox or image is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError):
        return tuple(bbox)  # let the search report the unreadable image
    x, y, bw, bh = (float(v) for v in bbox)
    if x < 0 or y < 0 or x + bw > w + 1 or y + bh > h + 1:
        return None
    return tuple(bbox)


def _load_beir(root: Path, qrels_path: Path, k: int) -> Benchmark:
    corpus = root / "corpus.jsonl"
    if not corpus.is_file():
        raise ConfigError(f"{root}: a BEIR folder needs corpus.jsonl")
    queries = _read_queries(root / "queries.jsonl", root, k)
    qrels = read_qrels(qrels_path)
    return Benchmark(
        name=root.name, path=root, corpus_kind="records", corpus_path=corpus,
        queries=[q for q in queries if q.id in qrels],  # BEIR keeps every split's queries in one file
        qrels=qrels, id_field=_records_id_field(corpus), meta={"layout": "beir", "split": qrels_path.stem},
    )


_TOP_RE = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM_RE = re.compile(r"<num>\s*(?:Number:)?\s*(\S+)", re.I)
_FIELD_RE = r"<{tag}>\s*(?:{label}:)?(.*?)(?=<[a-z/]+>|\Z)"


def read_trec_topics(path: str | Path, fields: tuple[str, ...] = ("title",)) -> dict[str, str]:
    """Read classic TREC topics (``<top><num> Number: 301 <title> ... </top>``): topic id → text of ``fields``."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    topics: dict[str, str] = {}
    for block in _TOP_RE.findall(text):
        num = _NUM_RE.search(block)
        if not num:
            continue
        parts = []
        for f in fields:
            label = {"title": "Topic", "desc": "Description", "narr": "Narrative"}.get(f, f)
            m = re.search(_FIELD_RE.format(tag=f, label=label), block, re.S | re.I)
            if m:
                parts.append(" ".join(m.group(1).split()))
        topics[num.group(1)] = " ".join(p for p in parts if p)
    if not topics:
        raise ConfigError(f"{path}: no <top> ... </top> topics with a <num> found")
    return topics


def load_trec(
    topics: str | Path,
    qrels: str | Path,
    corpus: str | Path | None = None,
    *,
    fields: tuple[str, ...] = ("title",),
    name: str | None = None,
    k: int = 100,
) -> Benchmark:
    """A benchmark from a TREC topics file and a qrels file; ``corpus`` is a folder of files or a JSONL file."""
    topics_path = Path(os.path.abspath(topics))
    corpus_path = Path(os.path.abspath(corpus)) if corpus is not None else None
    if corpus_path is None:
        kind: CorpusKind = "none"
    elif corpus_path.is_dir():
        kind = "files"
    else:
        kind = "records"
    return Benchmark(
        name=name or topics_path.stem,
        path=topics_path.parent,
        corpus_kind=kind,
        corpus_path=corpus_path,
        queries=[Query(id=q, text=t, k=k) for q, t in read_trec_topics(topics_path, fields).items()],
        qrels=read_qrels(qrels),
        id_field=_records_id_field(corpus_path) if kind == "records" else "id",
        meta={"layout": "trec"},
    )


def read_jsonl(path: Path):
    """(line number, object) for each non-blank line of a JSONL file; a line that is not JSON is a ConfigError
    naming the file and line."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not JSON ({e.msg})") from None
