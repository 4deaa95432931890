"""Ingest interface: one Extractor per file family turns a file into an Extraction (asset + units).

Each extractor declares what it handles, so detection, the index run and the encoders need no lists of their own:
`formats` (format name -> a human name and the file suffixes), the unit kinds it emits, and which of those get
local features for search by image (`instance_kinds`). Encode-time needs are carried by the Extraction itself
(`pooled`: a unit whose vector is the mean of other units' vectors).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from ..config import IngestConfig
from ..registry import Registry
from ..types import Extraction

extractors: Registry[type["Extractor"]] = Registry("extractor")

BUILTIN_MODULES = ("images", "pdf", "text", "video")  # polyseek.ingest modules that register extractors


@dataclass
class ExtractContext:
    """What an extractor may need besides the file: the config, the asset id chosen by the caller,
    whether visual encoders want pixels (`want_pixels`), whether whole images also get multi-scale region
    units for the visual encoder (`region_tiles`), and the file's content hash."""

    config: IngestConfig
    asset_id: str
    file_hash: str = ""
    want_pixels: bool = False
    region_tiles: bool = False


class Extractor:
    """Turns one file into an Extraction. Raises IngestError (with a readable reason) on bad input."""

    asset_type: ClassVar[str] = ""
    formats: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {}  # format -> (human name, suffixes with dot)
    unit_kinds: ClassVar[tuple[str, ...]] = ()
    instance_kinds: ClassVar[tuple[str, ...]] = ()  # unit kinds whose pixels get local features

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:  # the one required method
        raise NotImplementedError

    def stream(self, path: Path, ctx: ExtractContext) -> Iterator[Extraction]:
        """The file as a sequence of partial Extractions of one asset (the last has `final=True`), so a long file
        never sits whole in memory: the index run encodes each part and drops its pixels before the next. The
        default yields `extract()` whole; extractors of long media override it."""
        yield self.extract(path, ctx)

    @classmethod
    def suffixes(cls) -> tuple[str, ...]:
        return tuple(s for _, sfx in cls.formats.values() for s in sfx)


_imported = False
_declared: dict = {}  # registry names -> (formats, instance kinds): built once per set of registered extractors


def registered() -> dict[str, type[Extractor]]:
    """Every registered extractor by name (the built-in ones imported first)."""
    global _imported
    if not _imported:
        for mod in BUILTIN_MODULES:
            importlib.import_module(f"{__package__}.{mod}")
        _imported = True
    return {name: extractors.get(name) for name in extractors.names()}


def _declarations():
    """The extractors' declarations, computed again only when an extractor registers (detection asks per file)."""
    ext = registered()
    key = tuple(ext)
    if key not in _declared:
        _declared.clear()
        fmts = {fmt: (human, sfx, name) for name, cls in ext.items() for fmt, (human, sfx) in cls.formats.items()}
        kinds = tuple(sorted({k for cls in ext.values() for k in cls.instance_kinds}))
        _declared[key] = (fmts, kinds)
    return _declared[key]


def formats() -> dict[str, tuple[str, tuple[str, ...], str]]:
    """format -> (human name, suffixes, extractor name), from the extractors' declarations."""
    return dict(_declarations()[0])


def instance_kinds() -> tuple[str, ...]:
    """Unit kinds that get local features, as the extractors declare them."""
    return _declarations()[1]
