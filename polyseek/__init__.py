"""Polyseek: an embedded multimodal search engine. `polyseek.open(path)` returns an Index.

Names are imported on first use, so `import polyseek.retrieve.fuse` (pure functions) does not pull in the store
and its dependencies (pyarrow, LanceDB), and `polyseek --help` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["open", "Index", "Hit", "Query", "Filters", "IndexConfig", "SearchConfig", "PolyseekError", "__version__"]

_WHERE = {"open": "index", "Index": "index", "Hit": "types", "Query": "types", "Filters": "types",
          "IndexConfig": "config", "SearchConfig": "config", "PolyseekError": "errors"}

if TYPE_CHECKING:  # pragma: no cover
    from .config import IndexConfig, SearchConfig
    from .errors import PolyseekError
    from .index import Index, open
    from .types import Filters, Hit, Query


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polyseek' has no attribute {name!r}")
