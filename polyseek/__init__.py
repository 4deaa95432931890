"""Polyseek: an embedded multimodal search engine. `polyseek.open(path)` returns an Index."""

from .config import IndexConfig, SearchConfig
from .errors import PolyseekError
from .index import Index, open
from .types import Filters, Hit, Query

__version__ = "0.1.0"
__all__ = ["open", "Index", "Hit", "Query", "Filters", "IndexConfig", "SearchConfig", "PolyseekError", "__version__"]
