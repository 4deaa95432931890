"""Retriever interface: one signal (keyword, dense text, visual, instance) over the index's units.

`retrieve` is the one required method. It returns a `SignalRun`: unit ids, their asset ids and the
signal's raw scores, best first. Fusion (fuse.py) and grouping work on these runs alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..types import Query


@dataclass
class SignalRun:
    signal: str
    unit_ids: list[str]
    asset_ids: list[str]
    scores: np.ndarray  # raw scores, descending
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit id -> details (e.g. matched box)

    def __len__(self) -> int:
        return len(self.unit_ids)


class Retriever:
    name: ClassVar[str] = ""
    query_modalities: ClassVar[frozenset[str]] = frozenset({"text"})  # what a query must carry to use it

    def retrieve(self, query: Query, depth: int, mask: "np.ndarray | None" = None,
                 where: str | None = None) -> SignalRun:  # the one required method
        """`mask`: the unit ids a filter allows (None: all); `where`: the same filter as SQL for the store."""
        raise NotImplementedError

    def accepts(self, query: Query) -> bool:
        has = set()
        if query.text and query.text.strip():
            has.add("text")
        if query.image is not None:
            has.add("image")
        return bool(has & self.query_modalities)


@contextmanager
def replaced_folder(folder: Path):
    """`with replaced_folder(folder) as tmp:` write a derived index into `tmp`; on success it replaces `folder`
    with two renames, so a reader sees the old index or the new one, never half of one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)

