"""`polyseek.open(path)` → Index: the embedded engine over one folder on disk, as one small facade.

The work is done below it, each floor taking the opened folder (folder.py) and none calling back up:
the index run (indexer.py), the query pipeline (retrieve/searcher.py → retrieve/pipeline.py), crop search
(retrieve/crops.py), duplicates (retrieve/dupes.py) and the read side for the API and the agent (reader.py).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .config import IndexConfig, SearchConfig
from .errors import ConfigError, QueryError
from .folder import DEFAULT_PATH, IndexFolder
from .imageio import load_query_image
from .indexer import IndexReport, IndexRun
from .reader import Reader
from .retrieve.searcher import SearcherCache
from .store.sql import check_filters
from .types import Filters, Hit, Query

__all__ = ["open", "Index", "DEFAULT_PATH"]


def open(path: str | os.PathLike = DEFAULT_PATH, config: IndexConfig | dict | None = None, *,
         create: bool = True) -> "Index":
    """Open (or create) the index at `path`. Without `config`, an existing index uses the one it was built with."""
    return Index(Path(path), config, create=create)


class Index(Reader):
    """Index files, search them, read what was indexed (the read methods come from `Reader`)."""

    def __init__(self, path: Path, config: IndexConfig | dict | None = None, *, create: bool = True):
        folder = IndexFolder(path, config, create=create)
        super().__init__(folder, SearcherCache(folder))
        self.indexer = IndexRun(folder)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.folder.manifest

    def encoder(self, role: str):
        """The text or visual encoder, loaded on first use (query-time BM25 never loads a model)."""
        return self.folder.encoder(role)

    # -- writing --------------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike], *, records: bool = False, id_field: str = "id",
            text_fields: Sequence[str] = ("text",), image_field: str | None = None, meta_fields: Sequence[str] = (),
            include: Sequence[str] = (), exclude: Sequence[str] = (), progress: bool = False,
            skip_duplicates: bool = False, engine: str | Any = "local") -> IndexReport:
        """Index files and folders (or records files with `records=True`); incremental and crash-safe.
        With `skip_duplicates`, a new image that nearly duplicates an indexed one is reported, not indexed.
        `engine="ray"` extracts and encodes on Ray Data (a local Ray started for the run; pass a
        `polyseek.scale.ray_ingest.RayEngine(address)` to join a cluster); this process still writes."""
        if engine == "ray":
            from .scale.ray_ingest import RayEngine

            engine = RayEngine(progress=progress)
        elif engine == "local":
            engine = None
        elif isinstance(engine, str):
            raise ConfigError(f"unknown engine {engine!r}; choose from: local, ray")
        try:
            return self.indexer.add(paths, records=records, id_field=id_field, text_fields=text_fields,
                                    image_field=image_field, meta_fields=meta_fields, include=include,
                                    exclude=exclude, progress=progress, skip_duplicates=skip_duplicates,
                                    engine=engine)
        finally:
            self.searchers.invalidate()  # the next search sees what was written

    def remove(self, items: Iterable[str]) -> int:
        """Remove assets by id, by file path, or every asset under a folder path. Returns how many."""
        try:
            return self.indexer.remove(items)
        finally:
            self.searchers.invalidate()

    # -- searching ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Make the next search see commits made by other processes or Index objects."""
        self.searchers.invalidate()

    def signals(self) -> list[str]:
        return list(self.searcher().retrievers)

    def search(self, text: str | None = None, *, image: Any = None, bbox=None, k: int = 10,
               filters: Filters | None = None, config: SearchConfig | None = None) -> list[Hit]:
        """Search by text, image (path or PIL image, optionally cropped to `bbox` = x,y,w,h), or both."""
        return self.search_query(Query(text=text, image=image, bbox=bbox, k=k, filters=filters or Filters()), config)

    def search_query(self, query: Query, config: SearchConfig | None = None) -> list[Hit]:
        if query.k < 1:
            raise QueryError("k must be at least 1")
        if not (query.text and query.text.strip()) and query.image is None:
            raise QueryError("empty query: give text, an image, or both")
        check_filters(query.filters)
        if query.image is not None:
            # Decode, orient and crop once; every visual signal then sees the same pixels.
            query = dataclasses.replace(query, image=load_query_image(query.image, query.bbox), bbox=None)
        from .retrieve.honesty import dense_floor, drop_weak_dense_tail

        hits = self.searcher().search(query, config or SearchConfig())
        return drop_weak_dense_tail(hits, dense_floor(self.manifest.get("encoders", {}).get("text", {}).get("spec")))

    def query_warnings(self, query: Query, hits: Sequence[Hit]) -> list[str]:
        """What a person should know about these results (see retrieve/honesty.py), e.g. no visual encoder."""
        from .retrieve.honesty import visual_warnings

        return visual_warnings(has_text=bool(query.text and query.text.strip()),
                               has_visual_encoder=bool(self.config.visual_encoder),
                               image_assets=lambda: len(self.assets(types=["image"])),
                               type_filter=tuple(query.filters.type or ()), hits=hits)

    def search_many(self, queries: Sequence[Query], config: SearchConfig | None = None) -> list[list[Hit]]:
        return [self.search_query(q, config) for q in queries]

    def search_crops(self, query: Query, config: SearchConfig | None = None, crops: str = "auto") -> list[Hit]:
        """Multi-scale crop search of `query.image` (see retrieve/crops.py); each hit's `extra["crops"]` says
        which crop matched it. `crops="none"` is a plain search. `crop_search` returns the full explanation."""
        if crops == "none":
            return self.search_query(query, config)
        if crops != "auto":
            raise QueryError(f"unknown crops mode {crops!r}; choose from: auto, none")
        return self.crop_search(query, config).hits

    def ask(self, question: str, **kw):
        """Answer `question` with citations to evidence units (agent/ask.py: llm=, deep=, image=, session=)."""
        from .agent import ask

        return ask(self, question, **kw)

    def dupes(self, threshold: int | None = None, **kw):
        """Groups of near-duplicate images (see retrieve/dupes.py): a DupeReport."""
        from .retrieve.dupes import DEFAULT_THRESHOLD, find_duplicates

        return find_duplicates(self.folder, DEFAULT_THRESHOLD if threshold is None else threshold, **kw)

    def close(self) -> None:
        self.searchers.invalidate()
        self.folder.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
